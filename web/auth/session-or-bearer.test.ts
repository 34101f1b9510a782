/**
 * API authentication by the portal's session cookie (GET only) or a bearer token, through
 * `app.request()`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ORIGIN, type PortalHarness, teamsPortal } from '../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('API authentication by session or bearer', () => {
  it('accepts the session cookie for GET only; a bearer token decides when present', async () => {
    const a = await h.login('alice');
    expect(await (await h.api.request(`${ORIGIN}/api/v1/whoami`, { headers: { cookie: a.cookie } })).json()).toEqual({ user: 'alice' });
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`, { method: 'POST', headers: { cookie: a.cookie } })).status).toBe(401);
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`, { headers: { cookie: a.cookie, authorization: 'Bearer hru_wrong' } })).status).toBe(401);
    const t = await h.data.users.issueToken('carol', 60_000, null, { kind: 'cli', id: 'test' }, h.clock);
    expect(await (await h.api.request(`${ORIGIN}/api/v1/whoami`, { method: 'POST', headers: { authorization: `Bearer ${t.token}` } })).json()).toEqual({ user: 'carol' });
    expect((await h.api.request(`${ORIGIN}/api/v1/whoami`)).status).toBe(401);
  });
});
