/**
 * The audit record format (docs/audit-format.md): the payload is the UTF-8 JSON of
 * {v, seq, ts, type, code, actor, data, prev, kid}; the record hash is SHA-256 of exactly
 * those bytes, the next record's `prev` is that hash, and the signature is Ed25519 over
 * exactly those bytes. Verifiers check bytes first and parse second: no canonical JSON needed.
 */
import { hash as digest, type KeyObject } from 'node:crypto';
import { ed25519Sign } from '../../core/ed25519.js';
import { AUDIT_CODES, type Actor, type AuditEventInput } from './events.js';
import { scrubSecrets } from './secrets.js';

export const GENESIS_PREV = '0'.repeat(64);
export const RECORD_VERSION = 1;

export interface AuditRecordBody {
  readonly v: 1;
  readonly seq: number;
  readonly ts: string;
  readonly type: string;
  readonly code: string;
  readonly actor: Actor;
  readonly data: unknown;
  readonly prev: string;
  readonly kid: string;
}

/** A record chained (payload and hash fixed) but not yet signed: the audit log signs in batches. */
export interface ChainedRecord {
  readonly seq: number;
  readonly payload: Buffer;
  readonly hash: string;
  readonly keyId: string;
}

export interface SealedRecord extends ChainedRecord {
  readonly signature: Buffer;
}

/** The last timestamp formatted: the records of one append share it (one `now()` per append). */
let lastIso: { ms: number; iso: string } = { ms: Number.NaN, iso: '' };
function isoTime(ms: number): string {
  if (ms !== lastIso.ms) lastIso = { ms, iso: new Date(ms).toISOString() };
  return lastIso.iso;
}

/**
 * Builds and hashes record `seq`; the signature (Ed25519 over the same payload bytes) is made
 * apart (coordinator/audit/record-signer.ts), since nothing in the chain depends on it. Refuses a
 * type outside the catalog (a record must be decodable by every verifier) and scrubs
 * secret-looking data before anything is serialised.
 */
export function chainRecord(event: AuditEventInput, seq: number, prev: string, tsMs: number, keyId: string): ChainedRecord {
  const code = AUDIT_CODES[event.type] as string | undefined;
  if (code === undefined) throw new Error(`unknown audit event type ${JSON.stringify(event.type)}: add it to coordinator/audit/events.ts`);
  const body: AuditRecordBody = {
    v: RECORD_VERSION,
    seq,
    ts: isoTime(tsMs),
    type: event.type,
    code,
    actor: { kind: event.actor.kind, id: event.actor.id },
    data: scrubSecrets(event.data),
    prev,
    kid: keyId,
  };
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  return { seq, payload, hash: digest('sha256', payload, 'hex'), keyId };
}

/** A record chained and signed in one go (the audit log signs in batches instead). */
export function sealRecord(event: AuditEventInput, seq: number, prev: string, tsMs: number, key: { keyId: string; privateKey: KeyObject }): SealedRecord {
  const rec = chainRecord(event, seq, prev, tsMs, key.keyId);
  return { ...rec, signature: ed25519Sign(rec.payload, key.privateKey) };
}

export interface CheckpointBody {
  readonly v: 1;
  readonly kind: 'checkpoint';
  readonly seq: number;
  readonly head: string;
  readonly ts: string;
  readonly kid: string;
}

export function sealCheckpoint(seq: number, head: string, tsMs: number, key: { keyId: string; privateKey: KeyObject }): { payload: Buffer; signature: Buffer; keyId: string } {
  const body: CheckpointBody = { v: RECORD_VERSION, kind: 'checkpoint', seq, head, ts: new Date(tsMs).toISOString(), kid: key.keyId };
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  return { payload, signature: ed25519Sign(payload, key.privateKey), keyId: key.keyId };
}
