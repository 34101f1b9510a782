/**
 * Portal logins, sessions and CSRF through `app.request()` with an injected clock: cookie
 * attributes, idle and absolute expiry, logout and revocation, throttling per user and per
 * address, audit records, and the checks on every form post.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cookiesOf, csrfIn, form, IDLE_MS, MAX_MS, PortalHarness } from '../helpers/portal-app.js';

const ORIGIN = 'http://localhost';
let h: PortalHarness;

async function loginPage(path = '/login'): Promise<{ nonce: string; cookie: string; html: string }> {
  const res = await h.app.request(`${ORIGIN}${path}`);
  expect(res.status).toBe(200);
  const html = await res.text();
  const c = cookiesOf(res).get('hr_login');
  expect(c).toBeDefined();
  return { nonce: csrfIn(html), cookie: `hr_login=${c?.value}`, html };
}

async function postLogin(user: string, password: string, o: { headers?: Record<string, string>; next?: string; base?: string } = {}): Promise<Response> {
  const p = await loginPage();
  const f = form({ _csrf: p.nonce, user, password, next: o.next ?? '/' });
  return h.app.request(`${o.base ?? ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: p.cookie, origin: o.base ?? ORIGIN, 'sec-fetch-site': 'same-origin', ...o.headers } });
}

/** Logs in and returns the session cookie header and the page's CSRF token. */
async function login(user = 'alice', password = 'alice-password'): Promise<{ cookie: string; csrf: string }> {
  const res = await postLogin(user, password);
  expect(res.status, await res.clone().text()).toBe(303);
  const s = cookiesOf(res).get('hr_session');
  expect(s).toBeDefined();
  const cookie = `hr_session=${s?.value}`;
  const page = await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } });
  expect(page.status).toBe(200);
  return { cookie, csrf: csrfIn(await page.text()) };
}

beforeEach(async () => {
  h = await PortalHarness.create();
  await h.addUser('alice', ['support-a'], 'alice-password');
  await h.addUser('carol', ['team-b'], 'carol-password');
});
afterEach(async () => {
  await h.close();
});

