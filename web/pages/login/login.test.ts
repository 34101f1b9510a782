/**
 * The login page through `app.request()` with an injected clock: where it sends a browser and
 * back, cookie attributes (Secure and `__Host-` over TLS, a proxy believed only when trusted),
 * the stored session and its audit record, wrong passwords, throttling per user and per
 * address, and the form's own CSRF checks.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cookiesOf, csrfIn, form, MAX_MS, ORIGIN, PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

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
    const rows = await h.webSessionRows();
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
