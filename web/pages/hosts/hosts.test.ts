/**
 * The hosts page through `app.request()`: who sees which agents; revoking an agent (confirmation,
 * CSRF, admins only, the audit record) and the install form (the line shown once, never for
 * non-admins, a clear message without HTTPS or a bundle).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOSTILE, type InstallSetup, ORIGIN, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
afterEach(() => h.close());

describe('hosts page', () => {
  beforeEach(async () => {
    h = await teamsPortal();
  });

  it('shows admins every agent and others the hosts their runbooks run on', async () => {
    const r = await h.login('root', 'root-password');
    const all = (await r.get('/hosts')).html;
    for (const n of ['web-1', 'web-2', 'db-1']) expect(all).toContain(`data-host="${n}"`);
    const a = await h.login('alice', 'alice-password');
    const some = (await a.get('/hosts')).html;
    expect(some).toContain('data-host="web-1"');
    expect(some).not.toContain('data-host="db-1"');
  });
});

describe('hosts as committed', () => {
  beforeEach(async () => {
    h = await teamsPortal();
  });

  it('does not show an agent whose enrollment has not committed, on the page or in the API, nor after it rolls back', async () => {
    const root = await h.login('root', 'root-password');
    const a = await h.login('alice', 'alice-password');
    const apiIds = async (): Promise<string[]> => {
      const res = await h.api.request(`${ORIGIN}/api/v1/agents`, { headers: { cookie: root.cookie } });
      return ((await res.json()) as { agents: Array<{ id: string }> }).agents.map((a) => a.id).sort();
    };
    const open = await h.openTransaction((tx) => h.insertAgent('agt-web3', 'web-3', { role: 'web' }, tx));
    expect((await root.get('/hosts')).html).not.toContain('data-host="web-3"');
    expect((await root.get('/hosts/agt-web3/revoke')).status).toBe(404);
    expect(await apiIds()).toEqual(['agt-db1', 'agt-web1', 'agt-web2']);
    // Nor among the hosts a runbook's form says it would run on.
    expect((await a.get('/runbooks/portal-echo')).html).not.toContain('web-3');
    await open.end('rollback');
    expect((await root.get('/hosts')).html).not.toContain('data-host="web-3"');

    const later = await h.openTransaction((tx) => h.insertAgent('agt-web4', 'web-4', { role: 'web' }, tx));
    expect(await apiIds()).toEqual(['agt-db1', 'agt-web1', 'agt-web2']);
    await later.end('commit');
    expect((await root.get('/hosts')).html).toContain('data-host="web-4"');
    expect(await apiIds()).toEqual(['agt-db1', 'agt-web1', 'agt-web2', 'agt-web4']);
  });
});

describe('revoking an agent', () => {
  beforeEach(async () => {
    h = await teamsPortal();
  });

  it('asks an admin to confirm, revokes with the CSRF token, audits it as the CLI does, and shows it revoked', async () => {
    const root = await h.login('root', 'root-password');
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
    const root = await h.login('root', 'root-password');
    expect((await root.post('/hosts/agt-web1/revoke', {}, { csrf: null })).status).toBe(403);
    expect((await root.post('/hosts/agt-web1/revoke', {}, { csrf: 'forged' })).status).toBe(403);
    expect((await root.post('/hosts/agt-web1/revoke', {}, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await h.data.registry.list()).every((a) => a.revokedAt === null)).toBe(true);
  });

  it('does not exist for non-admins: no button, 404 for the confirmation and the post', async () => {
    const alice = await h.login('alice', 'alice-password');
    const hosts = (await alice.get('/hosts')).html;
    expect(hosts).not.toContain('/revoke');
    expect(hosts).not.toContain('Install an agent');
    expect((await alice.get('/hosts/agt-web1/revoke')).status).toBe(404);
    expect((await alice.post('/hosts/agt-web1/revoke', {})).status).toBe(404);
    expect((await h.data.registry.list()).every((a) => a.revokedAt === null)).toBe(true);
    expect(await h.audited('agent.revoked')).toEqual([]);
  });

  it('gives 404 for an unknown or malformed agent id', async () => {
    const root = await h.login('root', 'root-password');
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
    h = await teamsPortal({ install: 'https' });
    const root = await h.login('root', 'root-password');
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
    h = await teamsPortal({ install: 'https' });
    const root = await h.login('root', 'root-password');
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
    h = await teamsPortal({ install: setupKind });
    const root = await h.login('root', 'root-password');
    const html = (await root.get('/hosts')).html;
    expect(html).toContain('data-testid="install-unavailable"');
    expect(html).toMatch(message);
    expect(html).not.toContain('action="/hosts/install"');
    const res = await root.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' });
    expect([409, 503]).toContain(res.status);
    expect(await h.data.tokens.list()).toEqual([]);
  });

  it('refuses non-admins (404) and posts without the CSRF token (403), minting nothing', async () => {
    h = await teamsPortal({ install: 'https' });
    const alice = await h.login('alice', 'alice-password');
    expect((await alice.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' })).status).toBe(404);
    const root = await h.login('root', 'root-password');
    expect((await root.post('/hosts/install', { labels: '', ttl: '1h', namePattern: '', uses: '1' }, { csrf: null })).status).toBe(403);
    expect(await h.data.tokens.list()).toEqual([]);
  });
});
