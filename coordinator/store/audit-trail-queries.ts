/**
 * The audit trail's SQL (the portal's /audit page and /api/v1/audit): filtered pages of
 * records newest first, keyset-paginated on seq, with the reader's scope applied in the query
 * so that every page is full and its cursor continues right after the last record shown; one
 * record by seq under the same scope; the seq stretch a time range covers; verification runs.
 *
 * Filters read the generated columns of migration 9 (event_type, actor_id, execution_id, ts)
 * through their indexes; seq is the rowid, so an index range is already in page order.
 */
import type { Database, SqlValue, Tx } from './database.js';
import type { AuditTrailScope } from '../policy/visibility.js';
import type { TrailPageQuery } from '../audit/trail-filter.js';

export interface StoredRecord {
  readonly seq: number;
  readonly payload: Buffer;
  readonly hash: string;
  readonly keyId: string;
}

const COLUMNS = 'seq, payload, hash, key_id';

/**
 * The scope as a condition on audit_records: everything, or only records whose execution the
 * reader may see (the history's rule: their own, a runbook they may view or approve, ad-hoc
 * with admin). Correlated, so a page walks records newest first and stops when it is full;
 * a reader of few executions has them drive the execution index instead.
 */
function scopeCondition(scope: AuditTrailScope, few = false): { sql: string; params: SqlValue[] } | null {
  if (scope.all) return null;
  const s = scope.executions;
  if (s.all) return { sql: 'execution_id IS NOT NULL', params: [] };
  const { sql, params } = visibleExecutions(scope);
  // Few: the reader's executions drive the execution index. Many: the log is walked newest first.
  if (few) return { sql: `execution_id IS NOT NULL AND execution_id IN (SELECT e.id FROM executions e WHERE ${sql})`, params };
  // A correlated scalar subquery, not EXISTS: for EXISTS SQLite builds a Bloom filter over the
  // whole executions table first, on every page (52 ms of CPU at 200,000 executions against
  // about 1 ms this way; bench/audit-trail.ts).
  return { sql: `execution_id IS NOT NULL AND (SELECT ${sql} FROM executions e WHERE e.id = audit_records.execution_id)`, params };
}

/** The executions a limited reader may see, as a condition on executions `e`. */
function visibleExecutions(scope: AuditTrailScope): { sql: string; params: SqlValue[] } {
  if (scope.all || scope.executions.all) return { sql: '1', params: [] };
  const s = scope.executions;
  const arms: string[] = ['e.requested_by = ?'];
  const params: SqlValue[] = [s.user];
  if (s.runbookIds.length > 0) {
    arms.push(`(e.kind = 'runbook' AND e.runbook_id IN (${s.runbookIds.map(() => '?').join(', ')}))`);
    params.push(...s.runbookIds);
  }
  if (s.adhoc) arms.push("e.kind = 'adhoc'");
  return { sql: arms.join(' OR '), params };
}

/**
 * Whether a limited reader sees at most `max` executions (counted up to max + 1 only), so
 * their records are looked up execution by execution rather than by walking the log.
 */
export async function seesFewExecutions(db: Database, scope: AuditTrailScope, max: number): Promise<boolean> {
  if (scope.all || scope.executions.all) return false;
  const { sql, params } = visibleExecutions(scope);
  const n = (await db.get<{ n: number }>(`SELECT count(*) AS n FROM (SELECT 1 FROM executions e WHERE ${sql} LIMIT ?)`, [...params, max + 1]))?.n ?? 0;
  return n <= max;
}

/**
 * The seq stretch of records whose time is within the (already widened) bounds, read at the two
 * ends of the time index; null when no record is in it.
 */
export async function seqWindow(db: Database, b: { readonly fromIso?: string; readonly toIso?: string }): Promise<{ from: number; to: number } | null> {
  const lo = b.fromIso === undefined ? { seq: 1 } : await db.get<{ seq: number }>('SELECT seq FROM audit_records WHERE ts >= ? ORDER BY ts, seq LIMIT 1', [b.fromIso]);
  const hi = b.toIso === undefined ? { seq: Number.MAX_SAFE_INTEGER } : await db.get<{ seq: number }>('SELECT seq FROM audit_records WHERE ts <= ? ORDER BY ts DESC, seq DESC LIMIT 1', [b.toIso]);
  if (!lo || !hi || lo.seq > hi.seq) return null;
  return { from: lo.seq, to: hi.seq };
}

