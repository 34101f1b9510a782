/**
 * The REST API refuses what it does not understand, discloses nothing a user may not see, and
 * bounds what it takes and what it echoes — against a real coordinator, with two teams.
 */
import { request as httpRequest } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

const RUNBOOKS = `apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-echo, title: Echo on web hosts, owner: team-web, tags: [web] }
spec:
  options:
    - { name: message, type: string, required: false }
  targets: { selector: role=web }
  steps:
    - { name: echo, run: [echo, "\${option.message}"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-guarded, title: Guarded web change, owner: team-web, tags: [web] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=web }
  approval: { required: 1, from: [group:web-leads] }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-echo, title: Echo on db hosts, owner: team-db, tags: [db] }
spec:
  targets: { selector: role=db }
  steps:
    - { name: echo, run: [echo, db] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-guarded, title: Guarded db change, owner: team-db, tags: [db] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=db }
  approval: { required: 1, from: [group:db-leads] }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-any-approver, title: Any second person approves, owner: team-db, tags: [db] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=db }
  approval: { required: 1 }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-long, title: Long db job, owner: team-db, tags: [db] }
spec:
  targets: { selector: role=db }
  steps:
    - { name: wait, run: [sleep, "30"] }
`;

const POLICY = `apiVersion: handrail/v1
kind: Policy
metadata: { name: teams }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
    - { name: web-team, effect: allow, actions: [run, view, cancel], subjects: [group:web], runbooks: { tags: [web] }, targets: role=web }
    - { name: web-leads, effect: allow, actions: [approve, view], subjects: [group:web-leads], runbooks: { tags: [web] } }
    - { name: db-team, effect: allow, actions: [run, view, cancel], subjects: [group:db], runbooks: { tags: [db] }, targets: role=db }
    - { name: db-leads, effect: allow, actions: [approve, view], subjects: [group:db-leads], runbooks: { tags: [db] } }
`;

interface ErrorBody {
  error: { kind: string; message: string; details?: { problems: Array<{ in: string; field: string; problem: string }>; count: number }; requestId?: string };
}

