/**
 * The keys aggregate's SQL: the public halves of the coordinator's signing keys and when each
 * signed and was retired (the private halves live in files: coordinator/pki/keyring.ts).
 */
import type { Queryable, RunResult } from './database.js';

export type KeyPurposeName = 'dispatch' | 'audit';

export interface SigningKeyRow {
  key_id: string;
  purpose: KeyPurposeName;
  algorithm: string;
  public_key_pem: string;
  created_at: number;
  signing_since: number | null;
  retired_at: number | null;
}

/** The key a purpose signs with now: the latest to start signing of those not retired. */
export async function activeKeyId(q: Queryable, purpose: KeyPurposeName): Promise<string | undefined> {
  const row = await q.get<{ key_id: string }>(
    'SELECT key_id FROM signing_keys WHERE purpose = ? AND retired_at IS NULL AND signing_since IS NOT NULL ORDER BY signing_since DESC, created_at DESC, key_id LIMIT 1',
    [purpose],
  );
  return row?.key_id;
}

/** Every key of a purpose (or of all), oldest first, retired ones included. */
export function listSigningKeys(q: Queryable, purpose?: KeyPurposeName): Promise<SigningKeyRow[]> {
  return purpose
    ? q.all<SigningKeyRow>('SELECT * FROM signing_keys WHERE purpose = ? ORDER BY created_at, key_id', [purpose])
    : q.all<SigningKeyRow>('SELECT * FROM signing_keys ORDER BY created_at, key_id');
}

/** The latest creation or retirement time among the keys of a purpose (or of all); 0 when none. */
export async function latestKeyChange(q: Queryable, purpose?: KeyPurposeName): Promise<number> {
  const row = purpose
    ? await q.get<{ t: number | null }>('SELECT max(max(created_at, coalesce(retired_at, 0))) AS t FROM signing_keys WHERE purpose = ?', [purpose])
    : await q.get<{ t: number | null }>('SELECT max(max(created_at, coalesce(retired_at, 0))) AS t FROM signing_keys');
  return row?.t ?? 0;
}

/** Starts signing with a published key; changes is 0 unless it was waiting (published, live). */
export function startSigning(q: Queryable, keyId: string, at: number): Promise<RunResult> {
  return q.run('UPDATE signing_keys SET signing_since = ? WHERE key_id = ? AND retired_at IS NULL AND signing_since IS NULL', [at, keyId]);
}

/** Retires a live key; changes is 0 when it was not live. */
export function retireLiveKey(q: Queryable, keyId: string, at: number): Promise<RunResult> {
  return q.run('UPDATE signing_keys SET retired_at = ? WHERE key_id = ? AND retired_at IS NULL', [at, keyId]);
}

export function retireKey(q: Queryable, keyId: string, at: number): Promise<RunResult> {
  return q.run('UPDATE signing_keys SET retired_at = ? WHERE key_id = ?', [at, keyId]);
}

export function insertSigningKey(q: Queryable, k: { keyId: string; purpose: KeyPurposeName; algorithm: string; publicKeyPem: string; createdAt: number; signingSince: number | null }): Promise<RunResult> {
  return q.run('INSERT INTO signing_keys (key_id, purpose, algorithm, public_key_pem, created_at, signing_since) VALUES (?, ?, ?, ?, ?, ?)', [
    k.keyId, k.purpose, k.algorithm, k.publicKeyPem, k.createdAt, k.signingSince,
  ]);
}
