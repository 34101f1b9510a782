import { createRoute } from '@hono/zod-openapi';
import type { z } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import { echo, some } from '../../core/echo.js';
import { describeIssues, type InputTarget } from '../../web/validation/issues.js';
import { ListQuery, StartExecutionBody } from '../../web/api/execution-schemas.js';
import { adhocBody } from '../../web/api/adhoc.js';
import { apiRouter } from '../../web/api/router.js';
import { errorResponse } from '../../web/errors.js';
import { limitBody } from '../../web/body-limit.js';
import { clientErrorResponse } from '../../web/client-error.js';
import { requiredBody, json } from '../../web/validation/schemas.js';
import { requestId } from '../../web/request-id.js';

describe('echoing input back', () => {
  it.each<[string, string, number | undefined, string]>([
    ['short text, quoted', 'web-echo', undefined, '"web-echo"'],
    ['control characters escaped', 'a\nb\u0000', undefined, '"a\\nb\\u0000"'],
    ['long text cut, with its length', 'x'.repeat(1_000_000), 10, '"xxxxxxxxxx…" (1000000 characters)'],
    ['never half a surrogate pair', `${'a'.repeat(9)}😀${'b'.repeat(10)}`, 10, '"aaaaaaaaa…" (21 characters)'],
  ])('%s', (_what, text, max, expected) => {
    expect(echo(text, max)).toBe(expected);
  });

  it('lists a few and counts the rest', () => {
    expect(some(['a', 'b'])).toBe('a, b');
    expect(some(Array.from({ length: 100_000 }, (_, i) => `k${i}`), 3)).toBe('k0, k1, k2, and 99997 more');
  });
});

const issuesOf = (schema: z.ZodType, input: unknown): z.core.$ZodIssue[] => {
  const r = schema.safeParse(input);
  if (r.success) throw new Error('expected a failure');
  return r.error.issues;
};
const said = (target: InputTarget, schema: z.ZodType, input: unknown): string => describeIssues(target, issuesOf(schema, input), input).message;

describe('what a request got wrong, in words', () => {
  const adhoc = adhocBody(4 * 1024 * 1024);
  it.each<[string, InputTarget, z.ZodType, unknown, RegExp]>([
    ['a near miss of a field', 'json', StartExecutionBody, { runbook: 'r', target: 'x' }, /^invalid request: the request body has unknown field "target" \(did you mean "targets"\?\) \(this request takes: runbook, options, targets, reason\)$/],
    ['a missing field', 'json', StartExecutionBody, {}, /"runbook" is required/],
    ['a wrong type, with what came', 'json', StartExecutionBody, { runbook: ['a'] }, /"runbook" must be a string, not a list/],
    ['a body that is not an object', 'json', StartExecutionBody, null, /the request body must be an object, not null/],
    ['an option named __proto__', 'json', StartExecutionBody, JSON.parse('{"runbook":"r","options":{"__proto__":"x"}}'), /"options\.__proto__" cannot be an option name/],
    ['an option name that is not one', 'json', StartExecutionBody, { runbook: 'r', options: { 'a b': 'x' } }, /"options\.a b" is not an acceptable name here: option names are letters/],
    ['too many options', 'json', StartExecutionBody, { runbook: 'r', options: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`o${i}`, 'x'])) }, /"options" has 101 entries; at most 100 are allowed/],
    ['a number out of range', 'json', adhoc, { agents: ['agt-1'], maxOutputBytes: 1e400 }, /"maxOutputBytes" must be a number, not a number out of range/],
    ['a negative number', 'json', adhoc, { agents: ['agt-1'], maxOutputBytes: -1 }, /"maxOutputBytes" must be at least 1/],
    ['a list item', 'json', adhoc, { agents: ['agt-1', 7] }, /"agents\[1\]" must be a string, not 7/],
    ['an empty list', 'json', adhoc, { agents: [] }, /"agents" must name at least one agent/],
    ['an enum value', 'query', ListQuery, { state: 'bogus' }, /query parameter "state" must be one of queued, awaiting_approval, running, succeeded, failed, canceled, timed_out, not "bogus"/],
    ['an unknown query parameter', 'query', ListQuery, { stat: 'running' }, /the query has unknown field "stat" \(did you mean "state"\?\)/],
    ['a repeated query parameter', 'query', ListQuery, { limit: ['1', '2'] }, /query parameter "limit" must be a string, not a list/],
  ])('%s', (_what, target, schema, input, expected) => {
    expect(said(target, schema, input)).toMatch(expected);
  });

  it('names at most three problems in the message and ten in the details, and counts them all', () => {
    const input = { agents: Array.from({ length: 20 }, (_, i) => i) };
    const d = describeIssues('json', issuesOf(adhoc, input), input);
    expect(d.count).toBe(20);
    expect(d.problems).toHaveLength(10);
    expect(d.message).toMatch(/; and 17 more problems$/);
    expect(d.problems[0]).toEqual({ in: 'body', field: 'agents[0]', problem: 'must be a string, not 0' });
  });

  it('stays short however much was wrong', () => {
    const input = { runbook: 'r', ...Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`field-${i}-${'y'.repeat(50)}`, 1])) };
    expect(said('json', StartExecutionBody, input).length).toBeLessThan(1000);
  });
});

