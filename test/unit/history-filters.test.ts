import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { MIGRATIONS, migrate } from '../../coordinator/store/migrations.js';
import { historyQuery, listExecutions, teamRunbooks, type ExecutionListQuery } from '../../coordinator/store/execution-queries.js';
import { historyTime, historyWindow, teamChoices } from '../../coordinator/engine/history-filters.js';
import type { ExecutionScope } from '../../coordinator/policy/visibility.js';
import { insertExecution, migratedStore } from '../helpers/store-fixture.js';

const D = (s: string): number => Date.parse(s);

describe('history time filters (pure)', () => {
  it.each<[string, 'from' | 'to', number | string]>([
    ['2026-11-23', 'from', D('2026-11-23T00:00:00Z')],
    ['2026-11-23', 'to', D('2026-11-24T00:00:00Z')],
    ['2026-11-23T09:30', 'from', D('2026-11-23T09:30:00Z')],
    ['2026-11-23T09:30', 'to', D('2026-11-23T09:30:00Z')],
    ['2026-11-23 09:30:15', 'from', D('2026-11-23T09:30:15Z')],
    ['2026-11-23T09:30:15.5Z', 'from', D('2026-11-23T09:30:15.500Z')],
    ['2026-11-23T09:30:15.123Z', 'to', D('2026-11-23T09:30:15.123Z')],
    ['2026-11-23T09:30+02:00', 'from', D('2026-11-23T07:30:00Z')],
    ['2026-11-23T09:30-05:30', 'from', D('2026-11-23T15:00:00Z')],
    ['2024-02-29', 'from', D('2024-02-29T00:00:00Z')],
    ['2026-02-29', 'from', 'is not a calendar date'],
    ['2026-13-01', 'from', 'is not a calendar date'],
    ['2026-11-31T10:00', 'from', 'is not a calendar date'],
    ['2026-11-23T24:00', 'from', 'is not a time of day'],
    ['2026-11-23T10:60', 'to', 'is not a time of day'],
    ['2026-11-23T10:00+15:00', 'from', 'has no such zone offset'],
    ['yesterday', 'from', 'is not a UTC date'],
    ['1700000000000', 'from', 'is not a UTC date'],
    ['2026-11-23T09', 'from', 'is not a UTC date'],
    ['', 'from', 'is not a UTC date'],
  ])('%s as %s', (text, edge, expected) => {
    const r = historyTime(text, edge);
    if (typeof expected === 'number') expect(r).toEqual({ ms: expected });
    else expect('error' in r && r.error).toContain(expected);
  });

  it.each<[string | undefined, string | undefined, { fromMs?: number; toMs?: number } | string]>([
    [undefined, undefined, {}],
    ['2026-11-23', undefined, { fromMs: D('2026-11-23T00:00:00Z') }],
    [undefined, '2026-11-23', { toMs: D('2026-11-24T00:00:00Z') }],
    ['2026-11-23', '2026-11-23', { fromMs: D('2026-11-23T00:00:00Z'), toMs: D('2026-11-24T00:00:00Z') }],
    ['2026-11-24', '2026-11-23', 'query parameter "to" ("2026-11-23") is not after "from" ("2026-11-24")'],
    ['2026-11-23T10:00Z', '2026-11-23T10:00Z', 'is not after'],
    ['soon', undefined, 'query parameter "from" "soon" is not a UTC date'],
    [undefined, '2026-02-30', 'query parameter "to" "2026-02-30" is not a calendar date'],
  ])('window from=%s to=%s', (from, to, expected) => {
    const r = historyWindow(from, to);
    if (typeof expected === 'string') {
      expect('error' in r && r.error).toContain(expected);
      expect('error' in r && r.error).not.toContain('\n');
    } else expect(r).toEqual({ window: expected });
  });

  it.each<[string, ExecutionScope, string[]]>([
    ['everything: every team', { all: true }, ['db', 'platform', 'web']],
    ['only teams of runbooks they may see', { all: false, user: 'wendy', runbookIds: ['web-echo'], adhoc: false }, ['platform', 'web']],
    ['nothing visible: no team named', { all: false, user: 'nina', runbookIds: [], adhoc: false }, []],
  ])('team choices: %s', (_what, scope, expected) => {
    const pairs = [
      { team: 'web', runbookId: 'web-echo' },
      { team: 'platform', runbookId: 'web-echo' },
      { team: 'db', runbookId: 'db-echo' },
      { team: 'web', runbookId: 'web-guarded' },
    ];
    expect(teamChoices(pairs, scope)).toEqual(expected);
  });
});