describe('portal login', () => {
  it('sends a browser without a session to the login page and back', async () => {
    const res = await h.app.request(`${ORIGIN}/runbooks/portal-echo?x=1`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Frunbooks%2Fportal-echo%3Fx%3D1');
    const ok = await postLogin('alice', 'alice-password', { next: '/runbooks/portal-echo?x=1' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/runbooks/portal-echo?x=1');
  });

  it('never redirects off the site after login', async () => {
    for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const res = await postLogin('alice', 'alice-password', { next });
      expect(res.headers.get('location'), next).toBe('/');
    }
  });

  it('sets an HttpOnly, SameSite=Lax session cookie, Secure with the __Host- prefix over TLS', async () => {
    const plain = cookiesOf(await postLogin('alice', 'alice-password')).get('hr_session');
    expect(plain?.attrs).toContain('HttpOnly');
    expect(plain?.attrs).toContain('SameSite=Lax');
    expect(plain?.attrs).toContain('Path=/');
    expect(plain?.attrs).not.toContain('Secure');
    expect(plain?.value).toMatch(/^hrs_[A-Za-z0-9_-]{43}$/);

    const res = await h.app.request('https://localhost/login');
    const nonce = cookiesOf(res).get('__Host-hr_login');
    expect(nonce?.attrs).toContain('Secure');
    const f = form({ _csrf: csrfIn(await res.text()), user: 'alice', password: 'alice-password', next: '/' });
    const tls = await h.app.request('https://localhost/login', { method: 'POST', body: f.body, headers: { ...f.headers, cookie: `__Host-hr_login=${nonce?.value}`, origin: 'https://localhost' } });
    expect(tls.status).toBe(303);
    const secure = cookiesOf(tls).get('__Host-hr_session');
    expect(secure?.attrs).toContain('Secure');
    expect(secure?.attrs).toContain('HttpOnly');
    expect(secure?.attrs).toContain('SameSite=Lax');
  });

  it('believes X-Forwarded-Proto only when told it is behind a proxy', async () => {
    const untrusted = await postLogin('alice', 'alice-password', { headers: { 'x-forwarded-proto': 'https' } });
    expect(cookiesOf(untrusted).has('hr_session')).toBe(true);
    await h.close();
    h = await PortalHarness.create({ trustProxy: true });
    await h.addUser('alice', ['support-a'], 'alice-password');
    const res = await h.app.request(`${ORIGIN}/login`, { headers: { 'x-forwarded-proto': 'https' } });
    const nonce = cookiesOf(res).get('__Host-hr_login');
    const f = form({ _csrf: csrfIn(await res.text()), user: 'alice', password: 'alice-password', next: '/' });
    const ok = await h.app.request(`${ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: `__Host-hr_login=${nonce?.value}`, origin: 'https://localhost', 'x-forwarded-proto': 'https' } });
    expect(ok.status).toBe(303);
    expect(cookiesOf(ok).get('__Host-hr_session')?.attrs).toContain('Secure');
  });

  it('stores only a hash of the session secret and audits the login', async () => {
    const res = await postLogin('alice', 'alice-password', { headers: { 'user-agent': 'test-browser' } });
    const secret = cookiesOf(res).get('hr_session')?.value as string;
    const rows = await h.data.db.all<Record<string, unknown>>('SELECT * FROM web_sessions');
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(secret);
    const [ok] = await h.audited('login.succeeded');
    expect(ok).toMatchObject({ user: 'alice', sessionId: rows[0]?.['id'], expiresAt: new Date(h.clock + MAX_MS).toISOString() });
    expect(JSON.stringify(await h.audited('login.succeeded'))).not.toContain(secret);
  });

  it('refuses a wrong password without saying which part was wrong, and audits it', async () => {
    for (const [user, password] of [['alice', 'wrong-password'], ['nobody', 'whatever-pass']] as const) {
      const res = await postLogin(user, password);
      expect(res.status).toBe(401);
      const html = await res.text();
      expect(html).toContain('Wrong user name or password.');
      expect(html).toContain(`value="${user}"`);
      expect(cookiesOf(res).has('hr_session')).toBe(false);
    }
    expect(await h.audited('login.failed')).toEqual([
      { user: 'alice', remote: 'unknown', reason: 'wrong user name or password' },
      { user: 'nobody', remote: 'unknown', reason: 'wrong user name or password' },
    ]);
  });

  it('throttles a user after 5 failures, even with the right password, until the window passes', async () => {
    for (let i = 0; i < 5; i++) expect((await postLogin('alice', `wrong-${i}-password`)).status).toBe(401);
    const blocked = await postLogin('alice', 'alice-password');
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBe(15 * 60);
    expect(await blocked.text()).toContain('Too many failed logins');
    // Another user from the same address is not blocked by alice's count.
    expect((await postLogin('carol', 'carol-password')).status).toBe(303);
    expect((await h.audited('login.failed')).filter((r) => r['reason'] === 'throttled')).toHaveLength(1);
    h.clock += 15 * 60_000 + 1;
    expect((await postLogin('alice', 'alice-password')).status).toBe(303);
  });

  it('throttles an address after 20 failures, whatever the user names', async () => {
    await h.close();
    h = await PortalHarness.create({ trustProxy: true });
    await h.addUser('alice', ['support-a'], 'alice-password');
    const from = (ip: string): Record<string, string> => ({ 'x-forwarded-for': `203.0.113.9, ${ip}` });
    for (let i = 0; i < 20; i++) expect((await postLogin(`guess${i}`, 'password1', { headers: from('198.51.100.7') })).status).toBe(401);
    expect((await postLogin('alice', 'alice-password', { headers: from('198.51.100.7') })).status).toBe(429);
    expect((await postLogin('alice', 'alice-password', { headers: from('198.51.100.8') })).status).toBe(303);
    expect((await h.audited('login.failed'))[0]).toMatchObject({ remote: '198.51.100.7' });
  });

  it('refuses a login post from another site or without its token', async () => {
    expect((await postLogin('alice', 'alice-password', { headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await postLogin('alice', 'alice-password', { headers: { 'sec-fetch-site': 'same-site' } })).status).toBe(403);
    const p = await loginPage();
    const f = form({ user: 'alice', password: 'alice-password' });
    const noToken = await h.app.request(`${ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: p.cookie } });
    expect(noToken.status).toBe(403);
    expect(cookiesOf(noToken).has('hr_session')).toBe(false);
  });
});

describe('portal sessions', () => {
  it('ends after the idle timeout, and activity keeps it alive', async () => {
    const { cookie } = await login();
    const get = async (): Promise<Response> => h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } });
    h.clock += IDLE_MS - 60_000;
    expect((await get()).status).toBe(200);
    h.clock += IDLE_MS - 60_000;
    expect((await get()).status).toBe(200);
    h.clock += IDLE_MS + 1;
    const res = await get();
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2Frunbooks');
    // The dead cookie is cleared.
    expect(cookiesOf(res).get('hr_session')?.attrs).toMatch(/Max-Age=0/);
  });

  it('ends at its absolute expiry however busy', async () => {
    const { cookie } = await login();
    const start = h.clock;
    while (h.clock + 20 * 60_000 < start + MAX_MS) {
      h.clock += 20 * 60_000;
      expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(200);
    }
    h.clock = start + MAX_MS;
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(303);
  });

  it('logout ends the session on the server, and needs the CSRF token', async () => {
    const { cookie, csrf } = await login();
    const noToken = form({});
    expect((await h.app.request(`${ORIGIN}/logout`, { method: 'POST', body: noToken.body, headers: { ...noToken.headers, cookie, origin: ORIGIN } })).status).toBe(403);
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(200);
    const f = form({ _csrf: csrf });
    const out = await h.app.request(`${ORIGIN}/logout`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie, origin: ORIGIN } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?bye');
    expect(cookiesOf(out).get('hr_session')?.attrs).toMatch(/Max-Age=0/);
    // The same cookie, replayed, opens nothing.
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(303);
    expect(await h.audited('session.ended')).toEqual([{ user: 'alice', sessionId: expect.stringMatching(/^ses-/) as unknown, reason: 'logout' }]);
    expect(await (await h.app.request(`${ORIGIN}/login?bye`)).text()).toContain('You are logged out.');
  });

  it('revoking a user’s sessions (a password change) and disabling the user end them at once', async () => {
    const a = await login();
    expect(await h.data.sessions.endAll('alice', 'revoked', { kind: 'cli', id: 'test' }, h.clock)).toBe(1);
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie: a.cookie } })).status).toBe(303);
    const b = await login();
    await h.data.users.setDisabled('alice', true, { kind: 'cli', id: 'test' }, h.clock);
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie: b.cookie } })).status).toBe(303);
  });

  it('a forged or foreign cookie opens nothing', async () => {
    for (const cookie of ['hr_session=hrs_' + 'A'.repeat(43), 'hr_session=garbage', 'hr_session=']) {
      expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(303);
    }
  });
});

