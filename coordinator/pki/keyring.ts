/**
 * The coordinator's Ed25519 signing keys: `dispatch` signs step envelopes, `audit` signs
 * audit records and checkpoints. Private keys are files in `<data-dir>/keys/<purpose>/`
 * (mode 0600); public keys are also kept in the store (table signing_keys) forever, so records
 * signed before a rotation still verify.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile, readdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database, Tx } from '../store/database.js';
import * as q from '../store/key-queries.js';

export type KeyPurpose = 'dispatch' | 'audit';

export interface SigningKey {
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
}

export interface PublicKeyRecord {
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly algorithm: string;
  readonly publicKeyPem: string;
  readonly createdAt: number;
  /** When it started signing; null while it is only published (a dispatch rotation in progress). */
  readonly signingSince: number | null;
  readonly retiredAt: number | null;
}

/** Key id: purpose plus the first 16 hex digits of SHA-256 over the SubjectPublicKeyInfo DER. */
export function keyIdFor(purpose: KeyPurpose, publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `${purpose}-${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

/**
 * The version of the dispatch key set made of these keys: the latest creation or retirement.
 * It grows with every publication and retirement (a retirement is stamped past it), and equals
 * the newest key's creation time for stores from before published keys, as agents already hold.
 */
export function dispatchSetVersion(keys: readonly PublicKeyRecord[]): number {
  return Math.max(1, ...keys.filter((k) => k.purpose === 'dispatch').map((k) => Math.max(k.createdAt, k.retiredAt ?? 0)));
}

/** A key just written to the store: `createdAt` is also the first dispatch key set version that names it. */
export interface PublishedKey {
  readonly keyId: string;
  readonly createdAt: number;
}


export class Keyring {
  private constructor(
    private readonly db: Database,
    private readonly keysDir: string,
    private readonly activeKeys: Map<KeyPurpose, SigningKey>,
  ) {}

  /** Private keys read for signing key sets, by key id. */
  private readonly loaded = new Map<string, SigningKey>();

  /** Loads the active key of each purpose, creating one where none exists yet. */
  static async open(db: Database, keysDir: string, now: () => number = Date.now): Promise<Keyring> {
    const ring = new Keyring(db, keysDir, new Map());
    for (const purpose of ['dispatch', 'audit'] as const) {
      const keyId = await q.activeKeyId(db, purpose);
      const key = keyId ? await ring.readPrivate(purpose, keyId) : await ring.create(purpose, now, { signing: true });
      ring.activeKeys.set(purpose, key);
    }
    return ring;
  }

  active(purpose: KeyPurpose): SigningKey {
    const k = this.activeKeys.get(purpose);
    if (!k) throw new Error(`no active ${purpose} key`);
    return k;
  }

  /**
   * Takes up a key another process (`handrail keys …`) made active in the store; returns the
   * purposes whose active key changed. A running coordinator calls it on its poll.
   */
  async refresh(): Promise<KeyPurpose[]> {
    const changed: KeyPurpose[] = [];
    for (const purpose of ['dispatch', 'audit'] as const) {
      const keyId = await q.activeKeyId(this.db, purpose);
      if (!keyId || keyId === this.activeKeys.get(purpose)?.keyId) continue;
      this.activeKeys.set(purpose, await this.readPrivate(purpose, keyId));
      changed.push(purpose);
    }
    return changed;
  }

  /**
   * Every live (not retired) key of a purpose with its private half, active key first. A
   * dispatch key set is signed by all of them, so an agent that missed a rotation while
   * offline still finds a signer it trusts.
   */
  async liveKeys(purpose: KeyPurpose): Promise<SigningKey[]> {
    const active = this.active(purpose);
    const out = [active];
    for (const k of await this.publicKeys(purpose)) {
      if (k.retiredAt !== null || k.keyId === active.keyId) continue;
      let key = this.loaded.get(k.keyId);
      if (!key) {
        key = await this.readPrivate(purpose, k.keyId);
        this.loaded.set(k.keyId, key);
      }
      out.push(key);
    }
    return out;
  }

  /** Every public key of a purpose, retired ones included. */
  async publicKeys(purpose?: KeyPurpose): Promise<PublicKeyRecord[]> {
    const rows = await q.listSigningKeys(this.db, purpose ? purpose : undefined);
    return rows.map((r) => ({
      keyId: r.key_id,
      purpose: r.purpose,
      algorithm: r.algorithm,
      publicKeyPem: r.public_key_pem,
      createdAt: r.created_at,
      signingSince: r.signing_since,
      retiredAt: r.retired_at,
    }));
  }

  /** Makes a new active key for `purpose` and retires the old one (its public half stays). */
  async rotate(purpose: KeyPurpose, now: number = Date.now()): Promise<SigningKey> {
    const previous = this.activeKeys.get(purpose);
    const key = await this.create(purpose, () => now, { signing: true, retire: previous?.keyId });
    this.activeKeys.set(purpose, key);
    return key;
  }

  /** A new key that agents are told about but that signs nothing yet (see `activate`). */
  async publish(purpose: KeyPurpose, now: number, within?: (tx: Tx, key: PublishedKey) => Promise<void>): Promise<SigningKey> {
    return this.create(purpose, () => now, { signing: false, within });
  }

  /**
   * Switches signing to a published key; the previous key stays trusted until `retire`.
   * `within` runs in the same transaction (the audit record of the switch).
   */
  async activate(keyId: string, now: number, within?: (tx: Tx) => Promise<void>): Promise<SigningKey> {
    const record = (await this.publicKeys()).find((k) => k.keyId === keyId);
    if (!record || record.retiredAt !== null) throw new Error(`no published key ${keyId}`);
    const key = await this.readPrivate(record.purpose, keyId);
    await this.db.write(async (tx) => {
      const r = await q.startSigning(tx, keyId, now);
      if (r.changes !== 1) throw new Error(`key ${keyId} is not waiting to be activated`);
      await within?.(tx);
    });
    this.activeKeys.set(record.purpose, key);
    return key;
  }

  /** Retires keys (never the active one); returns the retirement time, past the set's version. */
  async retire(keyIds: readonly string[], now: number, within?: (tx: Tx, retiredAt: number) => Promise<void>): Promise<number> {
    for (const id of keyIds) {
      if ([...this.activeKeys.values()].some((k) => k.keyId === id)) throw new Error(`key ${id} is the active key; it cannot be retired`);
    }
    return this.db.write(async (tx) => {
      const at = Math.max(now, 1 + (await q.latestKeyChange(tx)));
      for (const id of keyIds) {
        const r = await q.retireLiveKey(tx, id, at);
        if (r.changes !== 1) throw new Error(`key ${id} is not a live key`);
      }
      await within?.(tx, at);
      return at;
    });
  }

  private async create(purpose: KeyPurpose, now: () => number, o: { signing: boolean; retire?: string | undefined; within?: ((tx: Tx, key: PublishedKey) => Promise<void>) | undefined }): Promise<SigningKey> {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyId = keyIdFor(purpose, publicKey);
    const dir = join(this.keysDir, purpose);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${keyId}.key`);
    // The private key is on disk before the store names it: a backup (store first, then keys) always finds it.
    await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await this.db.write(async (tx: Tx) => {
      // Creation time past every earlier key's: the dispatch set version must grow.
      const at = Math.max(now(), (await q.latestKeyChange(tx, purpose)) + 1);
      if (o.retire) await q.retireKey(tx, o.retire, at);
      await q.insertSigningKey(tx, { keyId, purpose, algorithm: 'ed25519', publicKeyPem, createdAt: at, signingSince: o.signing ? at : null });
      await o.within?.(tx, { keyId, createdAt: at });
    });
    return { keyId, purpose, privateKey, publicKey, publicKeyPem };
  }

  private async readPrivate(purpose: KeyPurpose, keyId: string): Promise<SigningKey> {
    const file = join(this.keysDir, purpose, `${keyId}.key`);
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      const present = await readdir(join(this.keysDir, purpose)).catch(() => [] as string[]);
      throw new Error(
        `the ${purpose} key ${keyId} is recorded in the store but its private key file ${file} is missing ` +
          `(found: ${present.join(', ') || 'nothing'}); restore the data dir's keys/ folder`,
        { cause: e },
      );
    }
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    if (keyIdFor(purpose, publicKey) !== keyId) throw new Error(`key file ${file} does not hold key ${keyId}`);
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    return { keyId, purpose, privateKey, publicKey, publicKeyPem };
  }
}