/**
 * web-echo was web's until T=6000 and platform's since (a hand-over): its executions keep the
 * team of their time. db-echo is db's; ad-hoc ones have no team.
 */
const ROWS = [
  { id: 'exe-01', runbookId: 'web-echo', team: 'web', requestedBy: 'wendy', createdAt: 1000 },
  { id: 'exe-02', runbookId: 'db-echo', team: 'db', requestedBy: 'dora', createdAt: 2000 },
  { id: 'exe-03', runbookId: 'db-echo', team: 'db', requestedBy: 'wendy', createdAt: 3000, state: 'failed' },
  { id: 'exe-04', runbookId: 'web-echo', team: 'web', requestedBy: 'will', createdAt: 4000, state: 'failed' },
  { id: 'exe-05', kind: 'adhoc' as const, requestedBy: 'root', createdAt: 5000 },
  { id: 'exe-06', runbookId: 'web-echo', team: 'platform', requestedBy: 'wendy', createdAt: 6000 },
  { id: 'exe-07', runbookId: 'web-guarded', team: 'web', requestedBy: 'will', createdAt: 7000 },
  { id: 'exe-08', runbookId: 'db-echo', team: 'db', requestedBy: 'dora', createdAt: 8000 },
  { id: 'exe-09', runbookId: 'web-echo', team: 'platform', requestedBy: 'pat', createdAt: 9000 },
];

const ALL: ExecutionScope = { all: true };
const WENDY: ExecutionScope = { all: false, user: 'wendy', runbookIds: ['web-echo', 'web-guarded'], adhoc: false };
const DORA: ExecutionScope = { all: false, user: 'dora', runbookIds: ['db-echo'], adhoc: false };

