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
  readonly retiredAt: number | null;
}

/** Key id: purpose plus the first 16 hex digits of SHA-256 over the SubjectPublicKeyInfo DER. */
export function keyIdFor(purpose: KeyPurpose, publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `${purpose}-${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

export class Keyring {
  private constructor(
    private readonly db: Database,
    private readonly keysDir: string,
    private readonly activeKeys: Map<KeyPurpose, SigningKey>,
  ) {}

  /** Loads the active key of each purpose, creating one where none exists yet. */
  static async open(db: Database, keysDir: string, now: () => number = Date.now): Promise<Keyring> {
    const ring = new Keyring(db, keysDir, new Map());
    for (const purpose of ['dispatch', 'audit'] as const) {
      const row = await db.get<{ key_id: string }>(
        'SELECT key_id FROM signing_keys WHERE purpose = ? AND retired_at IS NULL ORDER BY created_at DESC, key_id LIMIT 1',
        [purpose],
      );
      const key = row ? await ring.readPrivate(purpose, row.key_id) : await ring.create(purpose, now());
      ring.activeKeys.set(purpose, key);
    }
    return ring;
  }

  active(purpose: KeyPurpose): SigningKey {
    const k = this.activeKeys.get(purpose);
    if (!k) throw new Error(`no active ${purpose} key`);
    return k;
  }

  /** Every public key of a purpose, retired ones included. */
  async publicKeys(purpose?: KeyPurpose): Promise<PublicKeyRecord[]> {
    const rows = await this.db.all<{
      key_id: string;
      purpose: KeyPurpose;
      algorithm: string;
      public_key_pem: string;
      created_at: number;
      retired_at: number | null;
    }>(
      purpose
        ? 'SELECT * FROM signing_keys WHERE purpose = ? ORDER BY created_at, key_id'
        : 'SELECT * FROM signing_keys ORDER BY created_at, key_id',
      purpose ? [purpose] : [],
    );
    return rows.map((r) => ({
      keyId: r.key_id,
      purpose: r.purpose,
      algorithm: r.algorithm,
      publicKeyPem: r.public_key_pem,
      createdAt: r.created_at,
      retiredAt: r.retired_at,
    }));
  }

  /** Makes a new active key for `purpose` and retires the old one (its public half stays). */
  async rotate(purpose: KeyPurpose, now: number = Date.now()): Promise<SigningKey> {
    const previous = this.activeKeys.get(purpose);
    const key = await this.create(purpose, now, previous?.keyId);
    this.activeKeys.set(purpose, key);
    return key;
  }

  private async create(purpose: KeyPurpose, now: number, retire?: string): Promise<SigningKey> {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyId = keyIdFor(purpose, publicKey);
    const dir = join(this.keysDir, purpose);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${keyId}.key`);
    await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await this.db.write(async (tx: Tx) => {
      if (retire) await tx.run('UPDATE signing_keys SET retired_at = ? WHERE key_id = ?', [now, retire]);
      await tx.run(
        'INSERT INTO signing_keys (key_id, purpose, algorithm, public_key_pem, created_at) VALUES (?, ?, ?, ?, ?)',
        [keyId, purpose, 'ed25519', publicKeyPem, now],
      );
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