describe('the REST API at its boundaries', () => {
  let fleet: Fleet;
  let wendy: string; // web team
  let will: string; // web lead
  let dora: string; // db team
  let dan: string; // db lead
  let nina: string; // no team
  const agents: Record<string, string> = {};

  const api = <T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> => fleet.api<T>(method, path, body, token);
  const raw = async (method: string, path: string, init: { body?: string | Uint8Array; token?: string | null; headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; type: string | null }> => {
    const headers: Record<string, string> = { ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? fleet.adminToken}` }), ...(init.headers ?? {}) };
    const res = await fetch(`${fleet.coordinator!.url}${path}`, { method, headers, ...(init.body !== undefined ? { body: init.body } : {}) });
    return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
  };
  const errorOf = (text: string): ErrorBody['error'] => (JSON.parse(text) as ErrorBody).error;

  beforeAll(async () => {
    fleet = await Fleet.create();
    const dir = join(fleet.dir, 'runbooks');
    await mkdir(dir);
    await writeFile(join(dir, 'runbooks.yaml'), RUNBOOKS);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await fleet.startCoordinator(['--runbooks-dir', dir]);
    await fleet.ensureAdmin();
    wendy = await fleet.user('wendy', ['web']);
    will = await fleet.user('will', ['web-leads']);
    dora = await fleet.user('dora', ['db']);
    dan = await fleet.user('dan', ['db-leads']);
    nina = await fleet.user('nina', ['nobody']);
    await fleet.startAgent('web-1', { token: await fleet.token(['--labels', 'role=web']) });
    await fleet.startAgent('db-1', { token: await fleet.token(['--labels', 'role=db']) });
    agents['web-1'] = await fleet.waitOnline('web-1');
    agents['db-1'] = await fleet.waitOnline('db-1');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  describe('refuses what it does not understand', () => {
    it.each<[string, Record<string, unknown>, RegExp]>([
      ['a typo of "targets"', { runbook: 'web-echo', target: 'zone=a' }, /"target" \(did you mean "targets"\?\)/],
      ['a typo of "options"', { runbook: 'web-echo', option: { message: 'x' } }, /"option" \(did you mean "options"\?\)/],
      ['an unknown field', { runbook: 'web-echo', bogus: 1 }, /unknown field "bogus"/],
      ['an option named __proto__', { runbook: 'web-echo', options: JSON.parse('{"__proto__": "x"}') as Record<string, unknown> }, /"options\.__proto__".*cannot be an option name/],
      ['an option value that is an object', { runbook: 'web-echo', options: { message: { nested: true } } }, /"options\.message"/],
      ['a runbook id that is a number', { runbook: 7 }, /"runbook" must be a string, not 7/],
      ['no runbook', { options: {} }, /"runbook" is required/],
    ])('POST /executions with %s: 400 naming the field, and nothing runs', async (_what, body, message) => {
      const before = await api<{ executions: unknown[] }>('GET', '/api/v1/executions?limit=500');
      const r = await raw('POST', '/api/v1/executions', { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      expect(r.status, r.text).toBe(400);
      const e = errorOf(r.text);
      expect(e.kind).toBe('invalid_argument');
      expect(e.message).toMatch(message);
      expect(e.details?.problems.length).toBeGreaterThan(0);
      const after = await api<{ executions: unknown[] }>('GET', '/api/v1/executions?limit=500');
      expect(after.body.executions.length).toBe(before.body.executions.length);
    });

    it('refuses a top-level "__proto__" field by name', async () => {
      const r = await raw('POST', '/api/v1/executions', { body: '{"runbook": "web-echo", "__proto__": {"targets": "x"}}', headers: { 'content-type': 'application/json' } });
      expect(r.status, r.text).toBe(400);
      expect(errorOf(r.text).message).toMatch(/unknown field "__proto__"/);
    });

    it.each<[string, Record<string, unknown>, RegExp]>([
      ['workingDir that is an object', { workingDir: {} }, /"workingDir" must be a string, not an object/],
      ['maxOutputBytes that is text', { maxOutputBytes: 'lots' }, /"maxOutputBytes" must be a number, not "lots"/],
      ['a negative maxOutputBytes', { maxOutputBytes: -1 }, /"maxOutputBytes" must be at least 1/],
      ['maxOutputBytes over the coordinator\'s limit', { maxOutputBytes: 1e12 }, /"maxOutputBytes" must be at most/],
      ['a timeout that is not a duration', { timeout: 'soon' }, /"timeout" is not a duration/],
      ['an env value that is a number', { env: { A: 1 } }, /"env\.A" must be a string/],
      ['an env name __proto__', { env: JSON.parse('{"__proto__": "x"}') as Record<string, unknown> }, /"env\.__proto__"/],
      ['an interpreter without a script', { interpreter: ['/bin/bash'] }, /"interpreter" is only used with "script"/],
    ])('POST /adhoc with %s: 400 naming the field', async (_what, extra, message) => {
      const r = await api<ErrorBody>('POST', '/api/v1/adhoc', { agents: [agents['web-1']], argv: ['true'], ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.message).toMatch(message);
    });

    it.each<[string, RegExp]>([
      ['state=bogus', /query parameter "state" must be one of queued, awaiting_approval, running/],
      ['limit=lots', /query parameter "limit" must be a whole number from 1 to 500/],
      ['limit=1e3', /query parameter "limit"/],
      ['limit=1&limit=2', /query parameter "limit"/],
      ['before=yesterday', /query parameter "before" is not a cursor/],
      ['runbok=web-echo', /unknown field "runbok" \(did you mean "runbook"\?\)/],
    ])('GET /executions?%s: 400 naming the parameter', async (query, message) => {
      const r = await api<ErrorBody>('GET', `/api/v1/executions?${query}`);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.message).toMatch(message);
    });

    it('answers a body that is not JSON, or not declared as JSON, with the JSON error body', async () => {
      const bad = await raw('POST', '/api/v1/executions', { body: '{"runbook": ', headers: { 'content-type': 'application/json' } });
      expect(bad.status).toBe(400);
      expect(errorOf(bad.text)).toMatchObject({ kind: 'invalid_argument', message: 'request body must be JSON' });
      const plain = await raw('POST', '/api/v1/executions', { body: 'runbook=web-echo', headers: { 'content-type': 'text/plain' } });
      expect(plain.status).toBe(415);
      expect(errorOf(plain.text).kind).toBe('invalid_argument');
      // Bytes without any content type (fetch sends none for a byte array): the body was read
      // up front, and is still seen as one.
      const undeclared = await raw('POST', '/api/v1/executions', { body: new TextEncoder().encode('{"runbook": "web-echo"}') });
      expect(undeclared.status).toBe(415);
      expect(errorOf(undeclared.text).kind).toBe('invalid_argument');
      // A leading byte-order mark is not part of the JSON (as fetch's Request.text() decodes it).
      const bom = await raw('POST', '/api/v1/executions', { body: new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"runbok": "web-echo"}')]), headers: { 'content-type': 'application/json' } });
      expect(bom.status).toBe(400);
      expect(errorOf(bom.text).message).toMatch(/unknown field "runbok"/);
    });

    it('publishes an OpenAPI 3.1 document generated from the same schemas, without a token', async () => {
      const r = await raw('GET', '/api/v1/openapi.json', { token: null });
      expect(r.status).toBe(200);
      const doc = JSON.parse(r.text) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>>; components: { schemas: Record<string, { additionalProperties?: unknown; required?: string[] }> } };
      expect(doc.openapi).toBe('3.1.0');
      for (const p of ['/api/v1/executions', '/api/v1/executions/{id}', '/api/v1/executions/{id}/events', '/api/v1/executions/{id}/approve', '/api/v1/adhoc', '/api/v1/agents', '/api/v1/approvals', '/api/v1/runbooks/{id}', '/api/v1/reports/toil', '/api/v1/audit/records', '/api/v1/audit/records/{seq}', '/api/v1/audit/export', '/api/v1/audit/verifications']) expect(Object.keys(doc.paths)).toContain(p);
      const start = doc.components.schemas['StartExecution'];
      expect(start?.additionalProperties).toBe(false);
      expect(start?.required).toEqual(['runbook']);
    });
  });

  describe('no input reaches a 5xx', () => {
    const BODIES = ['null', '[]', '"x"', '7', 'true', '1e400', '12345678901234567890123', '{}', '{"a":', '[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]', '{"runbook": null, "agents": null, "comment": null}', '{"__proto__": null}'];

    it('every route, every body and junk queries: a 4xx with the JSON error body, or success', async () => {
      const done = await fleet.exec([agents['web-1']!], { argv: ['true'] });
      const stepRunId = done.steps[0]!.id;
      const doc = JSON.parse((await raw('GET', '/api/v1/openapi.json')).text) as { paths: Record<string, Record<string, unknown>> };
      const paths = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => [m.toUpperCase(), p] as const));
      expect(paths.length).toBeGreaterThanOrEqual(15);
      const fill = (p: string): string => p.replace('{id}', done.id).replace('{stepRunId}', stepRunId);
      const failures: string[] = [];
      const check = async (method: string, path: string, init: Parameters<typeof raw>[2]): Promise<void> => {
        const r = await raw(method, path, init);
        if (r.status >= 500) failures.push(`${method} ${path} ${String(init?.body ?? '').slice(0, 40)}: ${r.status} ${r.text.slice(0, 200)}`);
        else if (r.status >= 400 && !(r.type ?? '').startsWith('application/json')) failures.push(`${method} ${path}: ${r.status} without a JSON body`);
      };
      for (const [method, p] of paths) {
        const path = fill(p);
        for (const junk of ['?x=1', '?limit=-1', '?state=', '?wait=99999999999d', '?stream=both', '?before=9999999999999999999:x', `?runbook=${'a'.repeat(5000)}`]) {
          // A cancel or a reload with a query is refused before it acts, so these are safe to send.
          await check(method, path + junk, {});
        }
        for (const bad of [`/api/v1/executions/${'x'.repeat(300)}`, '/api/v1/executions/exe-%00', '/api/v1/runbooks/%E0%A4%A']) await check('GET', bad, {});
        if (method !== 'POST') continue;
        for (const body of BODIES) await check(method, path, { body, headers: { 'content-type': 'application/json' } });
      }
      for (const body of BODIES) await check('POST', '/api/v1/executions', { body, headers: { 'content-type': 'application/json' }, token: nina });
      await check('GET', `/api/v1/executions/${done.id}/events`, { headers: { 'last-event-id': 'not-a-number' } });
      expect(failures).toEqual([]);
    });

    it('answers POST /adhoc with body null with 400, not 500', async () => {
      const r = await raw('POST', '/api/v1/adhoc', { body: 'null', headers: { 'content-type': 'application/json' } });
      expect(r.status, r.text).toBe(400);
      expect(errorOf(r.text).message).toMatch(/the request body must be an object, not null/);
    });
  });

  describe('bounded input, bounded answers', () => {
    it('refuses a 10 MB body with 413 and the JSON error body, unread', async () => {
      // node:http, not fetch: the server answers and closes before the upload ends, and fetch
      // reports the closed socket (EPIPE) instead of the answer whenever that race goes its way.
      const body = Buffer.from(JSON.stringify({ runbook: 'web-echo', options: { message: 'x'.repeat(10 * 1024 * 1024) } }));
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(`${fleet.coordinator!.url}/api/v1/executions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${fleet.adminToken}`, 'content-type': 'application/json', 'content-length': String(body.length) },
        });
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, text });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        // Headers only: the answer must come from the declared length. Sending any of the body would
        // leave bytes unread when the server closes, and the kernel may then reset the connection
        // under the answer (the EPIPE fetch saw).
        req.flushHeaders();
      });
      expect(r.status).toBe(413);
      expect(errorOf(r.text)).toMatchObject({ kind: 'resource_exhausted', message: expect.stringMatching(/larger than the limit of 1048576 bytes/) as unknown });
      // and the coordinator is fine
      expect((await api('GET', '/api/v1/health')).status).toBe(200);
    });

    it('refuses a chunked body over the limit too (no Content-Length)', async () => {
      // Exactly limit + 1 bytes, chunked, then silence: the server must answer once it has read past
      // the limit, without the upload ending. Nothing is left unread and nothing is written after
      // the answer, so no connection reset can race it.
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(`${fleet.coordinator!.url}/api/v1/executions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${fleet.adminToken}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        });
        req.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, text });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        for (let left = 1024 * 1024 + 1; left > 0; left -= 65_536) req.write(Buffer.alloc(Math.min(65_536, left), 0x20));
      });
      expect(r.status).toBe(413);
      expect(errorOf(r.text).kind).toBe('resource_exhausted');
    });

    it('echoes a huge runbook id, and fifty thousand unknown options or fields, in a few hundred characters', async () => {
      const longId = await raw('POST', '/api/v1/executions', { body: JSON.stringify({ runbook: 'a'.repeat(900_000) }), headers: { 'content-type': 'application/json' } });
      expect(longId.status).toBe(400);
      expect(longId.text.length).toBeLessThan(2000);
      expect(errorOf(longId.text).message).toMatch(/"runbook" is not a runbook id/);
      const opts = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`o${i}`, '']));
      const many = await raw('POST', '/api/v1/executions', { body: JSON.stringify({ runbook: 'web-echo', options: opts }), headers: { 'content-type': 'application/json' } });
      expect(many.status).toBe(400);
      expect(many.text.length).toBeLessThan(2000);
      expect(errorOf(many.text).message).toMatch(/"options" has 50000 entries; at most 100 are allowed/);
      const typos = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`t${i}`, 1]));
      const unknown = await raw('POST', '/api/v1/executions', { body: JSON.stringify({ runbook: 'web-echo', ...typos }), headers: { 'content-type': 'application/json' } });
      expect(unknown.status).toBe(400);
      expect(unknown.text.length).toBeLessThan(2000);
      expect(errorOf(unknown.text).message).toMatch(/unknown fields "t0", "t1", "t2", "t3", "t4", and 49995 more/);
    });

    it('answers headers over Node\'s limit with 431 and the JSON error body', async () => {
      const r = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
        const req = httpRequest(`${fleet.coordinator!.url}/api/v1/health`, { headers: { 'x-big': 'y'.repeat(20_000) } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(r.status).toBe(431);
      expect(r.type).toBe('application/json');
      expect(errorOf(r.body)).toMatchObject({ kind: 'resource_exhausted', message: 'request headers are larger than the limit' });
    });
  });

  describe('what a user may not see is not found, whatever the action', () => {
    it('approve, deny and cancel on another team\'s execution answer exactly as for an unknown id', async () => {
      const guarded = await api<{ executionId: string; state: string }>('POST', '/api/v1/executions', { runbook: 'db-guarded', options: { reason: 'schema change' } }, dora);
      expect(guarded.body.state).toBe('awaiting_approval');
      const long = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'db-long' }, dora);
      const ended = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'db-echo' }, dora);
      await fleet.waitExecution(ended.body.executionId);
      const unknown = 'exe-0000000000000000';
      for (const token of [wendy, will, nina]) {
        for (const [id, action] of [
          [guarded.body.executionId, 'approve'],
          [guarded.body.executionId, 'deny'],
          [guarded.body.executionId, 'cancel'],
          [long.body.executionId, 'cancel'],
          [ended.body.executionId, 'cancel'],
          [ended.body.executionId, 'approve'],
        ] as const) {
          const r = await api<ErrorBody>('POST', `/api/v1/executions/${id}/${action}`, action === 'cancel' ? undefined : { comment: 'mine now' }, token);
          const u = await api<ErrorBody>('POST', `/api/v1/executions/${unknown}/${action}`, action === 'cancel' ? undefined : { comment: 'mine now' }, token);
          expect([r.status, r.body.error.kind], `${action} ${id}`).toEqual([404, 'not_found']);
          expect(r.body.error.message.replace(id, 'ID')).toBe(u.body.error.message.replace(unknown, 'ID'));
        }
      }
      // Nothing happened to them.
      expect((await api<ExecutionResult>('GET', `/api/v1/executions/${guarded.body.executionId}`, undefined, dora)).body.state).toBe('awaiting_approval');
      expect((await api<ExecutionResult>('GET', `/api/v1/executions/${long.body.executionId}`, undefined, dora)).body.state).toBe('running');
      // The db lead sees and approves it; dora cancels her own.
      expect((await api('POST', `/api/v1/executions/${guarded.body.executionId}/approve`, { comment: 'ok' }, dan)).status).toBe(200);
      expect((await api('POST', `/api/v1/executions/${long.body.executionId}/cancel`, undefined, dora)).status).toBe(202);
      await fleet.waitExecution(long.body.executionId);
    });

    it('the history holds only what the reader may see: a limit=1 walk shows no other team\'s ids or times', async () => {
      const doraRuns: string[] = [];
      const wendyRuns: string[] = [];
      for (let i = 0; i < 3; i++) {
        wendyRuns.push((await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'web-echo', options: { message: `w${i}` } }, wendy)).body.executionId);
        doraRuns.push((await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'db-echo' }, dora)).body.executionId);
      }
      for (const id of [...doraRuns, ...wendyRuns]) await fleet.waitExecution(id);
      const all = (await api<{ executions: Array<{ id: string; runbookId: string | null }> }>('GET', '/api/v1/executions?limit=500')).body.executions;
      const dbIds = all.filter((e) => e.runbookId?.startsWith('db-') || e.runbookId === null).map((e) => e.id);
      const expected = all.filter((e) => e.runbookId?.startsWith('web-')).map((e) => e.id);

      const walked: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: { executions: Array<{ id: string }>; next: string | null } } = await api('GET', `/api/v1/executions?limit=1${cursor ? `&before=${cursor}` : ''}`, undefined, wendy);
        expect(page.status).toBe(200);
        if (page.body.next) {
          expect(page.body.executions).toHaveLength(1);
          const id = page.body.next.split(':')[1];
          expect(dbIds).not.toContain(id);
          // a cursor is the last row shown
          expect(id).toBe(page.body.executions[0]!.id);
        }
        walked.push(...page.body.executions.map((e) => e.id));
        cursor = page.body.next;
      } while (cursor);
      expect(walked).toEqual(expected);
      for (const id of wendyRuns) expect(walked).toContain(id);

      // Filters cannot confirm what another team ran.
      const probe = await api<{ executions: unknown[]; next: string | null }>('GET', '/api/v1/executions?user=dora&runbook=db-echo&limit=1', undefined, wendy);
      expect(probe.body).toEqual({ executions: [], next: null });
      expect((await api<{ executions: unknown[] }>('GET', '/api/v1/executions?user=dora&limit=500', undefined, wendy)).body.executions).toEqual([]);
      // nina sees nothing at all; dora sees her team's and not wendy's.
      expect((await api<{ executions: unknown[]; next: string | null }>('GET', '/api/v1/executions?limit=1', undefined, nina)).body).toEqual({ executions: [], next: null });
      const doras = (await api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions?limit=500', undefined, dora)).body.executions.map((e) => e.id);
      for (const id of doraRuns) expect(doras).toContain(id);
      for (const id of wendyRuns) expect(doras).not.toContain(id);
    });

    it('the approvals inbox shows a lead only their team\'s requests, and nobody what policy does not let them approve', async () => {
      const web = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'web-guarded', options: { reason: 'config push' } }, wendy);
      const db = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'db-guarded', options: { reason: 'index rebuild' } }, dora);
      // "any second person" in the runbook still means someone the policy lets approve it
      const any = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'db-any-approver', options: { reason: 'vacuum' } }, dora);
      const inbox = async (token: string): Promise<string[]> => (await api<{ approvals: Array<{ executionId: string }> }>('GET', '/api/v1/approvals', undefined, token)).body.approvals.map((a) => a.executionId);
      expect(await inbox(will)).toContain(web.body.executionId);
      expect(await inbox(will)).not.toContain(db.body.executionId);
      expect(await inbox(dan)).toContain(db.body.executionId);
      expect(await inbox(dan)).not.toContain(web.body.executionId);
      expect(await inbox(dan)).toContain(any.body.executionId);
      for (const token of [nina, wendy, will]) expect(await inbox(token)).not.toContain(any.body.executionId);
      expect(await inbox(nina)).toEqual([]);
      for (const [id, token] of [[web.body.executionId, wendy], [db.body.executionId, dora], [any.body.executionId, dora]] as const) await api('POST', `/api/v1/executions/${id}/cancel`, undefined, token);
    });

    it('GET /agents shows a user the agents their runbooks could target, without addresses; admins see all', async () => {
      type Agents = { agents: Array<{ id: string; name: string; address: string | null }> };
      const admin = (await api<Agents>('GET', '/api/v1/agents')).body.agents;
      expect(admin.map((a) => a.name).sort()).toEqual(['db-1', 'web-1']);
      expect(admin.every((a) => a.address !== null)).toBe(true);
      const w = (await api<Agents>('GET', '/api/v1/agents', undefined, wendy)).body.agents;
      expect(w.map((a) => a.name)).toEqual(['web-1']);
      expect(w[0]!.address).toBeNull();
      expect((await api<Agents>('GET', '/api/v1/agents', undefined, dora)).body.agents.map((a) => a.name)).toEqual(['db-1']);
      expect((await api<Agents>('GET', '/api/v1/agents', undefined, nina)).body.agents).toEqual([]);
      // will may approve web runbooks but run none: no hosts
      expect((await api<Agents>('GET', '/api/v1/agents', undefined, will)).body.agents).toEqual([]);
    });
  });

  it('still runs what is well formed', async () => {
    const r = await api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'web-echo', options: { message: 'hello' }, targets: 'role=web', reason: 'smoke' }, wendy);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const done = await waitFor(async () => {
      const v = await api<ExecutionResult>('GET', `/api/v1/executions/${r.body.executionId}?wait=5s`, undefined, wendy);
      return v.body.state === 'succeeded' ? v.body : undefined;
    });
    expect(done.reason).toBe('smoke');
  });
});
