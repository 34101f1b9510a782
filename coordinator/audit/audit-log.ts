/**
 * The append-only audit log in the store. Records are appended inside the caller's
 * transaction, so a state change and its record commit together. The chain head is read once
 * per transaction: another process (an admin CLI command) may have appended in between.
 */
import type { Database, Tx } from '../store/database.js';
import type { Keyring } from '../pki/keyring.js';
import type { AuditEventInput } from './events.js';
import { GENESIS_PREV, sealCheckpoint, sealRecord, type SealedRecord } from './record.js';

const AUDIT_COLUMNS = ['seq', 'payload', 'hash', 'key_id', 'signature'] as const;

interface Head {
  seq: number;
  hash: string;
}

export class AuditLog {
  private cached: { txId: number; head: Head } | undefined;

  constructor(
    private readonly db: Database,
    private readonly keyring: Keyring,
    private readonly now: () => number,
  ) {}

  async append(tx: Tx, events: AuditEventInput | readonly AuditEventInput[]): Promise<SealedRecord[]> {
    const list = Array.isArray(events) ? (events as readonly AuditEventInput[]) : [events as AuditEventInput];
    let head = this.cached && this.cached.txId === tx.txId ? this.cached.head : await this.readHead(tx);
    const key = this.keyring.active('audit');
    const ts = this.now();
    const out: SealedRecord[] = [];
    for (const e of list) {
      const rec = sealRecord(e, head.seq + 1, head.hash, ts, key);
      tx.queueInsert('audit_records', AUDIT_COLUMNS, [rec.seq, rec.payload, rec.hash, rec.keyId, rec.signature]);
      head = { seq: rec.seq, hash: rec.hash };
      out.push(rec);
    }
    this.cached = { txId: tx.txId, head };
    return out;
  }

  private async readHead(tx: Tx): Promise<Head> {
    const row = await tx.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1');
    return row ?? { seq: 0, hash: GENESIS_PREV };
  }

  /** Signs the current head (sequence number and hash) and stores the checkpoint; returns its JSON line. */
  async checkpoint(): Promise<string> {
    return this.db.write(async (tx) => {
      const head = await this.readHead(tx);
      const key = this.keyring.active('audit');
      const now = this.now();
      const cp = sealCheckpoint(head.seq, head.hash, now, key);
      await tx.run('INSERT OR REPLACE INTO audit_checkpoints (seq, payload, key_id, signature, created_at) VALUES (?, ?, ?, ?, ?)', [head.seq, cp.payload, cp.keyId, cp.signature, now]);
      return JSON.stringify({ checkpoint: cp.payload.toString('base64'), kid: cp.keyId, sig: cp.signature.toString('base64') });
    });
  }
}
