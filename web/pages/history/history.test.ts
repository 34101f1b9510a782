/**
 * The history page's team and time filters through `app.request()`, and GET /api/v1/executions
 * with the same: combined with the other filters, within what each reader may see, bad values a
 * one-line 400 naming the field.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOSTILE, ORIGIN, type PortalHarness, T0, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
afterEach(() => h.close());

const DAY = 86_400_000;

/** The row ids (`data-execution`) of a history page, in order. */
const rowsOf = (html: string): string[] => [...html.matchAll(/data-execution="([^"]+)"/g)].map((m) => m[1] as string);

describe('history filtered by team and time', () => {
  beforeEach(async () => {
    h = await teamsPortal();
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
    const root = await h.login('root', 'root-password');
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
    const root = await h.login('root', 'root-password');
    const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
    expect(rowsOf((await root.get(`/executions?from=${day(T0 - DAY)}&to=${day(T0 - DAY)}`)).html)).toEqual(['exe-b2', 'exe-a2']);
    expect(rowsOf((await root.get(`/executions?from=${encodeURIComponent(new Date(T0 - DAY + 1000).toISOString())}`)).html)).toEqual(['exe-a3', 'exe-b2']);
    expect(rowsOf((await root.get(`/executions?team=team-b&to=${day(T0 - 2 * DAY)}`)).html)).toEqual(['exe-b1']);
    // The form keeps the values it was given.
    const kept = (await root.get(`/executions?from=${day(T0 - DAY)}`)).html;
    expect(kept).toContain(`value="${day(T0 - DAY)}"`);
  });

  it('narrows only what the reader may see: another team gives nothing, except their own runs', async () => {
    const alice = await h.login('alice', 'alice-password');
    // team-b's executions are not hers, whatever the filter; the list does not name team-b.
    const b = await alice.get('/executions?team=team-b');
    expect(b.status).toBe(200);
    expect(rowsOf(b.html)).toEqual([]);
    expect(b.html).not.toContain('exe-b1');
    const page = (await alice.get('/executions')).html;
    expect(page).not.toContain('<option value="team-b"');
    const carol = await h.login('carol', 'carol-password');
    // Carol may see team-b, and her own team-a run, not alice's.
    expect(rowsOf((await carol.get('/executions?team=team-a')).html)).toEqual(['exe-a3']);
    expect(rowsOf((await carol.get(`/executions?team=team-a&from=${new Date(T0 - 3 * DAY).toISOString().slice(0, 10)}`)).html)).toEqual(['exe-a3']);
    const nina = await h.login('nina', 'nina-password');
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
    const root = await h.login('root', 'root-password');
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

describe('history reads what has committed', () => {
  beforeEach(async () => {
    h = await teamsPortal();
    await h.insertExecution({ id: 'exe-done', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', at: T0 - 1000 });
  });

  it('does not list an execution whose transaction is open, nor one that rolled back; lists it once committed', async () => {
    const root = await h.login('root', 'root-password');
    const open = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-open', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'running', team: 'team-uncommitted' }, tx));
    const page = (await root.get('/executions')).html;
    expect(rowsOf(page)).toEqual(['exe-done']);
    // Nor the team only that transaction records.
    expect(page).not.toContain('team-uncommitted');
    await open.end('rollback');
    expect(rowsOf((await root.get('/executions')).html)).toEqual(['exe-done']);

    const later = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-new', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'running' }, tx));
    expect(rowsOf((await root.get('/executions')).html)).toEqual(['exe-done']);
    await later.end('commit');
    expect(rowsOf((await root.get('/executions')).html)).toEqual(['exe-new', 'exe-done']);
  });
});

describe('GET /api/v1/executions with team and time, each role', () => {
  beforeEach(async () => {
    h = await teamsPortal();
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
