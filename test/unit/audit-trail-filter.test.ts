/**
 * The audit trail's pure decisions, as tables: time bounds, filters, pages and cursors, who
 * sees the whole trail, what an export holds and the verify flag it needs, and records as
 * fields. The SQL that applies them is pinned by its query plans.
 */
import { describe, expect, it } from 'vitest';
import { exportFileName, exportPlan, pageOf, parseTrailTime, trailFilter, verifyFlag, type ExportedStretch, type TrailFilterInput } from '../../coordinator/audit/trail-filter.js';
import { describeRecord, shortHash, trailFields } from '../../coordinator/audit/trail-record.js';
import { auditTrailScope, type AuditTrailScope } from '../../coordinator/policy/visibility.js';
import { validatePolicy, type Policy } from '../../coordinator/policy/policy.js';
import { openDataDir } from '../../coordinator/data-dir.js';
import { trailQuery } from '../../coordinator/store/audit-trail-queries.js';
import { workspace } from '../helpers/processes.js';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';

const ms = (iso: string): number => Date.parse(iso);

describe('parseTrailTime', () => {
  it.each([
    ['2026-11-23', 'from', '2026-11-23T00:00:00.000Z'],
    ['2026-11-23', 'to', '2026-11-23T23:59:59.999Z'],
    ['2026-11-23T09:30', 'from', '2026-11-23T09:30:00.000Z'],
    ['2026-11-23T09:30', 'to', '2026-11-23T09:30:59.999Z'],
    ['2026-11-23 09:30:15', 'to', '2026-11-23T09:30:15.999Z'],
    ['2026-11-23T09:30:15.5Z', 'to', '2026-11-23T09:30:15.500Z'],
    ['2026-11-23T09:30:15.123Z', 'from', '2026-11-23T09:30:15.123Z'],
    ['2026-11-23T10:30+01:00', 'from', '2026-11-23T09:30:00.000Z'],
    [' 2026-11-23 ', 'from', '2026-11-23T00:00:00.000Z'],
  ] as const)('%s as %s is %s', (text, edge, iso) => {
    expect(parseTrailTime(text, edge)).toEqual({ ok: true, value: ms(iso) });
  });

  it.each(['yesterday', '2026-02-30', '2026-13-01', '2026-11-23T24:00', '2026-11-23T09:60', '23/11/2026', '2026-11-23T09', '', '1e12'])('refuses %j', (text) => {
    const r = parseTrailTime(text, 'from');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/is not a time: use YYYY-MM-DD/);
  });
});

describe('trailFilter', () => {
  it.each<[string, TrailFilterInput, unknown]>([
    ['nothing', {}, { ok: true, value: {} }],
    ['empty strings are no filter', { type: undefined, actor: '', execution: '', from: '', to: '' }, { ok: true, value: {} }],
    ['every field', { type: 'step.result', actor: 'alice', execution: 'exe-1', from: '2026-11-23', to: '2026-11-23' }, { ok: true, value: { type: 'step.result', actor: 'alice', executionId: 'exe-1', fromIso: '2026-11-23T00:00:00.000Z', toIso: '2026-11-23T23:59:59.999Z' } }],
    ['from after to', { from: '2026-11-24', to: '2026-11-23' }, { ok: false, message: 'from (2026-11-24T00:00:00.000Z) is after to (2026-11-23T23:59:59.999Z): swap them' }],
    ['a bad from names the field', { from: 'soon' }, { ok: false, message: 'from: "soon" is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601 (UTC unless a zone is given)' }],
    ['a bad to names the field', { to: 'later' }, { ok: false, message: 'to: "later" is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601 (UTC unless a zone is given)' }],
  ])('%s', (_name, input, expected) => {
    expect(trailFilter(input)).toEqual(expected);
  });
});

describe('pageOf', () => {
  const rows = (...seqs: number[]) => seqs.map((seq) => ({ seq }));
  it.each([
    ['more than a page: the cursor is the last shown', rows(9, 8, 7), 2, [9, 8], 8],
    ['exactly a page: no next', rows(9, 8), 2, [9, 8], null],
    ['less than a page', rows(3), 2, [3], null],
    ['nothing', rows(), 2, [], null],
  ] as const)('%s', (_name, input, limit, seqs, next) => {
    const p = pageOf(input, limit);
    expect([p.records.map((r) => r.seq), p.next]).toEqual([seqs, next]);
  });
});

const ALL: AuditTrailScope = { all: true };
const LIMITED: AuditTrailScope = { all: false, executions: { all: false, user: 'alice', runbookIds: ['rb-a'], adhoc: false } };