/** The page query for a filter, cursor and scope (exported for the plan test and the benchmark). */
export function trailQuery(q: TrailPageQuery, scope: AuditTrailScope): { sql: string; params: SqlValue[] } {
  const where: string[] = [];
  const params: SqlValue[] = [];
  const add = (sql: string, ...p: SqlValue[]): void => {
    where.push(sql);
    params.push(...p);
  };
  if (q.type !== undefined) add('event_type = ?', q.type);
  if (q.actor !== undefined) add('actor_id = ?', q.actor);
  if (q.executionId !== undefined) add('execution_id = ?', q.executionId);
  // With a seq window, the time test only keeps what is in range (the unary + keeps the planner
  // off the time index: the window is the range to read, in page order).
  const ts = q.seqWindow ? '+ts' : 'ts';
  if (q.fromIso !== undefined) add(`${ts} >= ?`, q.fromIso);
  if (q.toIso !== undefined) add(`${ts} <= ?`, q.toIso);
  if (q.seqWindow) add('seq BETWEEN ? AND ?', q.seqWindow.from, q.seqWindow.to);
  if (q.before !== undefined) add('seq < ?', q.before);
  const s = scopeCondition(scope, q.fewExecutions === true);
  if (s) add(s.sql, ...s.params);
  return { sql: `SELECT ${COLUMNS} FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`, params: [...params, q.limit + 1] };
}

type Row = { seq: number; payload: Buffer; hash: string; key_id: string };
const stored = (r: Row): StoredRecord => ({ seq: r.seq, payload: r.payload, hash: r.hash, keyId: r.key_id });

/** Up to limit + 1 records, newest first (the extra one tells whether there is a next page). */
export async function trailRows(db: Database, q: TrailPageQuery, scope: AuditTrailScope): Promise<StoredRecord[]> {
  const { sql, params } = trailQuery(q, scope);
  return (await db.all<Row>(sql, params)).map(stored);
}

/** Record `seq`, if it exists and the scope covers it. */
export async function trailRecordRow(db: Database, seq: number, scope: AuditTrailScope): Promise<StoredRecord | undefined> {
  const s = scopeCondition(scope);
  const row = await db.get<Row>(`SELECT ${COLUMNS} FROM audit_records WHERE seq = ?${s ? ` AND ${s.sql}` : ''}`, [seq, ...(s?.params ?? [])]);
  return row ? stored(row) : undefined;
}

// ------------------------------------------------------------------ verification runs

export interface VerificationRun {
  readonly id: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly actor: { readonly kind: string; readonly id: string };
  readonly source: string;
  readonly ok: boolean;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly firstBadSeq: number | null;
  readonly reason: string | null;
}

/** Stores a finished run in `tx` (with its audit record beside it); returns its id. */
export async function insertVerification(tx: Tx, v: Omit<VerificationRun, 'id'>): Promise<number> {
  const { lastID } = await tx.run('INSERT INTO audit_verifications (started_at, finished_at, actor_kind, actor_id, source, ok, records, first_seq, last_seq, first_bad_seq, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
    v.startedAt,
    v.finishedAt,
    v.actor.kind,
    v.actor.id,
    v.source,
    v.ok ? 1 : 0,
    v.records,
    v.firstSeq,
    v.lastSeq,
    v.firstBadSeq,
    v.reason,
  ]);
  // INTEGER PRIMARY KEY: SQLite gives max(id) + 1.
  return lastID;
}

export async function lastVerification(db: Database): Promise<VerificationRun | undefined> {
  const r = await db.get<{ id: number; started_at: number; finished_at: number; actor_kind: string; actor_id: string; source: string; ok: number; records: number; first_seq: number | null; last_seq: number | null; first_bad_seq: number | null; reason: string | null }>(
    'SELECT * FROM audit_verifications ORDER BY id DESC LIMIT 1',
  );
  if (!r) return undefined;
  return {
    id: r.id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    actor: { kind: r.actor_kind, id: r.actor_id },
    source: r.source,
    ok: r.ok === 1,
    records: r.records,
    firstSeq: r.first_seq,
    lastSeq: r.last_seq,
    firstBadSeq: r.first_bad_seq,
    reason: r.reason,
  };
}
