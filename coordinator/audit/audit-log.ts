/**
 * The append-only audit log in the store (format: docs/audit-format.md). Records are appended
 * inside the caller's transaction, so a state change and its record commit together or not at
 * all.
 *
 * The chain head is kept in memory from one commit to the next instead of being read back in
 * every transaction (a statement per transaction on the hot path). Another process (an admin
 * CLI command) may append in between: then the record this process queues takes a sequence
 * number that exists already, the INSERT fails on the primary key, the transaction rolls back,
 * the head is forgotten and the transaction runs once more from the head read in the store.
 * So the guard is the store itself, not a timing assumption.
 */
import type { Database, Tx } from '../store/database.js';
import { insertCheckpoint, lastAuditRecord, queueAuditRecords } from '../store/audit-queries.js';
import type { Keyring, SigningKey } from '../pki/keyring.js';
import type { Logger } from 'pino';
import type { AuditEventInput } from './events.js';
import { chainRecord, GENESIS_PREV, sealCheckpoint, type ChainedRecord } from './record.js';
import { RecordSigner, type RecordSignerOptions } from './record-signer.js';


export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditLogOptions {
  /** Where a failure of the signing worker is logged (audit.signing_worker_failed). */
  readonly log?: Logger;
  /** For tests: the signer's settings (a broken worker program, to prove the failure is reported). */
  readonly signer?: RecordSignerOptions;
}

export class AuditLog {
  /**
   * The head as of the last append in transaction `txId`. A promise, so that two appends
   * started concurrently in one transaction still chain one after the other. Records are
   * queued (`queueInsert`) and only written at COMMIT, so within a transaction this cache, not
   * the table, is the truth.
   */
  private cached: { readonly txId: number; readonly head: Promise<AuditHead> } | undefined;
  /** The head as of this process's last commit that appended; undefined: read it from the store. */
  private committed: AuditHead | undefined;
  /** The last head sealed in transaction `txId`, taken as `committed` when that transaction commits. */
  private sealedIn: { txId: number; head: AuditHead } | undefined;
  /** Records chained in transaction `txId` and not yet signed: signed together, then queued. */
  private unsigned: { readonly txId: number; readonly records: Array<{ rec: ChainedRecord; key: SigningKey }> } | undefined;
  private readonly signer: RecordSigner;

  constructor(
    private readonly db: Database,
    private readonly keyring: Keyring,
    private readonly now: () => number,
    options: AuditLogOptions = {},
  ) {
    db.retryTransactionsWhen(isSeqConflict);
    const { log, signer } = options;
    this.signer = new RecordSigner({
      ...signer,
      // Nothing is lost (this thread signs everything from then on), but large appends get slower:
      // an operator should see why.
      onWorkerFailure: (e) => {
        log?.warn({ event: 'audit.signing_worker_failed', err: e }, 'the audit signing worker failed; audit records are signed on the main thread from now on');
        signer?.onWorkerFailure?.(e);
      },
    });
  }

  /** Appends one record per event, in order, inside `tx`; returns them chained (they are signed when `tx` writes them). */
  append(tx: Tx, events: AuditEventInput | readonly AuditEventInput[]): Promise<ChainedRecord[]> {
    // Signed with the key active now: a rotation between transactions is picked up at once.
    return this.appendWith(tx, events, () => this.keyring.active('audit'));
  }

  /**
   * Appends records signed with `key` rather than the active key. For the key.rotated record
   * only: it must be signed with the key being retired, so that a verifier which trusts that key
   * comes to trust the new one through it (docs/audit-format.md, key trust).
   */
  appendSignedWith(tx: Tx, key: SigningKey, events: AuditEventInput | readonly AuditEventInput[]): Promise<ChainedRecord[]> {
    if (key.purpose !== 'audit') throw new Error(`audit records are signed with an audit key, not a ${key.purpose} key`);
    return this.appendWith(tx, events, () => key);
  }

