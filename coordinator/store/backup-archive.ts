/**
 * The backup file: a copy of the store and the keys needed to use it, sealed with a
 * passphrase. No I/O here: `handrail backup` and `handrail restore` read and write the files.
 *
 * Layout: the line `HANDRAIL-BACKUP 1`, one JSON header line (KDF and cipher parameters, not
 * secret), then AES-256-GCM ciphertext with its 16-byte tag at the end. The header line is the
 * additional authenticated data, so a changed parameter fails like a wrong passphrase. The
 * plaintext is a 4-byte big-endian manifest length, the manifest (JSON: each file's archive
 * path, mode, size and SHA-256) and the files' bytes, in manifest order.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { failedPrecondition, invalidArgument } from '../../core/errors.js';

export const BACKUP_MAGIC = 'HANDRAIL-BACKUP 1\n';

/** scrypt cost: about 0.1 s and 32 MiB here; stored in the header, so it can grow later. */
const KDF = { N: 1 << 15, r: 8, p: 1 } as const;
const MAX_KDF_N = 1 << 20;

export interface ArchiveFile {
  /** `store/handrail.db`, `keys/…` (the data dir's keys folder) or `certs/…` (the CA files). */
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
}

export interface BackupManifest {
  readonly v: 1;
  readonly takenAt: string;
  readonly schemaVersion: number;
  readonly handrailVersion: string;
  readonly audit: { readonly seq: number; readonly hash: string };
  readonly files: ReadonlyArray<{ readonly path: string; readonly mode: number; readonly size: number; readonly sha256: string }>;
}

export interface Backup {
  readonly manifest: BackupManifest;
  readonly files: readonly ArchiveFile[];
}

interface Header {
  readonly kdf: { readonly name: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly cipher: 'aes-256-gcm';
  readonly iv: string;
}

/** Archive paths a backup may hold: anything else is refused before a byte is written. */
const ALLOWED = [
  /^store\/handrail\.db$/,
  /^keys\/secrets\.key$/,
  /^keys\/(dispatch|audit)\/[A-Za-z0-9._-]{1,100}\.key$/,
  /^certs\/(ca|server)\.(pem|key)$/,
  // A CA roll-over under way or done (backup's caFiles): its CAs, the bundle version, and the
  // certificates of retired CAs that agent certificates in older audit records chain to.
  /^certs\/ca-(next|previous)\.(pem|key)$/,
  /^certs\/ca-bundle\.json$/,
  /^certs\/ca-retired-[0-9a-z-]{1,100}\.pem$/,
];

export function allowedPath(path: string): boolean {
  return ALLOWED.some((re) => re.test(path));
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function sealBackup(b: Omit<Backup, 'manifest'> & { manifest: Omit<BackupManifest, 'files'> }, passphrase: string): Buffer {
  if (passphrase.length < 8) throw invalidArgument('the backup passphrase must be at least 8 characters');
  for (const f of b.files) if (!allowedPath(f.path)) throw new Error(`not a backup path: ${f.path}`);
  const manifest: BackupManifest = { ...b.manifest, files: b.files.map((f) => ({ path: f.path, mode: f.mode, size: f.data.length, sha256: sha256Hex(f.data) })) };
  const m = Buffer.from(JSON.stringify(manifest), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(m.length);
  const header: Header = { kdf: { name: 'scrypt', ...KDF, salt: randomBytes(16).toString('base64') }, cipher: 'aes-256-gcm', iv: randomBytes(12).toString('base64') };
  const headerLine = `${JSON.stringify(header)}\n`;
  const c = createCipheriv('aes-256-gcm', deriveKey(passphrase, header), Buffer.from(header.iv, 'base64'));
  c.setAAD(Buffer.from(headerLine));
  const body = Buffer.concat([c.update(len), c.update(m), ...b.files.map((f) => c.update(f.data)), c.final()]);
  return Buffer.concat([Buffer.from(BACKUP_MAGIC), Buffer.from(headerLine), body, c.getAuthTag()]);
}

/** Opens a sealed backup; every failure is one clear message (which file, what to do). */
export function openBackup(sealed: Buffer, passphrase: string, name: string): Backup {
  if (!sealed.subarray(0, BACKUP_MAGIC.length).equals(Buffer.from(BACKUP_MAGIC))) throw invalidArgument(`${name} is not a Handrail backup (it does not start with "${BACKUP_MAGIC.trim()}")`);
  const nl = sealed.indexOf(0x0a, BACKUP_MAGIC.length);
  if (nl < 0 || sealed.length < nl + 1 + 16) throw invalidArgument(`${name} is cut short: the backup header is incomplete`);
  const headerLine = sealed.subarray(BACKUP_MAGIC.length, nl + 1);
  let header: Header;
  try {
    header = JSON.parse(headerLine.toString('utf8')) as Header;
  } catch {
    throw invalidArgument(`${name} has a damaged header`);
  }
  const { kdf } = header;
  if (header.cipher !== 'aes-256-gcm' || kdf?.name !== 'scrypt' || !Number.isInteger(kdf.N) || kdf.N < 2 || kdf.N > MAX_KDF_N || kdf.r !== 8 || kdf.p !== 1) {
    throw invalidArgument(`${name} uses parameters this Handrail does not read (${JSON.stringify({ cipher: header.cipher, kdf: kdf?.name })})`);
  }
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', deriveKey(passphrase, header), Buffer.from(header.iv, 'base64'));
    d.setAAD(headerLine);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    plain = Buffer.concat([d.update(sealed.subarray(nl + 1, sealed.length - 16)), d.final()]);
  } catch {
    throw failedPrecondition(`cannot open ${name}: wrong passphrase, or the file was changed or cut short`, 'give the passphrase the backup was taken with (--passphrase-file or HANDRAIL_BACKUP_PASSPHRASE)');
  }
  const mlen = plain.readUInt32BE(0);
  const manifest = JSON.parse(plain.subarray(4, 4 + mlen).toString('utf8')) as BackupManifest;
  const files: ArchiveFile[] = [];
  let at = 4 + mlen;
  for (const f of manifest.files) {
    // Authenticated, yet checked: a path outside the data dir or certs dir is never written.
    if (!allowedPath(f.path)) throw invalidArgument(`${name} names a file outside what a backup holds: ${JSON.stringify(f.path.slice(0, 200))}`);
    const data = plain.subarray(at, at + f.size);
    at += f.size;
    if (data.length !== f.size || sha256Hex(data) !== f.sha256) throw invalidArgument(`${name}: ${f.path} does not match its checksum`);
    files.push({ path: f.path, mode: f.mode & 0o777, data });
  }
  return { manifest, files };
}

function deriveKey(passphrase: string, h: Header): Buffer {
  return scryptSync(passphrase, Buffer.from(h.kdf.salt, 'base64'), 32, { N: h.kdf.N, r: h.kdf.r, p: h.kdf.p, maxmem: 256 * h.kdf.N * h.kdf.r + 1024 * 1024 });
}
