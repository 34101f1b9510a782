/**
 * The checks on every portal form post, through `app.request()`: the session's CSRF token and a
 * same-origin request, a post without a session, an oversized form; and every page's
 * Content-Security-Policy and no-store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { form, ORIGIN, type PortalHarness, teamsPortal } from '../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('portal forms and CSRF', () => {
  const run = async (cookie: string, fields: Record<string, string>, headers: Record<string, string> = { origin: ORIGIN, 'sec-fetch-site': 'same-origin' }): Promise<Response> => {
    const f = form(fields);
    return h.app.request(`${ORIGIN}/runbooks/portal-echo/run`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie, ...headers } });
  };

  it('starts nothing without the token, with another session’s token, or from another site', async () => {
    const a = await h.login('alice');
    const c = await h.login('carol', 'carol-password');
    const fields = { 'opt.message': 'hi' };
    expect((await run(a.cookie, fields)).status).toBe(403);
    expect((await run(a.cookie, { ...fields, _csrf: c.csrf })).status).toBe(403);
    expect((await run(a.cookie, { ...fields, _csrf: a.csrf }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await run(a.cookie, { ...fields, _csrf: a.csrf }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await run(a.cookie, { ...fields, _csrf: a.csrf }, { origin: 'null' })).status).toBe(403);
    const refused = await run(a.cookie, fields);
    expect(await refused.text()).toContain('Form refused');
    expect(h.starts).toEqual([]);
    const ok = await run(a.cookie, { ...fields, _csrf: a.csrf });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/executions/exe-test1');
    expect(h.starts).toEqual([{ runbookId: 'portal-echo', options: { message: 'hi' }, reason: undefined, user: 'alice' }]);
  });

  it('a form post without a session changes nothing and goes to the login page', async () => {
    const res = await run('', { 'opt.message': 'hi', _csrf: 'x' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login');
    expect(h.starts).toEqual([]);
  });

  it('refuses an oversized form', async () => {
    const a = await h.login('alice');
    const res = await run(a.cookie, { _csrf: a.csrf, 'opt.message': 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(400);
    expect(h.starts).toEqual([]);
  });

  it('every page carries a strict Content-Security-Policy and is not cached', async () => {
    const a = await h.login('alice');
    for (const path of ['/login', '/runbooks', '/runbooks/portal-echo', '/executions', '/hosts']) {
      // The login page is for browsers without a session (with one, it sends them on).
      const res = await h.app.request(`${ORIGIN}${path}`, { headers: path === '/login' ? {} : { cookie: a.cookie } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy'), path).toContain("script-src 'self'");
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get('cache-control'), path).toBe('no-store');
    }
  });
});
