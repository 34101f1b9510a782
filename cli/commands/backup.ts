/**
 * `handrail backup` and `handrail restore`: an online copy of the store (SQLite's backup API,
 * while the coordinator keeps writing) with the keys needed to use it, sealed with a
 * passphrase (coordinator/store/backup-archive.ts); and putting one back into a data dir.
 */
import { access, chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { withDataDir } from '../data-dir.js';
import { AuditEvents } from '../../coordinator/audit/events.js';
import { readAuditHead } from '../../coordinator/audit/audit-log.js';
import { schemaVersion } from '../../coordinator/store/migrations.js';
import { openBackup, sealBackup, sha256Hex, type ArchiveFile } from '../../coordinator/store/backup-archive.js';
import { HANDRAIL_VERSION } from '../../core/version.js';
import type { CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type OptionSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR } from '../settings.js';
// Heavier modules (node-forge, SQLite, YAML, codecs) load with `await import` in the functions
// that use them, not with this module: `handrail --help` loads every command's module.

const PASSPHRASE_FILE: OptionSpec = {
  type: 'string',
  env: 'HANDRAIL_BACKUP_PASSPHRASE_FILE',
  configKey: 'backupPassphraseFile',
  placeholder: 'FILE',
  description: 'file whose first line is the passphrase (or set HANDRAIL_BACKUP_PASSPHRASE); never a flag value, which `ps` would show',
};

export const backupCommand: CommandSpec = {
  name: 'backup',
  usage: 'backup --out FILE [--passphrase-file FILE]',
  summary:
    'Copy the store while the coordinator runs (SQLite online backup) together with the signing keys, secrets key and CA files, sealed with a passphrase (scrypt + AES-256-GCM) into FILE (mode 0600). The file holds private keys: keep it like the data dir.',
  options: {
    'data-dir': DATA_DIR,
    'certs-dir': CERTS_DIR,
    out: { type: 'string', placeholder: 'FILE', description: 'the backup file to write (must not exist)' },
    'passphrase-file': PASSPHRASE_FILE,
  },
};

export const restoreCommand: CommandSpec = {
  name: 'restore',
  usage: 'restore FILE --data-dir DIR [--certs-dir DIR] [--force] [--passphrase-file FILE]',
  summary:
    'Put a backup back into a data dir (and its CA files into the certs dir), check that its audit log verifies, and record the restore in it. Refuses a data dir that holds a store unless --force (stop its coordinator first).',
  allowPositionals: true,
  options: {
    'data-dir': DATA_DIR,
    'certs-dir': CERTS_DIR,
    force: { type: 'boolean', description: 'replace the store (and CA files) already there; stop the coordinator using it first' },
    'passphrase-file': PASSPHRASE_FILE,
  },
};

async function passphrase(p: ParsedCommand, io: CliIo): Promise<string> {
  const file = str(p.values, 'passphrase-file');
  if (file) {
    const text = await readFile(file, 'utf8').catch(() => {
      throw new UsageError(`cannot read the passphrase file ${file}`);
    });
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line.length < 8) throw new UsageError(`the passphrase in ${file} is shorter than 8 characters`);
    return line;
  }
  const env = io.env['HANDRAIL_BACKUP_PASSPHRASE'];
  if (env && env.length >= 8) return env;
  throw new UsageError('a backup passphrase is required', 'give --passphrase-file FILE or set HANDRAIL_BACKUP_PASSPHRASE (at least 8 characters); the same one opens the backup at restore');
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

export async function runBackup(p: ParsedCommand, io: CliIo): Promise<number> {
  const { STORE_FILE } = await import('../../coordinator/data-dir.js');
  const { Database } = await import('../../coordinator/store/database.js');
  const out = str(p.values, 'out');
  if (!out) throw new UsageError('--out FILE is required');
  if (await exists(out)) throw new UsageError(`${out} already exists`, 'choose a new file name: a backup never overwrites one');
  const secret = await passphrase(p, io);
  const certsDir = str(p.values, 'certs-dir') as string;
  return withDataDir(p, io, async (data) => {
    const work = await mkdtemp(join(tmpdir(), 'handrail-backup-'));
    try {
      const copy = join(work, STORE_FILE);
      await data.db.backupTo(copy);
      // What the copy holds, read from the copy itself.
      const snap = await Database.open(copy, { readonly: true });
      let head: { seq: number; hash: string };
      let version: number;
      try {
        head = await readAuditHead(snap);
        version = await schemaVersion(snap);
      } finally {
        await snap.close();
      }
      const store = await readFile(copy);
      // Keys after the store: a key is on disk before the store names it, so the copy's keys are all here.
      const files: ArchiveFile[] = [{ path: `store/${STORE_FILE}`, mode: 0o600, data: store }, ...(await keyFiles(join(data.path, 'keys'))), ...(await caFiles(certsDir))];
      const takenAt = new Date(io.now()).toISOString();
      const sealed = sealBackup({ manifest: { v: 1, takenAt, schemaVersion: version, handrailVersion: HANDRAIL_VERSION, audit: head }, files }, secret);
      await mkdir(dirname(resolve(out)), { recursive: true });
      await writeFile(out, sealed, { mode: 0o600, flag: 'wx' });
      await chmod(out, 0o600);
      const keys = files.length - 1;
      await data.db.write((tx) =>
        data.audit.append(tx, {
          type: AuditEvents.storeBackupTaken,
          actor: { kind: 'cli', id: io.env['USER'] ?? 'cli' },
          data: { file: resolve(out), auditSeq: head.seq, auditHash: head.hash, storeSha256: sha256Hex(store), storeBytes: store.length, keyFiles: keys },
        }),
      );
      io.out(`backup written to ${out} (${sealed.length} bytes, mode 0600): the store as of audit record ${head.seq}, schema version ${version}, and ${keys} key and CA file(s)\n`);
      io.out('it holds private keys, sealed with your passphrase: keep both as safe as the data dir\n');
      return 0;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

async function keyFiles(keysDir: string): Promise<ArchiveFile[]> {
  const out: ArchiveFile[] = [];
  const secrets = join(keysDir, 'secrets.key');
  if (await exists(secrets)) out.push({ path: 'keys/secrets.key', mode: 0o600, data: await readFile(secrets) });
  for (const purpose of ['dispatch', 'audit']) {
    const names = await readdir(join(keysDir, purpose)).catch(() => [] as string[]);
    for (const n of names.filter((x) => x.endsWith('.key')).sort()) out.push({ path: `keys/${purpose}/${n}`, mode: 0o600, data: await readFile(join(keysDir, purpose, n)) });
  }
  return out;
}

/** Certificates of CAs a roll-over kept: next, previous and retired. */
async function rolloverCaCertTest(): Promise<(name: string) => boolean> {
  const [{ CA_NEXT_FILES, CA_PREVIOUS_FILES }, { RETIRED_CA_FILE }] = await Promise.all([import('../../coordinator/pki/ca.js'), import('../../coordinator/pki/ca-rollover.js')]);
  return (name) => name === CA_NEXT_FILES.caCert || name === CA_PREVIOUS_FILES.caCert || RETIRED_CA_FILE.test(name);
}

/** The CA files, and those of a CA roll-over under way or done (next, previous, retired CAs, the bundle version). */
async function caFiles(certsDir: string): Promise<ArchiveFile[]> {
  const { CA_BUNDLE_FILE, CA_FILES, CA_NEXT_FILES, CA_PREVIOUS_FILES } = await import('../../coordinator/pki/ca.js');
  const { RETIRED_CA_FILE } = await import('../../coordinator/pki/ca-rollover.js');
  const out: ArchiveFile[] = [];
  const retired = (await readdir(certsDir).catch(() => [] as string[])).filter((n) => RETIRED_CA_FILE.test(n)).sort();
  for (const name of [...Object.values(CA_FILES), ...Object.values(CA_NEXT_FILES), ...Object.values(CA_PREVIOUS_FILES), CA_BUNDLE_FILE, ...retired]) {
    const f = join(certsDir, name);
    if (await exists(f)) out.push({ path: `certs/${name}`, mode: name.endsWith('.key') ? 0o600 : 0o644, data: await readFile(f) });
  }
  return out;
}

export async function runRestore(p: ParsedCommand, io: CliIo): Promise<number> {
  const { openDataDir, STORE_FILE } = await import('../../coordinator/data-dir.js');
  const { verifyDatabase } = await import('../../coordinator/audit/export.js');
  const { CA_FILES } = await import('../../coordinator/pki/ca.js');
  const isRolloverCaCert = await rolloverCaCertTest();
  const file = p.positionals[0];
  if (!file || p.positionals.length > 1) throw new UsageError('give one backup FILE', 'handrail restore FILE --data-dir DIR');
  const dataDir = str(p.values, 'data-dir') as string;
  const certsDir = str(p.values, 'certs-dir') as string;
  const force = bool(p.values, 'force');
  const sealed = await readFile(file).catch(() => {
    throw new UsageError(`cannot read ${file}`);
  });
  const backup = openBackup(sealed, await passphrase(p, io), file);
  const target = join(dataDir, STORE_FILE);
  if (!force && (await exists(target))) {
    throw new UsageError(`${dataDir} already holds a Handrail store (${target})`, 'restore into an empty data dir, or stop its coordinator and pass --force to replace it');
  }
  const certs = backup.files.filter((f) => f.path.startsWith('certs/'));
  for (const f of certs) {
    const dest = join(certsDir, basename(f.path));
    const present = await readFile(dest).catch(() => undefined);
    if (present && !present.equals(f.data) && !force) throw new UsageError(`${dest} exists and differs from the backup's`, 'pass --force to replace the CA files (agents enrolled with another CA must then enroll again), or choose another --certs-dir');
  }

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700).catch(() => undefined);
  // The store is written beside its place and checked before anything is replaced; keys, CA
  // files and then the store (renamed over the old one) follow only if its audit log verifies.
  const store = backup.files.find((f) => f.path === `store/${STORE_FILE}`);
  if (!store) throw new UsageError(`${file} holds no store`);
  const staged = `${target}.restoring`;
  await writeFile(staged, store.data, { mode: 0o600 });
  const caPem = certs.find((f) => f.path === `certs/${CA_FILES.caCert}`)?.data.toString('utf8') ?? (await readFile(join(certsDir, CA_FILES.caCert), 'utf8').catch(() => undefined));
  if (caPem) {
    // Every CA of a roll-over the backup holds: step results before a switch chain to the old one.
    const rolloverCas = certs.filter((f) => isRolloverCaCert(basename(f.path))).map((f) => f.data.toString('utf8'));
    const report = await verifyDatabase(staged, [caPem, ...rolloverCas]);
    if (!report.ok) {
      await rm(staged, { force: true });
      io.err(`handrail restore: the audit log in ${file} does not verify: ${report.firstBad ? `record ${report.firstBad.seq ?? '?'}: ${report.firstBad.reason}` : 'see `handrail audit verify`'}; nothing was replaced\n`);
      return 1;
    }
    io.out(`audit log verifies: ${report.records} record(s), up to seq ${report.lastSeq ?? 0}\n`);
  } else {
    io.out(`no CA certificate in the backup or ${certsDir}: run \`handrail audit verify --data-dir ${dataDir} --certs-dir DIR\` to check the audit log\n`);
  }
  for (const f of backup.files.filter((x) => x.path.startsWith('keys/'))) {
    const dest = join(dataDir, ...f.path.split('/'));
    await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
    await writeFile(dest, f.data, { mode: 0o600 });
    await chmod(dest, 0o600);
  }
  await mkdir(certsDir, { recursive: true, mode: 0o755 });
  for (const f of certs) {
    const dest = join(certsDir, basename(f.path));
    await writeFile(dest, f.data, { mode: f.mode });
    await chmod(dest, f.mode);
  }
  for (const stale of ['-wal', '-shm', '-journal']) await rm(`${target}${stale}`, { force: true });
  await rename(staged, target);

  const data = await openDataDir(dataDir, io.now);
  try {
    const { manifest } = backup;
    await data.db.write((tx) =>
      data.audit.append(tx, {
        type: AuditEvents.storeRestored,
        actor: { kind: 'cli', id: io.env['USER'] ?? 'cli' },
        data: { takenAt: manifest.takenAt, auditSeq: manifest.audit.seq, auditHash: manifest.audit.hash, storeSha256: sha256Hex(store.data), forced: force },
      }),
    );
  } finally {
    await data.close();
  }
  const size = (await stat(target)).size;
  io.out(`restored the store taken ${backup.manifest.takenAt} (${size} bytes, audit record ${backup.manifest.audit.seq}) into ${dataDir}, with ${backup.files.length - 1} key and CA file(s)\n`);
  return 0;
}