  private appendWith(tx: Tx, events: AuditEventInput | readonly AuditEventInput[], signer: () => SigningKey): Promise<ChainedRecord[]> {
    const list: readonly AuditEventInput[] = Array.isArray(events) ? events : [events as AuditEventInput];
    let before: Promise<AuditHead>;
    if (this.cached?.txId === tx.txId) {
      before = this.cached.head;
    } else {
      // First append in this transaction.
      before = this.committed ? Promise.resolve(this.committed) : this.readHead(tx);
      const txId = tx.txId;
      tx.afterCommit(() => {
        if (this.sealedIn?.txId === txId) this.committed = this.sealedIn.head;
      });
      // Whatever ended it (another process's records among them), the store has the truth.
      tx.afterRollback(() => {
        this.committed = undefined;
        if (this.unsigned?.txId === txId) this.unsigned = undefined;
      });
    }
    const sealed = before.then((head) => {
      const key = signer();
      const ts = this.now();
      const out: ChainedRecord[] = [];
      let seq = head.seq;
      let prev = head.hash;
      // Chain everything before queueing anything, so a refused event leaves no partial chain.
      for (const e of list) {
        const rec = chainRecord(e, ++seq, prev, ts, key.keyId);
        prev = rec.hash;
        out.push(rec);
      }
      this.queueForSigning(tx, out, key);
      const last = out.at(-1);
      if (last) this.sealedIn = { txId: tx.txId, head: { seq: last.seq, hash: last.hash } };
      return out;
    });
    const after = sealed.then(
      (out) => out.at(-1) ?? before,
      // A failed append queued nothing: the next append in this transaction starts from the same head.
      () => before,
    );
    // The caller sees the failure through `sealed`; this copy must not surface as unhandled.
    after.catch(() => undefined);
    this.cached = { txId: tx.txId, head: after };
    return sealed;
  }

  /**
   * Records are signed when the transaction writes them (Tx.queueLater), all of a transaction's
   * at once, so that a large batch is signed on two threads (record-signer.ts).
   */
  private queueForSigning(tx: Tx, records: readonly ChainedRecord[], key: SigningKey): void {
    let batch = this.unsigned;
    if (batch?.txId !== tx.txId) {
      const mine = { txId: tx.txId, records: [] as Array<{ rec: ChainedRecord; key: SigningKey }> };
      this.unsigned = batch = mine;
      tx.queueLater('audit_records', async () => {
        // Records appended after this point (a statement flushed the transaction midway) start a new batch.
        if (this.unsigned === mine) this.unsigned = undefined;
        const sigs = await this.signer.sign(mine.records.map((r) => ({ payload: r.rec.payload, key: r.key.privateKey })));
        queueAuditRecords(tx, mine.records.map((r, i) => ({ ...r.rec, signature: sigs[i] as Buffer })));
      });
    }
    for (const rec of records) batch.records.push({ rec, key });
  }

  /** Stops the signing worker, if one was started. */
  close(): Promise<void> {
    return this.signer.close();
  }

  /**
   * Forgets the head kept in memory: the next transaction reads it from the store. For a log
   * whose records were removed under it (a guard against duplicate seqs cannot see a shorter
   * log), e.g. a test that starts a fresh timeline in a store that already has records.
   */
  forgetHead(): void {
    this.committed = undefined;
    this.cached = undefined;
  }

  /** The last record's seq and hash (seq 0 and 64 zeros for an empty log). */
  async head(): Promise<AuditHead> {
    return this.readHead(this.db);
  }

  private readHead(q: Pick<Tx, 'get'>): Promise<AuditHead> {
    return readAuditHead(q);
  }

  /**
   * Signs the current head (sequence number and hash), stores the checkpoint and returns it as
   * the one JSON line `handrail audit checkpoint` prints: {"checkpoint":b64,"kid","sig":b64}.
   */
  async checkpoint(now: number = this.now()): Promise<string> {
    return this.db.write(async (tx) => {
      const head = await this.readHead(tx);
      const key = this.keyring.active('audit');
      const cp = sealCheckpoint(head.seq, head.hash, now, key);
      await insertCheckpoint(tx, { seq: head.seq, payload: cp.payload, keyId: cp.keyId, signature: cp.signature, createdAt: now });
      return JSON.stringify({ checkpoint: cp.payload.toString('base64'), kid: cp.keyId, sig: cp.signature.toString('base64') });
    });
  }
}

/** A record queued on a head that another process has appended after (see AuditLog). */
export function isSeqConflict(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return typeof err?.message === 'string' && err.code === 'SQLITE_CONSTRAINT' && err.message.includes('audit_records.seq');
}

/** The last record's seq and hash in a store (or a copy of one), seq 0 and 64 zeros when empty. */
export async function readAuditHead(q: Pick<Tx, 'get'>): Promise<AuditHead> {
  return (await lastAuditRecord(q)) ?? { seq: 0, hash: GENESIS_PREV };
}
