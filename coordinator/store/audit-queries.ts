/**
 * The audit aggregate's SQL: the hash-chained records, the signed checkpoints, and the audit
 * keys a bundle names. Records are only ever appended (queued into the caller's transaction).
 */
import type { Queryable, RunResult, Tx } from './database.js';

export interface AuditRecordRow {
  seq: number;
  payload: Buffer;
  key_id: string;
  signature: Buffer;
  hash: string;
}

export interface CheckpointRow {
  seq: number;
  payload: Buffer;
  key_id: string;
  signature: Buffer;
}

export interface AuditKeyRow {
  key_id: string;
  public_key_pem: string;
  created_at: number;
  retired_at: number | null;
}

const RECORD_COLUMNS = ['seq', 'payload', 'hash', 'key_id', 'signature'] as const;

/** Queues sealed records; they are written with the transaction's other rows before COMMIT. */
export function queueAuditRecords(tx: Tx, records: ReadonlyArray<{ seq: number; payload: Buffer; hash: string; keyId: string; signature: Buffer }>): void {
  for (const r of records) tx.queueInsert('audit_records', RECORD_COLUMNS, [r.seq, r.payload, r.hash, r.keyId, r.signature]);
}

/** The last record's seq and hash, if any. */
export function lastAuditRecord(q: Pick<Queryable, 'get'>): Promise<{ seq: number; hash: string } | undefined> {
  return q.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
}

/** The highest seq (0 for an empty log). */
export async function lastAuditSeq(q: Queryable): Promise<number> {
  return (await q.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM audit_records'))?.seq ?? 0;
}

/**
 * The first and last seq of the records whose `ts` lies in [fromIso, toIso] (either bound may be
 * absent), through the `ts` index; null when none does. `ts` is always toISOString()'s fixed
 * format, so string order is time order.
 */
export async function auditSeqRangeByTime(q: Queryable, b: { readonly fromIso?: string; readonly toIso?: string }): Promise<{ from: number; to: number } | null> {
  const where = [...(b.fromIso !== undefined ? ['ts >= ?'] : []), ...(b.toIso !== undefined ? ['ts <= ?'] : [])];
  const params = [...(b.fromIso !== undefined ? [b.fromIso] : []), ...(b.toIso !== undefined ? [b.toIso] : [])];
  const row = await q.get<{ lo: number | null; hi: number | null }>(`SELECT min(seq) AS lo, max(seq) AS hi FROM audit_records${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`, params);
  return row?.lo == null || row.hi == null ? null : { from: row.lo, to: row.hi };
}

/** The seqs of the records about one execution, in order. */
export async function auditSeqsOfExecution(q: Queryable, executionId: string): Promise<number[]> {
  return (await q.all<{ seq: number }>('SELECT seq FROM audit_records WHERE execution_id = ? ORDER BY seq', [executionId])).map((r) => r.seq);
}

/** The records with these seqs (at most a few hundred at a time), in order. */
export function auditRecordsBySeqs(q: Queryable, seqs: readonly number[]): Promise<AuditRecordRow[]> {
  return q.all<AuditRecordRow>(`SELECT * FROM audit_records WHERE seq IN (${seqs.map(() => '?').join(',')}) ORDER BY seq`, [...seqs]);
}

/** Records fromSeq..toSeq inclusive, in order. */
export function auditRecordsInRange(q: Queryable, fromSeq: number, toSeq: number): Promise<AuditRecordRow[]> {
  return q.all<AuditRecordRow>('SELECT * FROM audit_records WHERE seq >= ? AND seq <= ? ORDER BY seq', [fromSeq, toSeq]);
}

export function insertCheckpoint(q: Queryable, c: { seq: number; payload: Buffer; keyId: string; signature: Buffer; createdAt: number }): Promise<RunResult> {
  return q.run('INSERT OR REPLACE INTO audit_checkpoints (seq, payload, key_id, signature, created_at) VALUES (?, ?, ?, ?, ?)', [c.seq, c.payload, c.keyId, c.signature, c.createdAt]);
}

export function listCheckpoints(q: Queryable): Promise<CheckpointRow[]> {
  return q.all<CheckpointRow>('SELECT seq, payload, key_id, signature FROM audit_checkpoints ORDER BY seq');
}

/** Every audit key, retired ones included, oldest first: what a bundle's header names. */
export function auditKeys(q: Queryable): Promise<AuditKeyRow[]> {
  return q.all<AuditKeyRow>("SELECT key_id, public_key_pem, created_at, retired_at FROM signing_keys WHERE purpose = 'audit' ORDER BY created_at, key_id");
}
