/**
 * The portal's fleet and admin pages through `app.request()`, and the API routes they share:
 *  - the history's team and time filters (page and GET /api/v1/executions): combined with the
 *    other filters, within what each reader may see, bad values a one-line 400 naming the field;
 *  - revoking an agent (confirmation, CSRF, admins only, the audit record) and the install form
 *    (the line shown once, never for non-admins, a clear message without HTTPS or a bundle);
 *  - the notification and webhook admin pages (secrets shown once, CSRF, 404 for non-admins).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cookiesOf, csrfIn, form, PortalHarness, T0, type InstallSetup } from '../helpers/portal-app.js';

const ORIGIN = 'http://localhost';
const DAY = 86_400_000;
const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`;
let h: PortalHarness;

interface Session {
  readonly cookie: string;
  readonly csrf: string;
  get(path: string): Promise<{ status: number; html: string }>;
  post(path: string, fields: Record<string, string>, o?: { csrf?: string | null; origin?: string }): Promise<Response>;
}

async function login(user: string, password: string): Promise<Session> {
  const page = await h.app.request(`${ORIGIN}/login`);
  const nonce = cookiesOf(page).get('hr_login')?.value as string;
  const f = form({ _csrf: csrfIn(await page.text()), user, password, next: '/' });
  const res = await h.app.request(`${ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: `hr_login=${nonce}`, origin: ORIGIN } });
  expect(res.status).toBe(303);
  const cookie = `hr_session=${cookiesOf(res).get('hr_session')?.value}`;
  const get = async (path: string): Promise<{ status: number; html: string }> => {
    const r = await h.app.request(`${ORIGIN}${path}`, { headers: { cookie } });
    return { status: r.status, html: await r.text() };
  };
  const csrf = csrfIn((await get('/runbooks')).html);
  return {
    cookie,
    csrf,
    get,
    post: async (path, fields, o = {}) => {
      const token = o.csrf === undefined ? csrf : o.csrf;
      const p = form({ ...(token === null ? {} : { _csrf: token }), ...fields });
      return h.app.request(`${ORIGIN}${path}`, { method: 'POST', body: p.body, headers: { ...p.headers, cookie, origin: o.origin ?? ORIGIN } });
    },
  };
}

/** The row ids (`data-execution`) of a history page, in order. */
const rowsOf = (html: string): string[] => [...html.matchAll(/data-execution="([^"]+)"/g)].map((m) => m[1] as string);

async function setup(install: InstallSetup = 'https'): Promise<void> {
  h = await PortalHarness.create({ install });
  await h.addUser('alice', ['support-a'], 'alice-password');
  await h.addUser('carol', ['team-b'], 'carol-password');
  await h.addUser('root', ['admins'], 'root-password');
  await h.addUser('nina', [], 'nina-password');
  await h.insertAgent('agt-web1', 'web-1', { role: 'web' });
  await h.insertAgent('agt-db1', 'db-1', { role: 'db' });
}

afterEach(async () => {
  await h.close();
});