describe('portal forms and CSRF', () => {
  const run = async (cookie: string, fields: Record<string, string>, headers: Record<string, string> = { origin: ORIGIN, 'sec-fetch-site': 'same-origin' }): Promise<Response> => {
    const f = form(fields);
    return h.app.request(`${ORIGIN}/runbooks/portal-echo/run`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie, ...headers } });
  };

  it('starts nothing without the token, with another session’s token, or from another site', async () => {
    const a = await login();
    const c = await login('carol', 'carol-password');
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
    const a = await login();
    const res = await run(a.cookie, { _csrf: a.csrf, 'opt.message': 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(400);
    expect(h.starts).toEqual([]);
  });

  it('every page carries a strict Content-Security-Policy and is not cached', async () => {
    const a = await login();
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

describe('API authentication by session or bearer', () => {
  it('accepts the session cookie for GET only; a bearer token decides when present', async () => {
    const a = await login();
    expect(await (await h.api.request(`${ORIGIN}/api/v1/whoami`, { headers: { cookie: a.cookie } })).json()).toEqual({ user: 'alice' });
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`, { method: 'POST', headers: { cookie: a.cookie } })).status).toBe(401);
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`, { headers: { cookie: a.cookie, authorization: 'Bearer hru_wrong' } })).status).toBe(401);
    const t = await h.data.users.issueToken('carol', 60_000, null, { kind: 'cli', id: 'test' }, h.clock);
    expect(await (await h.api.request(`${ORIGIN}/api/v1/whoami`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` } })).json()).toEqual({ user: 'carol' });
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`)).status).toBe(401);
  });
});