describe('exportPlan', () => {
  it.each([
    ['an execution, whole-trail reader', { executionId: 'exe-1' }, ALL, { ok: true, kind: 'execution', executionId: 'exe-1' }],
    ['an execution, limited reader (visibility checked by the caller)', { executionId: 'exe-1' }, LIMITED, { ok: true, kind: 'execution', executionId: 'exe-1' }],
    ['type and actor do not narrow a bundle', { executionId: 'exe-1', type: 'step.result' as const, actor: 'bob' }, ALL, { ok: true, kind: 'execution', executionId: 'exe-1' }],
    ['a time range', { fromIso: '2026-11-23T00:00:00.000Z', toIso: '2026-11-23T23:59:59.999Z' }, ALL, { ok: true, kind: 'range', fromMs: ms('2026-11-23T00:00:00.000Z'), toMs: ms('2026-11-23T23:59:59.999Z') }],
    ['the whole log', {}, ALL, { ok: true, kind: 'range', fromMs: undefined, toMs: undefined }],
    ['a time range, limited reader', { fromIso: '2026-11-23T00:00:00.000Z' }, LIMITED, { ok: false, status: 'forbidden' }],
    ['the whole log, limited reader', {}, LIMITED, { ok: false, status: 'forbidden' }],
    ['an execution and a time range', { executionId: 'exe-1', toIso: '2026-11-23T00:00:00.000Z' }, ALL, { ok: false, status: 'invalid' }],
  ])('%s', (_name, filter, scope, expected) => {
    expect(exportPlan(filter, scope)).toMatchObject(expected);
  });
});

describe('verifyFlag and exportFileName', () => {
  it.each<[string, ExportedStretch, string, string]>([
    ['one execution', { kind: 'execution', executionId: 'exe-1', first: 4, last: 9, toHead: false }, '--execution exe-1', 'handrail-audit-exe-1.jsonl'],
    ['the whole log', { kind: 'range', first: 1, last: 40, toHead: true }, '', 'handrail-audit-1-head.jsonl'],
    ['from a record to the head', { kind: 'range', first: 21, last: 40, toHead: true }, '--range 21..', 'handrail-audit-21-head.jsonl'],
    ['a closed range', { kind: 'range', first: 21, last: 30, toHead: false }, '--range 21..30', 'handrail-audit-21-30.jsonl'],
    ['from the start, not to the head', { kind: 'range', first: 1, last: 30, toHead: false }, '--range 1..30', 'handrail-audit-1-30.jsonl'],
    ['no records', { kind: 'range', first: null, last: null, toHead: false }, '', 'handrail-audit-empty.jsonl'],
    ['an id with odd characters stays a safe file name', { kind: 'execution', executionId: 'exe-"/../x', first: null, last: null, toHead: false }, '--execution exe-"/../x', 'handrail-audit-exe-__.._x.jsonl'],
  ])('%s', (_name, s, flag, file) => {
    expect([verifyFlag(s), exportFileName(s)]).toEqual([flag, file]);
  });
});

describe('records as fields', () => {
  it.each([
    ['flat members', { a: 'x', n: 3, b: true, z: null }, [['a', 'x'], ['n', '3'], ['b', 'true'], ['z', 'null']]],
    ['nested objects as dotted names', { options: { reason: 'disk', count: 2 }, labels: {} }, [['options.reason', 'disk'], ['options.count', '2'], ['labels', '{}']]],
    ['arrays as JSON', { targets: ['a', 'b'] }, [['targets', '["a","b"]']]],
    ['markup stays text (the page escapes it)', { m: '<script>x</script>' }, [['m', '<script>x</script>']]],
    ['no data', null, []],
  ] as const)('%s', (_name, data, fields) => {
    expect(trailFields(data).map((f) => [f.name, f.value])).toEqual(fields);
  });

  it('describes a stored record from its signed bytes', () => {
    const payload = Buffer.from(JSON.stringify({ v: 1, seq: 7, ts: '2026-11-23T09:00:00.000Z', type: 'execution.completed', code: 'HR2003', actor: { kind: 'system', id: 'coordinator' }, data: { executionId: 'exe-1', state: 'failed' }, prev: 'ab'.repeat(32), kid: 'audit-1' }));
    expect(describeRecord({ seq: 7, payload, hash: 'cd'.repeat(32), keyId: 'audit-1' })).toEqual({
      seq: 7,
      ts: '2026-11-23T09:00:00.000Z',
      type: 'execution.completed',
      code: 'HR2003',
      actor: { kind: 'system', id: 'coordinator' },
      executionId: 'exe-1',
      fields: [
        { name: 'executionId', value: 'exe-1' },
        { name: 'state', value: 'failed' },
      ],
      data: { executionId: 'exe-1', state: 'failed' },
      keyId: 'audit-1',
      hash: 'cd'.repeat(32),
      prev: 'ab'.repeat(32),
    });
    expect(shortHash('cd'.repeat(32))).toBe('cdcdcdcdcdcd…');
  });
});