describe('history filtered by team and time', () => {
  beforeEach(async () => {
    await setup();
    // Three days of history: team-a (portal-echo), team-b (portal-other); one team-a run by carol.
    const rows: Array<[string, string, string, number, string?]> = [
      ['exe-a1', 'portal-echo', 'alice', T0 - 2 * DAY],
      ['exe-b1', 'portal-other', 'carol', T0 - 2 * DAY + 1000],
      ['exe-a2', 'portal-echo', 'alice', T0 - DAY],
      ['exe-b2', 'portal-other', 'carol', T0 - DAY + 1000],
      ['exe-a3', 'portal-guarded', 'carol', T0 - 1000],
      // portal-echo before it was team-a's: it keeps the team of its time.
      ['exe-old', 'portal-echo', 'alice', T0 - 3 * DAY, 'team-legacy'],
    ];
    for (const [id, runbookId, requestedBy, at, team] of rows) await h.insertExecution({ id, runbookId, requestedBy, options: {}, state: 'succeeded', at, ...(team ? { team } : {}) });
  });

  it('filters by team and shows the team of the time, combined with the other filters and the cursor', async () => {
    const root = await login('root', 'root-password');
    const all = await root.get('/executions?team=team-a');
    expect(all.status).toBe(200);
    expect(rowsOf(all.html)).toEqual(['exe-a3', 'exe-a2', 'exe-a1']);
    // The team select offers every team ever recorded, the selected one selected.
    expect(all.html).toMatch(/<option value="team-a" selected/);
    expect(all.html).toContain('<option value="team-legacy"');
    expect(rowsOf((await root.get('/executions?team=team-legacy')).html)).toEqual(['exe-old']);
    expect(rowsOf((await root.get('/executions?team=team-a&user=carol')).html)).toEqual(['exe-a3']);
    expect(rowsOf((await root.get('/executions?team=team-a&runbook=portal-echo')).html)).toEqual(['exe-a2', 'exe-a1']);
    expect(rowsOf((await root.get('/executions?team=team-a&state=failed')).html)).toEqual([]);
    // A page of one, and "Older" keeps every filter.
    const first = await root.get('/executions?team=team-a&limit=1');
    expect(rowsOf(first.html)).toEqual(['exe-a3']);
    const older = /href="(\/executions\?[^"]*before=[^"]+)"/.exec(first.html)?.[1]?.replaceAll('&amp;', '&') as string;
    expect(older).toContain('team=team-a');
    expect(rowsOf((await root.get(`${older}&limit=1`)).html)).toEqual(['exe-a2']);
  });

  it('filters by time: a day as "to" includes that day; from inclusive', async () => {
    const root = await login('root', 'root-password');
    const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
    expect(rowsOf((await root.get(`/executions?from=${day(T0 - DAY)}&to=${day(T0 - DAY)}`)).html)).toEqual(['exe-b2', 'exe-a2']);
    expect(rowsOf((await root.get(`/executions?from=${encodeURIComponent(new Date(T0 - DAY + 1000).toISOString())}`)).html)).toEqual(['exe-a3', 'exe-b2']);
    expect(rowsOf((await root.get(`/executions?team=team-b&to=${day(T0 - 2 * DAY)}`)).html)).toEqual(['exe-b1']);
    // The form keeps the values it was given.
    const kept = (await root.get(`/executions?from=${day(T0 - DAY)}`)).html;
    expect(kept).toContain(`value="${day(T0 - DAY)}"`);
  });

  it('narrows only what the reader may see: another team gives nothing, except their own runs', async () => {
    const alice = await login('alice', 'alice-password');
    // team-b's executions are not hers, whatever the filter; the list does not name team-b.
    const b = await alice.get('/executions?team=team-b');
    expect(b.status).toBe(200);
    expect(rowsOf(b.html)).toEqual([]);
    expect(b.html).not.toContain('exe-b1');
    const page = (await alice.get('/executions')).html;
    expect(page).not.toContain('<option value="team-b"');
    const carol = await login('carol', 'carol-password');
    // Carol may see team-b, and her own team-a run, not alice's.
    expect(rowsOf((await carol.get('/executions?team=team-a')).html)).toEqual(['exe-a3']);
    expect(rowsOf((await carol.get(`/executions?team=team-a&from=${new Date(T0 - 3 * DAY).toISOString().slice(0, 10)}`)).html)).toEqual(['exe-a3']);
    const nina = await login('nina', 'nina-password');
    expect(rowsOf((await nina.get('/executions?team=team-a')).html)).toEqual([]);
  });

  it.each([
    ['team=Team%20A', /query parameter "team".*not a team name/],
    ['from=yesterday', /query parameter "from".*not a UTC date/],
    ['to=2026-02-30', /query parameter "to".*not a calendar date/],
    ['from=2026-11-23T25:00', /query parameter "from".*not a time of day/],
    ['from=2026-11-24&to=2026-11-23', /query parameter "to" \("2026-11-23"\) is not after "from" \("2026-11-24"\)/],
    [`team=${encodeURIComponent(HOSTILE)}`, /query parameter "team"/],
  ])('refuses %s with a one-line 400 naming the field, on the page and in the API', async (qs, message) => {
    const root = await login('root', 'root-password');
    const page = await root.get(`/executions?${qs}`);
    expect(page.status).toBe(400);
    const text = page.html.replace(/<[^>]+>/g, ' ').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    expect(text).toMatch(message);
    expect(page.html).not.toContain('<script>alert(1)');
    const token = (await h.data.users.issueToken('root', 3_600_000, null, { kind: 'cli', id: 'test' }, h.clock)).token;
    const api = await h.api.request(`${ORIGIN}/api/v1/executions?${qs}`, { headers: { authorization: `Bearer ${token}` } });
    expect(api.status).toBe(400);
    const body = (await api.json()) as { error: { kind: string; message: string } };
    expect(body.error.kind).toBe('invalid_argument');
    expect(body.error.message).toMatch(message);
    expect(body.error.message).not.toContain('\n');
  });
});

