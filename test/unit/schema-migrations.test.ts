import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate, planMigrations, schemaVersion } from '../../coordinator/store/migrations.js';
import { HandrailError } from '../../core/errors.js';
import { cli } from '../helpers/processes.js';

describe('schema versions', () => {
  it.each([
    [0, 3, { kind: 'upgrade', from: 0, to: 3 }],
    [2, 3, { kind: 'upgrade', from: 2, to: 3 }],
    [3, 3, { kind: 'current' }],
    [4, 3, { kind: 'too_new', found: 4, known: 3 }],
  ] as const)('a store at version %i with a build knowing %i: %j', (found, known, plan) => {
    expect(planMigrations(found, known)).toEqual(plan);
  });

  it('the build knows as many versions as it has migrations', () => {
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('refuses a store newer than the build, names both versions and changes nothing', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-mig-')), 'handrail.db');
    const db = await Database.open(file);
    try {
      await migrate(db);
      await db.run('INSERT INTO schema_version (version) VALUES (?)', [SCHEMA_VERSION + 1]);
      const before = await readFile(file);
      const err = await migrate(db).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(HandrailError);
      expect((err as HandrailError).kind).toBe('failed_precondition');
      expect((err as HandrailError).message).toContain(`schema version ${SCHEMA_VERSION + 1}`);
      expect((err as HandrailError).message).toContain(`up to ${SCHEMA_VERSION}`);
      expect((err as HandrailError).hint).toMatch(/run the Handrail release that last wrote this store/);
      expect(await schemaVersion(db)).toBe(SCHEMA_VERSION + 1);
      expect(await readFile(file)).toEqual(before);
    } finally {
      await db.close();
    }
  });

  it('the CLI and the coordinator say so in one line, without a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-mig-cli-'));
    const db = await Database.open(join(dir, 'handrail.db'));
    await migrate(db);
    await db.run('INSERT INTO schema_version (version) VALUES (?)', [SCHEMA_VERSION + 5]);
    await db.close();
    expect((await cli(['ca', 'init', '--certs-dir', join(dir, 'certs')])).code).toBe(0);
    const coordinator = ['coordinator', '--data-dir', dir, '--certs-dir', join(dir, 'certs'), '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'];
    for (const args of [['agents', 'ls', '--data-dir', dir], coordinator]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`schema version ${SCHEMA_VERSION + 5}, newer than this Handrail`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