describe('the API\'s validation and error bodies, through Hono', () => {
  const app = apiRouter();
  app.use('*', requestId(() => 'req-1'));
  app.use('*', limitBody(1000));
  app.onError((e, c) => errorResponse(c, e));
  app.openapi(createRoute({ method: 'post', path: '/run', request: { body: requiredBody(StartExecutionBody) }, responses: { 200: json(StartExecutionBody, 'echo') } }), (c) => c.json(c.req.valid('json'), 200));
  const post = (body: string, type = 'application/json'): Promise<Response> => Promise.resolve(app.request('/run', { method: 'POST', body, headers: { 'content-type': type } }));

  it.each<[string, string, string | undefined, number, string, RegExp]>([
    ['a valid body', '{"runbook":"r","options":{"a":1}}', undefined, 200, '', /./],
    ['a typo', '{"runbook":"r","target":"x"}', undefined, 400, 'invalid_argument', /did you mean "targets"/],
    ['null', 'null', undefined, 400, 'invalid_argument', /must be an object, not null/],
    ['not JSON', '{"runbook"', undefined, 400, 'invalid_argument', /^request body must be JSON$/],
    ['not declared JSON', 'runbook=r', 'text/plain', 415, 'invalid_argument', /Content-Type: application\/json/],
    ['too large', `{"runbook":"${'r'.repeat(2000)}"}`, undefined, 413, 'resource_exhausted', /larger than the limit of 1000 bytes/],
  ])('%s: %i', async (_what, body, type, status, kind, message) => {
    const res = await post(body, type);
    expect(res.status).toBe(status);
    if (status === 200) return;
    const e = ((await res.json()) as { error: { kind: string; message: string; requestId: string } }).error;
    expect(e.kind).toBe(kind);
    expect(e.message).toMatch(message);
    expect(e.requestId).toBe('req-1');
    if (status === 413) expect(res.headers.get('connection')).toBe('close');
  });

  it('hands the handler options in a null-prototype-safe form: __proto__ never reaches it', async () => {
    const res = await post('{"runbook":"r","options":{"__proto__":{"polluted":true}}}');
    expect(res.status).toBe(400);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('errors Node\'s HTTP parser raises', () => {
  it.each<[string | undefined, number, string]>([
    ['HPE_HEADER_OVERFLOW', 431, 'resource_exhausted'],
    ['HPE_INVALID_METHOD', 400, 'invalid_argument'],
    [undefined, 400, 'invalid_argument'],
  ])('%s: %i with the JSON error body', (code, status, kind) => {
    const raw = clientErrorResponse(code);
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(head).toContain('Connection: close');
    expect((JSON.parse(body) as { error: { kind: string } }).error.kind).toBe(kind);
  });
});
