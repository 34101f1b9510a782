import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { permissionDenied } from '../../core/errors.js';
import { errorResponse } from '../../web/errors.js';
import { requestId, type RequestIdVariables } from '../../web/request-id.js';

function app(): Hono<{ Variables: RequestIdVariables }> {
  let n = 0;
  const a = new Hono<{ Variables: RequestIdVariables }>();
  a.use('*', requestId(() => `req-${++n}`));
  a.onError((e, c) => errorResponse(c, e));
  a.get('/ok', (c) => c.json({ seen: c.get('requestId') }));
  a.get('/denied', () => {
    throw permissionDenied('not allowed to run restart-web: no rule allows it; default deny');
  });
  return a;
}

describe('request ids', () => {
  it('gives every request its own id, in X-Request-Id and to the handlers', async () => {
    const a = app();
    const first = await a.request('/ok');
    const second = await a.request('/ok');
    expect(first.headers.get('x-request-id')).toBe('req-1');
    expect(await first.json()).toEqual({ seen: 'req-1' });
    expect(second.headers.get('x-request-id')).toBe('req-2');
  });

  it('puts the id in error bodies, so a refusal can be matched to its audit record', async () => {
    const res = await app().request('/denied');
    expect(res.status).toBe(403);
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(await res.json()).toEqual({ error: { kind: 'permission_denied', message: expect.stringMatching(/default deny$/) as unknown, requestId: 'req-1' } });
  });

  it('never takes an id the caller chose', async () => {
    const res = await app().request('/ok', { headers: { 'x-request-id': 'req-someone-elses' } });
    expect(res.headers.get('x-request-id')).toBe('req-1');
  });

  it('makes ids like every other Handrail id by default', async () => {
    const a = new Hono<{ Variables: RequestIdVariables }>();
    a.use('*', requestId());
    a.get('/', (c) => c.text(c.get('requestId')));
    expect(await (await a.request('/')).text()).toMatch(/^req-[0-9a-z]{16}$/);
  });
});
