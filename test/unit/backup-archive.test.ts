import { describe, expect, it } from 'vitest';
import { BACKUP_MAGIC, allowedPath, openBackup, sealBackup, type ArchiveFile } from '../../coordinator/store/backup-archive.js';

const manifest = { v: 1 as const, takenAt: '2026-12-03T09:00:00.000Z', schemaVersion: 9, handrailVersion: '0.1.0', audit: { seq: 42, hash: 'ab'.repeat(32) } };
const files: ArchiveFile[] = [
  { path: 'store/handrail.db', mode: 0o600, data: Buffer.from('SQLite format 3\0 pretend') },
  { path: 'keys/audit/audit-0123456789abcdef.key', mode: 0o600, data: Buffer.from('-----BEGIN PRIVATE KEY-----\nsecret\n') },
  { path: 'certs/ca.pem', mode: 0o644, data: Buffer.from('-----BEGIN CERTIFICATE-----\n') },
];
const PASS = 'correct horse battery';

describe('the sealed backup file', () => {
  it('round-trips the manifest and every file, and shows no key material in the clear', () => {
    const sealed = sealBackup({ manifest, files }, PASS);
    expect(sealed.subarray(0, BACKUP_MAGIC.length).toString()).toBe(BACKUP_MAGIC);
    expect(sealed.includes(Buffer.from('PRIVATE KEY'))).toBe(false);
    expect(sealed.includes(Buffer.from('secret'))).toBe(false);
    const b = openBackup(sealed, PASS, 'b.hrbk');
    expect(b.manifest).toMatchObject({ ...manifest, files: files.map((f) => ({ path: f.path, mode: f.mode, size: f.data.length })) });
    expect(b.files.map((f) => [f.path, f.mode, f.data.toString()])).toEqual(files.map((f) => [f.path, f.mode, f.data.toString()]));
  });

  it('refuses a wrong passphrase, a changed byte anywhere, a cut-short file and a stranger', () => {
    const sealed = sealBackup({ manifest, files }, PASS);
    expect(() => openBackup(sealed, 'wrong passphrase', 'b.hrbk')).toThrow(/cannot open b\.hrbk: wrong passphrase, or the file was changed or cut short/);
    const headerEnd = sealed.indexOf(0x0a, BACKUP_MAGIC.length);
    for (const at of [headerEnd - 3, headerEnd + 10, sealed.length - 5]) {
      const bad = Buffer.from(sealed);
      bad[at] = (bad[at] as number) ^ 1;
      expect(() => openBackup(bad, PASS, 'b.hrbk')).toThrow(/b\.hrbk/);
    }
    expect(() => openBackup(sealed.subarray(0, sealed.length - 100), PASS, 'b.hrbk')).toThrow(/wrong passphrase, or the file was changed or cut short/);
    expect(() => openBackup(Buffer.from('SQLite format 3\0'), PASS, 'x.db')).toThrow(/x\.db is not a Handrail backup/);
  });

  it.each([
    ['store/handrail.db', true],
    ['keys/secrets.key', true],
    ['keys/dispatch/dispatch-0123456789abcdef.key', true],
    ['certs/ca.key', true],
    ['keys/../../etc/passwd', false],
    ['/etc/cron.d/x', false],
    ['keys/dispatch/../../../x.key', false],
    ['certs/ca-next.key', true],
    ['certs/ca-previous.pem', true],
    ['certs/ca-bundle.json', true],
    ['certs/ca-retired-20261207-0123456789abcdef.pem', true],
    ['certs/ca-retired-../../x.pem', false],
    ['certs/ca-retired-x.key', false],
    ['certs/other.pem', false],
    ['store/handrail.db-wal', false],
  ] as const)('archive path %s allowed: %s', (path, ok) => {
    expect(allowedPath(path)).toBe(ok);
  });

  it('will not seal a path it would refuse to restore, nor with a short passphrase', () => {
    expect(() => sealBackup({ manifest, files: [{ path: '../x', mode: 0o600, data: Buffer.alloc(1) }] }, PASS)).toThrow(/not a backup path/);
    expect(() => sealBackup({ manifest, files }, 'short')).toThrow(/at least 8 characters/);
  });
});