describe('history filtered by team and time (in the query)', () => {
  let db: Database;
  beforeAll(async () => {
    db = await migratedStore();
    for (const r of ROWS) await insertExecution(db, r);
  });
  afterAll(async () => {
    await db.close();
  });

  const ids = async (q: Partial<ExecutionListQuery>, scope: ExecutionScope, limit = 100): Promise<string[]> => {
    const out: string[] = [];
    let before: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof listExecutions>> = await listExecutions(db, { limit, ...q, ...(before ? { before } : {}) }, scope);
      out.push(...page.executions.map((e) => e.id));
      before = page.next;
    } while (before);
    return out;
  };

  it.each<[string, ExecutionScope, Partial<ExecutionListQuery>, string[]]>([
    ['a team, as it was at the time (the hand-over splits web-echo)', ALL, { team: 'web' }, ['exe-07', 'exe-04', 'exe-01']],
    ['the new owner has only what came after', ALL, { team: 'platform' }, ['exe-09', 'exe-06']],
    ['a team that never owned anything', ALL, { team: 'nobody' }, []],
    ['a team and a state', ALL, { team: 'web', state: 'failed' }, ['exe-04']],
    ['a team and a user', ALL, { team: 'platform', requestedBy: 'pat' }, ['exe-09']],
    ['a team and a runbook', ALL, { team: 'web', runbookId: 'web-guarded' }, ['exe-07']],
    ['a team and a runbook it never owned', ALL, { team: 'web', runbookId: 'db-echo' }, []],
    ['a window: from inclusive, to exclusive', ALL, { fromMs: 3000, toMs: 7000 }, ['exe-06', 'exe-05', 'exe-04', 'exe-03']],
    ['from only', ALL, { fromMs: 8000 }, ['exe-09', 'exe-08']],
    ['to only', ALL, { toMs: 2001 }, ['exe-02', 'exe-01']],
    ['a team in a window', ALL, { team: 'db', fromMs: 2500, toMs: 9000 }, ['exe-08', 'exe-03']],
    // Visibility: the team filter narrows what the reader may see, never widens it.
    ['a limited reader, their teams', WENDY, { team: 'web' }, ['exe-07', 'exe-04', 'exe-01']],
    ["another team's runbook: only their own executions of it", WENDY, { team: 'db' }, ['exe-03']],
    ["another team's runbook, someone else's executions: nothing", WENDY, { team: 'db', requestedBy: 'dora' }, []],
    ['a reader of db only asks for web: nothing (none of their own)', DORA, { team: 'web' }, []],
    ['a reader of db only asks for platform in a window', DORA, { team: 'platform', fromMs: 0 }, []],
    ['a limited reader in a window', WENDY, { fromMs: 3000, toMs: 6001 }, ['exe-06', 'exe-04', 'exe-03']],
    ['a limited reader, a team, a window and a state', WENDY, { team: 'web', fromMs: 1000, toMs: 5000, state: 'failed' }, ['exe-04']],
  ])('%s', async (_what, scope, q, expected) => {
    expect(await ids(q, scope)).toEqual(expected);
    // The keyset walk one by one gives the same rows.
    expect(await ids(q, scope, 1)).toEqual(expected);
  });

  it('returns the team of the time with each row', async () => {
    const page = await listExecutions(db, { limit: 100 }, ALL);
    expect(page.executions.map((e) => [e.id, e.team])).toContainEqual(['exe-06', 'platform']);
    expect(page.executions.map((e) => [e.id, e.team])).toContainEqual(['exe-05', null]);
  });

  it('knows every runbook a team ever owned', async () => {
    expect(await teamRunbooks(db, 'web')).toEqual(['web-echo', 'web-guarded']);
    expect(await teamRunbooks(db, 'platform')).toEqual(['web-echo']);
  });

  it('builds one arm per runbook of the team; other teams\' runbooks only for the reader\'s own executions', () => {
    const all = historyQuery({ limit: 10, team: 'web' }, ALL, ['web-echo', 'web-guarded']);
    expect(all.sql.match(/runbook_id = \?/g)).toHaveLength(2);
    expect(all.sql).not.toMatch(/requested_by = \?/);
    const limited = historyQuery({ limit: 10, team: 'db' }, WENDY, ['db-echo']);
    expect(limited.sql).toMatch(/runbook_id = \? AND requested_by = \?/);
    expect(limited.params).toContain('wendy');
    // No runbook: an empty answer, no scan.
    expect(historyQuery({ limit: 10, team: 'nobody' }, ALL, []).sql).toContain('WHERE 0');
  });

  it.each([
    { name: 'a team (admin)', q: { team: 'web' }, scope: ALL, teamIds: ['web-echo', 'web-guarded'], index: 'executions_runbook' },
    { name: 'a team and a state (admin)', q: { team: 'web', state: 'failed' }, scope: ALL, teamIds: ['web-echo', 'web-guarded'], index: 'executions_runbook_state' },
    { name: 'a team and a state (limited reader)', q: { team: 'web', state: 'failed' }, scope: WENDY, teamIds: ['web-echo', 'web-guarded'], index: 'executions_runbook_state' },
    { name: 'a runbook and a state (admin)', q: { runbookId: 'db-echo', state: 'failed' }, scope: ALL, teamIds: [], index: 'executions_runbook_state' },
    { name: 'a state (limited reader: one range per runbook)', q: { state: 'failed' }, scope: WENDY, teamIds: [], index: 'executions_runbook_state' },
    { name: 'a team and a user (admin)', q: { team: 'web', requestedBy: 'will' }, scope: ALL, teamIds: ['web-echo', 'web-guarded'], index: 'executions_runbook_requester' },
    { name: "another team's runbook (a limited reader's own)", q: { team: 'db' }, scope: WENDY, teamIds: ['db-echo'], index: 'executions_runbook_requester' },
    { name: 'a team in a window on a later page', q: { team: 'web', fromMs: 1000, toMs: 8000, before: '7000:exe-07' }, scope: WENDY, teamIds: ['web-echo', 'web-guarded'], index: 'executions_runbook' },
    { name: 'a window (admin)', q: { fromMs: 1000, toMs: 8000 }, scope: ALL, teamIds: [], index: 'executions_created' },
    { name: 'a window and a state (admin)', q: { fromMs: 1000, toMs: 8000, state: 'failed' }, scope: ALL, teamIds: [], index: 'executions_state_created' },
    { name: 'a window (limited reader)', q: { fromMs: 1000 }, scope: WENDY, teamIds: [] },
  ] as Array<{ name: string; q: Partial<ExecutionListQuery>; scope: ExecutionScope; teamIds: string[]; index?: string }>)(
    'reads $name through an index range in page order, never a scan (bench/history.ts)',
    async ({ q, scope, teamIds, index }) => {
      const { sql, params } = historyQuery({ limit: 50, ...q }, scope, teamIds);
      const plan = (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail);
      // A union's outer sort orders at most (arms × page) rows; a single range must come in page order.
      const sorts = sql.includes('UNION') ? [] : plan.filter((d) => / FOR ORDER BY$/.test(d) && !/LAST TERM/.test(d));
      expect([...plan.filter((d) => /^SCAN executions$/.test(d)), ...sorts], plan.join(' | ')).toEqual([]);
      if (index) expect(plan.join(' | ')).toMatch(new RegExp(`INDEX ${index} \\(`));
      // Every time bound is part of an index range, not a filter over a whole range.
      if (q.fromMs !== undefined && scope.all && !q.team) expect(plan.join(' | ')).toMatch(/created_at>\?/);
    },
  );
});

