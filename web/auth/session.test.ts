/**
 * Portal sessions through `app.request()` with an injected clock: idle and absolute expiry,
 * logout (with its CSRF token) and revocation, forged cookies.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cookiesOf, form, IDLE_MS, MAX_MS, ORIGIN, type PortalHarness, teamsPortal } from '../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('portal sessions', () => {
  it('ends after the idle timeout, and activity keeps it alive', async () => {
    const { cookie } = await h.login('alice');
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
    const { cookie } = await h.login('alice');
    const start = h.clock;
    while (h.clock + 20 * 60_000 < start + MAX_MS) {
      h.clock += 20 * 60_000;
      expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(200);
    }
    h.clock = start + MAX_MS;
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(303);
  });

  it('logout ends the session on the server, and needs the CSRF token', async () => {
    const { cookie, csrf } = await h.login('alice');
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
    const a = await h.login('alice');
    expect(await h.data.sessions.endAll('alice', 'revoked', { kind: 'cli', id: 'test' }, h.clock)).toBe(1);
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie: a.cookie } })).status).toBe(303);
    const b = await h.login('alice');
    await h.data.users.setDisabled('alice', true, { kind: 'cli', id: 'test' }, h.clock);
    expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie: b.cookie } })).status).toBe(303);
  });

  it('a forged or foreign cookie opens nothing', async () => {
    for (const cookie of ['hr_session=hrs_' + 'A'.repeat(43), 'hr_session=garbage', 'hr_session=']) {
      expect((await h.app.request(`${ORIGIN}/runbooks`, { headers: { cookie } })).status).toBe(303);
    }
  });
});