function policy(rules: object[]): Policy[] {
  const r = validatePolicy({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { rules } });
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return [r.policy];
}

describe('auditTrailScope: who sees the whole trail', () => {
  const RUNBOOKS = [
    { id: 'rb-a', tags: [], owner: 'team-a' },
    { id: 'rb-b', tags: [], owner: 'team-b' },
  ];
  it.each([
    ['admin (any rule with admin)', [{ name: 'r', effect: 'allow', actions: ['admin'], subjects: ['*'] }], true],
    ['view over every runbook (no runbooks)', [{ name: 'r', effect: 'allow', actions: ['view'], subjects: ['*'] }], true],
    ['view over ids ["*"]', [{ name: 'r', effect: 'allow', actions: ['view'], subjects: ['*'], runbooks: { ids: ['*'] } }], true],
    ['view over one team only', [{ name: 'r', effect: 'allow', actions: ['view'], subjects: ['*'], runbooks: { owners: ['team-a'] } }], false],
    ['run everywhere, but not view', [{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'] }], false],
    ['view everywhere, denied view of one team', [
      { name: 'r', effect: 'allow', actions: ['view'], subjects: ['*'] },
      { name: 'd', effect: 'deny', actions: ['view'], subjects: ['*'], runbooks: { owners: ['team-b'] } },
    ], true],
    ['rules for someone else', [{ name: 'r', effect: 'allow', actions: ['*'], subjects: ['user:other'] }], false],
  ])('%s', (_name, rules, all) => {
    const scope = auditTrailScope(policy(rules), { user: 'u', groups: [] }, RUNBOOKS);
    expect(scope.all).toBe(all);
  });

  it("a limited reader's scope is the history's", () => {
    const scope = auditTrailScope(policy([{ name: 'r', effect: 'allow', actions: ['view'], subjects: ['*'], runbooks: { owners: ['team-a'] } }]), { user: 'u', groups: [] }, RUNBOOKS);
    expect(scope).toEqual({ all: false, executions: { all: false, user: 'u', runbookIds: ['rb-a'], adhoc: false } });
  });
});

describe('the trail queries read an index range in page order', () => {
  it.each([
    ['no filter', {}, ALL, /SEARCH audit_records USING INTEGER PRIMARY KEY|SCAN audit_records/],
    ['type', { type: 'step.result' as const }, ALL, /USING (COVERING )?INDEX audit_records_type/],
    ['actor', { actor: 'alice' }, ALL, /USING (COVERING )?INDEX audit_records_actor/],
    ['execution', { executionId: 'exe-1' }, ALL, /USING (COVERING )?INDEX audit_records_execution/],
    ['execution, limited reader', { executionId: 'exe-1' }, LIMITED, /USING (COVERING )?INDEX audit_records_execution/],
    ['a time range, read as its seq window', { fromIso: '2026-11-23T00:00:00.000Z', toIso: '2026-11-23T23:59:59.999Z', seqWindow: { from: 10, to: 900 } }, ALL, /USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/],
    ['a time range and a type', { type: 'step.result' as const, fromIso: '2026-11-23T00:00:00.000Z', seqWindow: { from: 10, to: 900 } }, ALL, /USING INDEX audit_records_type \(event_type=\? AND rowid>\? AND rowid<\?\)/],
    ['a limited reader who sees many executions walks the log', {}, LIMITED, /SCAN audit_records|USING INTEGER PRIMARY KEY/],
    ['a limited reader who sees few executions reads them by execution', { fewExecutions: true }, LIMITED, /USING INDEX audit_records_execution \(execution_id=\?/],
  ])('%s', async (_name, filter, scope, plan) => {
    const dir = await workspace('hr-trail-plan-');
    const data = await openDataDir(join(dir, 'data'));
    try {
      const { sql, params } = trailQuery({ ...filter, before: 1000, limit: 50 }, scope);
      const rows = (await data.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail);
      expect(rows.join('\n')).toMatch(plan);
      // Newest first straight from the index: no sort of everything that matched.
      if (!('fewExecutions' in filter)) expect(rows.join('\n')).not.toMatch(/USE TEMP B-TREE FOR ORDER BY/);
      // No Bloom filter over every execution on each page (what an EXISTS gets).
      expect(rows.join('\n')).not.toMatch(/BLOOM FILTER/);
    } finally {
      await data.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
