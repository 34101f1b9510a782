import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../coordinator/store/database.js';
import { historyQuery, listExecutions, type ExecutionListQuery } from '../../coordinator/store/execution-queries.js';
import type { ExecutionScope } from '../../coordinator/policy/visibility.js';
import { insertExecution, migratedStore } from '../helpers/store-fixture.js';

/**
 * Ten executions, newest last: web and db team runbooks, some ad-hoc, interleaved in time, two
 * with the same timestamp (the keyset must order them by id).
 */
const ROWS = [
  { id: 'exe-01', runbookId: 'web-echo', requestedBy: 'wendy', createdAt: 1000 },
  { id: 'exe-02', runbookId: 'db-echo', requestedBy: 'dora', createdAt: 2000 },
  { id: 'exe-03', runbookId: 'db-echo', requestedBy: 'dora', createdAt: 3000 },
  { id: 'exe-04', runbookId: 'web-echo', requestedBy: 'will', createdAt: 4000, state: 'failed' },
  { id: 'exe-05', kind: 'adhoc' as const, requestedBy: 'root', createdAt: 5000 },
  { id: 'exe-06', runbookId: 'db-echo', requestedBy: 'wendy', createdAt: 6000 },
  { id: 'exe-07', runbookId: 'db-guarded', requestedBy: 'dora', createdAt: 7000 },
  { id: 'exe-08', runbookId: 'web-guarded', requestedBy: 'wendy', createdAt: 7000 },
  { id: 'exe-09', runbookId: 'db-echo', requestedBy: 'dora', createdAt: 9000 },
  { id: 'exe-10', runbookId: 'removed-web', requestedBy: 'will', createdAt: 10000 },
];

const ALL: ExecutionScope = { all: true };
const WENDY: ExecutionScope = { all: false, user: 'wendy', runbookIds: ['web-echo', 'web-guarded', 'removed-web'], adhoc: false };
const NINA: ExecutionScope = { all: false, user: 'nina', runbookIds: [], adhoc: false };
const OPS: ExecutionScope = { all: false, user: 'oscar', runbookIds: ['db-echo'], adhoc: true };

describe('execution history filtered in the query', () => {
  let db: Database;
  beforeAll(async () => {
    db = await migratedStore();
    for (const r of ROWS) await insertExecution(db, r);
  });
  afterAll(async () => {
    await db.close();
  });

  const ids = async (q: Partial<ExecutionListQuery>, scope: ExecutionScope): Promise<string[]> => (await listExecutions(db, { limit: 100, ...q }, scope)).executions.map((e) => e.id);
  /** Every page of size `limit`, following `next`. */
  const walk = async (scope: ExecutionScope, limit: number, q: Partial<ExecutionListQuery> = {}): Promise<{ ids: string[]; cursors: string[]; pages: number[] }> => {
    const out = { ids: [] as string[], cursors: [] as string[], pages: [] as number[] };
    let before: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof listExecutions>> = await listExecutions(db, { limit, ...q, ...(before ? { before } : {}) }, scope);
      out.ids.push(...page.executions.map((e) => e.id));
      out.pages.push(page.executions.length);
      if (page.next) out.cursors.push(page.next);
      before = page.next;
    } while (before);
    return out;
  };

  it.each<[string, ExecutionScope, Partial<ExecutionListQuery>, string[]]>([
    ['everything, newest first, ties by id', ALL, {}, ['exe-10', 'exe-09', 'exe-08', 'exe-07', 'exe-06', 'exe-05', 'exe-04', 'exe-03', 'exe-02', 'exe-01']],
    ['own executions and visible runbooks (a removed one included), once each', WENDY, {}, ['exe-10', 'exe-08', 'exe-06', 'exe-04', 'exe-01']],
    ['nothing visible', NINA, {}, []],
    ['ad-hoc ones with the admin action', OPS, {}, ['exe-09', 'exe-06', 'exe-05', 'exe-03', 'exe-02']],
    ['a user filter within what is visible', WENDY, { requestedBy: 'will' }, ['exe-10', 'exe-04']],
    ['a user filter cannot reach another team', WENDY, { requestedBy: 'dora' }, []],
    ['a user and runbook filter confirms nothing', WENDY, { requestedBy: 'dora', runbookId: 'db-echo' }, []],
    ['a runbook filter on an invisible runbook still shows own runs', WENDY, { runbookId: 'db-echo' }, ['exe-06']],
    ['a state filter', WENDY, { state: 'failed' }, ['exe-04']],
  ])('%s', async (_what, scope, q, expected) => {
    expect(await ids(q, scope)).toEqual(expected);
  });

  it.each<[string, ExecutionScope, number]>([
    ['all, one by one', ALL, 1],
    ['all, three by three', ALL, 3],
    ['a team, one by one', WENDY, 1],
    ['a team, two by two', WENDY, 2],
    ['ops, one by one', OPS, 1],
  ])('a keyset walk (%s) returns the same rows as one page, and its cursors name only rows shown', async (_what, scope, limit) => {
    const one = await ids({}, scope);
    const w = await walk(scope, limit);
    expect(w.ids).toEqual(one);
    // No empty pages, no page short of the limit but the last.
    expect(w.pages.slice(0, -1).every((n) => n === limit)).toBe(true);
    for (const c of w.cursors) expect(one).toContain(c.split(':')[1]);
  });

  it('walks a filtered query the same way', async () => {
    expect((await walk(WENDY, 1, { requestedBy: 'wendy' })).ids).toEqual(['exe-08', 'exe-06', 'exe-01']);
  });

  it('refuses a cursor that is not one', async () => {
    await expect(listExecutions(db, { limit: 1, before: 'yesterday' }, ALL)).rejects.toThrow(/not a cursor/);
  });

  it('puts one index range per visible runbook in the query, and an IN list past the compound limit', () => {
    const few = historyQuery({ limit: 10 }, WENDY);
    expect(few.sql.match(/runbook_id = \?/g)).toHaveLength(3);
    expect(few.sql).toContain('UNION');
    const many = historyQuery({ limit: 10 }, { all: false, user: 'u', adhoc: false, runbookIds: Array.from({ length: 450 }, (_, i) => `rb-${i}`) });
    expect(many.sql).toContain('runbook_id IN (');
    expect(many.params).toHaveLength(2 + 451 + 1);
    expect(historyQuery({ limit: 10 }, ALL).sql).not.toContain('UNION');
  });

  it.each([
    { name: 'a state filter', q: { state: 'failed' } },
    { name: 'a state filter on a later page', q: { state: 'failed', before: '7000:exe-08' } },
    { name: 'a later page', q: { before: '7000:exe-08' } },
    { name: 'a runbook on a later page', q: { runbookId: 'db-echo', before: '7000:exe-08' } },
    { name: 'a user and a state', q: { requestedBy: 'dora', state: 'failed' } },
    { name: 'a runbook and a user', q: { runbookId: 'db-echo', requestedBy: 'wendy' }, index: 'executions_runbook_requester' },
  ] as Array<{ name: string; q: Partial<ExecutionListQuery>; index?: string }>)('reads $name through an index, never a scan of every execution (bench/history.ts)', async ({ q, index }) => {
    const { sql, params } = historyQuery({ limit: 50, ...q }, ALL);
    const plan = (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail);
    expect(plan.filter((d) => /^SCAN executions$/.test(d) || (/ FOR ORDER BY$/.test(d) && !/LAST TERM/.test(d))), plan.join(' | ')).toEqual([]);
    if (index) expect(plan.join(' | ')).toContain(index);
  });
});