describe('GET /api/v1/executions with team and time, each role', () => {
  beforeEach(async () => {
    await setup();
    await h.insertExecution({ id: 'exe-a1', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', at: T0 - DAY });
    await h.insertExecution({ id: 'exe-b1', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'failed', at: T0 - DAY + 1 });
    await h.insertExecution({ id: 'exe-a2', runbookId: 'portal-guarded', requestedBy: 'carol', options: {}, state: 'succeeded', at: T0 });
  });

  it.each<[string, string, Record<string, string[]>]>([
    ['root', 'admins', { 'team=team-a': ['exe-a2', 'exe-a1'], 'team=team-b': ['exe-b1'], [`from=${new Date(T0).toISOString()}`]: ['exe-a2'], 'team=team-b&state=failed': ['exe-b1'] }],
    ['alice', 'support-a', { 'team=team-a': ['exe-a2', 'exe-a1'], 'team=team-b': [], [`from=${new Date(T0).toISOString()}`]: ['exe-a2'], 'team=team-b&state=failed': [] }],
    ['carol', 'team-b', { 'team=team-a': ['exe-a2'], 'team=team-b': ['exe-b1'], [`to=${new Date(T0).toISOString()}`]: ['exe-b1'], 'team=team-a&user=alice': [] }],
    ['nina', 'no group', { 'team=team-a': [], 'team=team-b': [], [`from=${new Date(T0 - 2 * DAY).toISOString().slice(0, 10)}`]: [] }],
  ])('%s (%s) sees only what policy lets them', async (user, _group, cases) => {
    const token = (await h.data.users.issueToken(user, 3_600_000, null, { kind: 'cli', id: 'test' }, h.clock)).token;
    for (const [qs, expected] of Object.entries(cases)) {
      const r = await h.api.request(`${ORIGIN}/api/v1/executions?${qs}`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status, qs).toBe(200);
      const body = (await r.json()) as { executions: Array<{ id: string; team: string | null }> };
      expect(body.executions.map((e) => e.id), qs).toEqual(expected);
      for (const e of body.executions) expect(e.team).toMatch(/^team-[ab]$/);
    }
  });

  it('refuses without a token', async () => {
    expect((await h.api.request(`${ORIGIN}/api/v1/executions?team=team-a`)).status).toBe(401);
  });
});

describe('revoking an agent', () => {
  beforeEach(async () => {
    await setup();
  });

  it('asks an admin to confirm, revokes with the CSRF token, audits it as the CLI does, and shows it revoked', async () => {
    const root = await login('root', 'root-password');
    const hosts = (await root.get('/hosts')).html;
    expect(hosts).toContain('href="/hosts/agt-web1/revoke"');
    const confirm = await root.get('/hosts/agt-web1/revoke');
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Revoke web-1?');
    expect(confirm.html).toContain('action="/hosts/agt-web1/revoke"');
    // Nothing happened yet: the GET only asks.
    expect((await h.data.registry.list()).find((a) => a.id === 'agt-web1')?.revokedAt).toBeNull();
    const done = await root.post('/hosts/agt-web1/revoke', { reason: 'disk stolen' });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/hosts?notice=revoked');
    expect((await h.data.registry.list()).find((a) => a.id === 'agt-web1')?.revokeReason).toBe('disk stolen');
    expect(await h.audited('agent.revoked')).toEqual([{ agentId: 'agt-web1', name: 'web-1', reason: 'disk stolen' }]);
    const after = (await root.get('/hosts?notice=revoked')).html;
    expect(after).toMatch(/data-host="web-1"[\s\S]*?state-revoked[\s\S]*?disk stolen/);
    expect(after).not.toContain('href="/hosts/agt-web1/revoke"');
    // Again: nothing more is written.
    expect((await root.post('/hosts/agt-web1/revoke', {})).headers.get('location')).toBe('/hosts?notice=already-revoked');
    expect(await h.audited('agent.revoked')).toHaveLength(1);
  });

  it('refuses a post without the CSRF token, with a wrong one, or from another site, and revokes nothing', async () => {
    const root = await login('root', 'root-password');
    expect((await root.post('/hosts/agt-web1/revoke', {}, { csrf: null })).status).toBe(403);
    expect((await root.post('/hosts/agt-web1/revoke', {}, { csrf: 'forged' })).status).toBe(403);
    expect((await root.post('/hosts/agt-web1/revoke', {}, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await h.data.registry.list()).every((a) => a.revokedAt === null)).toBe(true);
  });

  it('does not exist for non-admins: no button, 404 for the confirmation and the post', async () => {
    const alice = await login('alice', 'alice-password');
    const hosts = (await alice.get('/hosts')).html;
    expect(hosts).not.toContain('/revoke');
    expect(hosts).not.toContain('Install an agent');
    expect((await alice.get('/hosts/agt-web1/revoke')).status).toBe(404);
    expect((await alice.post('/hosts/agt-web1/revoke', {})).status).toBe(404);
    expect((await h.data.registry.list()).every((a) => a.revokedAt === null)).toBe(true);
    expect(await h.audited('agent.revoked')).toEqual([]);
  });

  it('gives 404 for an unknown or malformed agent id', async () => {
    const root = await login('root', 'root-password');
    expect((await root.get('/hosts/agt-nothere/revoke')).status).toBe(404);
    expect((await root.get(`/hosts/${encodeURIComponent(HOSTILE)}/revoke`)).status).toBe(404);
    expect((await root.post('/hosts/agt-nothere/revoke', {})).status).toBe(404);
  });

  it.each<[string, number, boolean]>([
    ['root', 200, true],
    ['alice', 403, false],
    ['carol', 403, false],
    ['nina', 403, false],
  ])('POST /api/v1/agents/{id}/revoke as %s: %i', async (user, status, revoked) => {
    const token = (await h.data.users.issueToken(user, 3_600_000, null, { kind: 'cli', id: 'test' }, h.clock)).token;
    const r = await h.api.request(`${ORIGIN}/api/v1/agents/agt-db1/revoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'api' }) });
    expect(r.status).toBe(status);
    expect((await h.data.registry.list()).find((a) => a.id === 'agt-db1')?.revokedAt !== null).toBe(revoked);
    if (revoked) {
      expect(await r.json()).toEqual({ id: 'agt-db1', status: 'revoked', alreadyRevoked: false });
      expect(await h.audited('agent.revoked')).toEqual([{ agentId: 'agt-db1', name: 'db-1', reason: 'api' }]);
    }
  });

  it('the API answers 404 for an unknown agent and 401 without a token', async () => {
    const token = (await h.data.users.issueToken('root', 3_600_000, null, { kind: 'cli', id: 'test' }, h.clock)).token;
    expect((await h.api.request(`${ORIGIN}/api/v1/agents/agt-nothere/revoke`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await h.api.request(`${ORIGIN}/api/v1/agents/agt-db1/revoke`, { method: 'POST' })).status).toBe(401);
  });
});

describe('the install form', () => {
  it('shows the one-line installer once, with the labels pinned, and never on a later page', async () => {
    await setup('https');
    const root = await login('root', 'root-password');
    const before = (await root.get('/hosts')).html;
    expect(before).toContain('action="/hosts/install"');
    const res = await root.post('/hosts/install', { labels: 'role=web, zone=a', ttl: '2h', namePattern: 'web-*', uses: '3' });
    expect(res.status).toBe(200);
    const html = await res.text();
    const line = /<textarea id="install-line"[^>]*>([^<]+)<\/textarea>/.exec(html)?.[1]?.trim() as string;
    expect(line).toContain('https://handrail.example:8443');
    expect(line).toContain('/install/agent.sh');
    expect(line).toContain('hrt_');
    expect(html).toContain('shown only this once');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const tokens = await h.data.tokens.list();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]).toMatchObject({ labels: { role: 'web', zone: 'a' }, usesAllowed: 3, namePattern: 'web-*', createdBy: 'root' });
    // The next page shows the form again, not the line.
    const again = (await root.get('/hosts')).html;
    expect(again).not.toContain(line.slice(-30));
    expect(again).not.toContain('id="install-line"');
  });

  it('keeps the values and says what is wrong, minting nothing', async () => {
    await setup('https');
    const root = await login('root', 'root-password');
    for (const [fields, message] of [
      [{ labels: 'role', ttl: '1h', namePattern: '', uses: '1' }, /Labels: label "role" must look like key=value/],
      [{ labels: '', ttl: '30d', namePattern: '', uses: '1' }, /ttl must be at least 1s and at most 7d/],
      [{ labels: '', ttl: 'soon', namePattern: '', uses: '1' }, /"ttl" is not a duration/],
      [{ labels: '', ttl: '1h', namePattern: '', uses: 'many' }, /Hosts: must be a whole number/],
    ] as Array<[Record<string, string>, RegExp]>) {
      const res = await root.post('/hosts/install', fields);
      expect(res.status).toBe(400);
      const html = (await res.text()).replace(/&quot;/g, '"');
      expect(html).toMatch(message);
      expect(html).toContain(`value="${fields['ttl']}"`);
      expect(html).not.toContain('id="install-line"');
    }
    expect(await h.data.tokens.list()).toEqual([]);
  });

  it.each<[InstallSetup, RegExp]>([
    ['http', /not https/],
    ['no-bundle', /no agent bundle to serve/],
    ['none', /does not serve the agent installer/],
  ])('without an installer (%s) says why instead of the form', async (setupKind, message) => {
    await setup(setupKind);
    const root = await login('root', 'root-password');
    const html = (await root.get('/hosts')).html;
    expect(html).toContain('data-testid="install-unavailable"');
    expect(html).toMatch(message);
    expect(html).not.toContain('action="/hosts/install"');
    const res = await root.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' });
    expect([409, 503]).toContain(res.status);
    expect(await h.data.tokens.list()).toEqual([]);
  });

  it('refuses non-admins (404) and posts without the CSRF token (403), minting nothing', async () => {
    await setup('https');
    const alice = await login('alice', 'alice-password');
    expect((await alice.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' })).status).toBe(404);
    const root = await login('root', 'root-password');
    expect((await root.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' }, { csrf: null })).status).toBe(403);
    expect(await h.data.tokens.list()).toEqual([]);
  });
});

describe('notification and webhook admin pages', () => {
  beforeEach(async () => {
    await setup();
  });

  it('are in the navigation of admins only, and 404 for everyone else', async () => {
    const root = await login('root', 'root-password');
    const nav = (await root.get('/runbooks')).html;
    expect(nav).toContain('href="/admin/notifications"');
    expect(nav).toContain('href="/admin/webhooks"');
    for (const [user, password] of [['alice', 'alice-password'], ['nina', 'nina-password']] as const) {
      const s = await login(user, password);
      expect((await s.get('/runbooks')).html).not.toContain('/admin/');
      for (const path of ['/admin/notifications', '/admin/webhooks']) expect((await s.get(path)).status).toBe(404);
      expect((await s.post('/admin/notifications', { url: 'https://x.example/h', 'event:execution.finished': 'on', enabled: 'true' })).status).toBe(404);
      expect((await s.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{}}' })).status).toBe(404);
    }
    expect(await h.notificationsList()).toEqual([]);
  });

  it('adds a subscription and shows its secret once; switches it off and on, rotates (a new secret, once), removes', async () => {
    const root = await login('root', 'root-password');
    const add = await root.post('/admin/notifications', { url: 'https://hooks.example/handrail', team: 'team-a', 'event:execution.finished': 'on', enabled: 'true', description: HOSTILE });
    expect(add.status).toBe(201);
    const html = await add.text();
    const secret = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(html)?.[1]?.trim() as string;
    expect(secret.length).toBeGreaterThan(20);
    expect(html).not.toContain('<script>alert(1)');
    const [sub] = await h.notificationsList();
    expect(sub).toMatchObject({ url: 'https://hooks.example/handrail', scope: { kind: 'team', team: 'team-a' }, events: ['execution.finished'], enabled: true });
    const id = sub?.id as string;
    const list = (await root.get('/admin/notifications')).html;
    expect(list).toContain(`data-subscription="${id}"`);
    expect(list).not.toContain(secret);
    expect((await root.post(`/admin/notifications/${id}/enabled`, { enabled: 'false' })).status).toBe(303);
    expect((await h.notificationsList())[0]?.enabled).toBe(false);
    expect((await root.post(`/admin/notifications/${id}/enabled`, { enabled: 'true' })).status).toBe(303);
    expect((await h.notificationsList())[0]?.enabled).toBe(true);
    const rotated = await (await root.post(`/admin/notifications/${id}/rotate`, {})).text();
    const next = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(rotated)?.[1]?.trim() as string;
    expect(next).toBeDefined();
    expect(next).not.toBe(secret);
    expect((await root.get('/admin/notifications')).html).not.toContain(next);
    expect((await root.post(`/admin/notifications/${id}/remove`, {})).status).toBe(303);
    expect((await root.get('/admin/notifications')).html).not.toContain(`data-subscription="${id}"`);
    // The API's audit records.
    for (const type of ['notification.subscription_created', 'notification.subscription_changed', 'notification.secret_rotated', 'notification.subscription_removed']) expect(await h.audited(type), type).not.toEqual([]);
  });

  it('says what is wrong with a subscription above the form, keeping the values', async () => {
    const root = await login('root', 'root-password');
    const both = await root.post('/admin/notifications', { url: 'https://hooks.example/h', runbook: 'portal-echo', team: 'team-a', 'event:execution.finished': 'on' });
    expect(both.status).toBe(400);
    expect((await both.text()).replace(/&quot;/g, '"')).toContain('give "runbook" or "team", not both');
    const bad = await root.post('/admin/notifications', { url: 'ftp://x', 'event:execution.finished': 'on' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('value="ftp://x"');
    expect(await h.notificationsList()).toEqual([]);
  });

  it('refuses every notification and webhook post without the CSRF token', async () => {
    const root = await login('root', 'root-password');
    expect((await root.post('/admin/notifications', { url: 'https://hooks.example/h', 'event:execution.finished': 'on' }, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{}}' }, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/notifications/ntf-abc/rotate', {}, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/webhooks/whk-abc/remove', {}, { csrf: null })).status).toBe(403);
    expect(await h.notificationsList()).toEqual([]);
  });

  it('defines a webhook and shows its secret once; rotates (a new secret, once) and removes', async () => {
    const root = await login('root', 'root-password');
    const bad = await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{not json' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('Mapping: not JSON');
    const made = await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{"message":{"path":"$.alert","default":"x"}}}', description: 'alerts' });
    const html = await made.text();
    expect(made.status, html.replace(/<[^>]+>/g, ' ').slice(0, 3000)).toBe(201);
    const secret = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(html)?.[1]?.trim() as string;
    expect(secret).toMatch(/^hrw_/);
    const id = /data-webhook="(whk-[0-9a-z]+)"/.exec(html)?.[1] as string;
    const list = (await root.get('/admin/webhooks')).html;
    expect(list).toContain(`data-webhook="${id}"`);
    expect(list).not.toContain(secret);
    const rotated = await (await root.post(`/admin/webhooks/${id}/rotate`, { revokePrevious: 'on' })).text();
    const next = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(rotated)?.[1]?.trim() as string;
    expect(next).toMatch(/^hrw_/);
    expect(next).not.toBe(secret);
    expect(rotated).toContain('the old one is refused from now');
    expect((await root.get('/admin/webhooks')).html).not.toContain(next);
    expect((await root.post(`/admin/webhooks/${id}/remove`, {})).status).toBe(303);
    expect((await root.get('/admin/webhooks')).html).not.toContain(`data-webhook="${id}"`);
  });
});