describe('the owner-team migration', () => {
  it("gives executions from before it their runbook's last recorded owner, and records each team's runbooks", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-mig-team-'));
    const db = await Database.open(join(dir, 'old.db'));
    try {
      // A store as the release before this migration left it.
      await db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      const before = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN owner_team'));
      expect(before).toBeGreaterThan(0);
      for (const m of MIGRATIONS.slice(0, before)) await db.exec(m);
      await db.run('INSERT INTO schema_version (version) VALUES (?)', [before]);
      await db.run("INSERT INTO runbook_refs (id, owner, tags_json, updated_at) VALUES ('web-echo', 'web', '[]', 1), ('legacy', '', '[]', 0)");
      await db.run(
        `INSERT INTO executions (id, kind, runbook_id, requested_by, state, created_at) VALUES
         ('exe-a', 'runbook', 'web-echo', 'wendy', 'succeeded', 1), ('exe-b', 'adhoc', NULL, 'root', 'succeeded', 2), ('exe-c', 'runbook', 'legacy', 'wendy', 'succeeded', 3)`,
      );
      await migrate(db);
      expect(await db.all('SELECT id, owner_team FROM executions ORDER BY id')).toEqual([
        { id: 'exe-a', owner_team: 'web' },
        { id: 'exe-b', owner_team: null },
        // A runbook recorded before owners were (owner ''): no team, rather than a made-up one.
        { id: 'exe-c', owner_team: null },
      ]);
      expect(await teamRunbooks(db, 'web')).toEqual(['web-echo']);
      expect((await listExecutions(db, { limit: 10, team: 'web' }, { all: true })).executions.map((e) => e.id)).toEqual(['exe-a']);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
