import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { cli, spawnCli, waitFor, type Proc } from '../helpers/processes.js';
import { Database } from '../../coordinator/store/database.js';

/**
 * `handrail backup` while a real coordinator executes steps on real agents, then `handrail
 * restore` into a new data dir: the copy is consistent (its audit log verifies, offline, with
 * `audit verify`), holds the keys to use it, and a coordinator starts on it.
 */
describe('backup under write load, and restore', () => {
  let fleet: Fleet;
  let a: string;
  let b: string;
  let passFile: string;
  let backupFile: string;
  let restoredData: string;
  let restoredCerts: string;
  let restoredCoordinator: Proc | undefined;
  const PASS = 'a long backup passphrase';

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('bk-a');
    await fleet.startAgent('bk-b');
    a = await fleet.waitOnline('bk-a');
    b = await fleet.waitOnline('bk-b');
    await fleet.ensureAdmin();
    passFile = join(fleet.dir, 'passphrase');
    await writeFile(passFile, `${PASS}\n`, { mode: 0o600 });
    backupFile = join(fleet.dir, 'backups', 'handrail.hrbk');
    restoredData = join(fleet.dir, 'restored-data');
    restoredCerts = join(fleet.dir, 'restored-certs');
  });
  afterAll(async () => {
    await restoredCoordinator?.stop();
    await fleet?.close();
  });

  it('takes a consistent copy while the coordinator runs steps, sealed, mode 0600, printing no secret', async () => {
    let stop = false;
    const results: ExecutionResult[] = [];
    const load = async (): Promise<void> => {
      while (!stop) results.push(await fleet.exec([a, b], { argv: ['sh', '-c', 'echo output of a step'] }));
    };
    const loops = [load(), load()];
    await waitFor(() => results.length >= 3, undefined, 'steps before the backup');
    const before = results.length;
    const r = await fleet.admin(['backup', '--out', backupFile, '--certs-dir', fleet.certsDir, '--passphrase-file', passFile]);
    // Steps kept completing while the copy was taken: the coordinator was writing throughout.
    await waitFor(() => results.length >= before + 3, undefined, 'steps after the backup');
    stop = true;
    await Promise.all(loops);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/backup written to .* mode 0600\): the store as of audit record \d+/);
    for (const text of [r.stdout, r.stderr]) {
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(PASS);
    }
    expect((await stat(backupFile)).mode & 0o777).toBe(0o600);
    // The live log went on past the copy's last record.
    const copiedSeq = Number(/as of audit record (\d+)/.exec(r.stdout)![1]);
    const live = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      expect((await live.get<{ seq: number }>('SELECT max(seq) AS seq FROM audit_records'))!.seq).toBeGreaterThan(copiedSeq + 1);
    } finally {
      await live.close();
    }
    expect(results.every((x) => x.state === 'succeeded')).toBe(true);
    // Refuses to overwrite a backup.
    const again = await fleet.admin(['backup', '--out', backupFile, '--passphrase-file', passFile]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('refuses a wrong passphrase in one line', async () => {
    const r = await cli(['restore', backupFile, '--data-dir', restoredData, '--certs-dir', restoredCerts], { HANDRAIL_BACKUP_PASSPHRASE: 'not the passphrase' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^handrail restore: cannot open .*: wrong passphrase, or the file was changed or cut short\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('restores into a new data dir whose audit log verifies, and a coordinator starts on it', async () => {
    const r = await cli(['restore', backupFile, '--data-dir', restoredData, '--certs-dir', restoredCerts, '--passphrase-file', passFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/audit log verifies: \d+ record\(s\)/);
    expect((await stat(restoredData)).mode & 0o777).toBe(0o700);
    expect((await stat(join(restoredCerts, 'ca.key'))).mode & 0o777).toBe(0o600);

    const out = join(fleet.dir, 'restored-audit.jsonl');
    const ex = await cli(['audit', 'export', '--data-dir', restoredData, '--certs-dir', restoredCerts, '--out', out]);
    expect(ex.code, ex.stderr).toBe(0);
    const v = await cli(['audit', 'verify', out, '--json']);
    expect(v.code, v.stdout).toBe(0);
    const report = JSON.parse(v.stdout) as { ok: boolean; records: number; stepResults: number };
    expect(report.ok).toBe(true);
    expect(report.stepResults).toBeGreaterThan(0);

    // The copy holds executions and its last record is the restore itself.
    const db = await Database.open(join(restoredData, 'handrail.db'), { readonly: true });
    try {
      expect((await db.get<{ n: number }>("SELECT count(*) AS n FROM executions WHERE state = 'succeeded'"))!.n).toBeGreaterThan(0);
      const last = await db.get<{ payload: Buffer | string }>('SELECT payload FROM audit_records ORDER BY seq DESC LIMIT 1');
      expect(JSON.parse(last!.payload.toString()) as { type: string }).toMatchObject({ type: 'store.restored' });
    } finally {
      await db.close();
    }

    restoredCoordinator = spawnCli(['coordinator', '--data-dir', restoredData, '--certs-dir', restoredCerts, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--runbooks-dir', join(fleet.dir, 'no-runbooks')]);
    await restoredCoordinator.waitForText(/agents on port \d+, HTTP on port \d+/);
    await restoredCoordinator.stop();
    restoredCoordinator = undefined;
  });

  it('refuses to restore over a data dir that holds a store, unless --force', async () => {
    const r = await cli(['restore', backupFile, '--data-dir', restoredData, '--certs-dir', restoredCerts, '--passphrase-file', passFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already holds a Handrail store .*\n {2}restore into an empty data dir, or stop its coordinator and pass --force/);
    const forced = await cli(['restore', backupFile, '--data-dir', restoredData, '--certs-dir', restoredCerts, '--passphrase-file', passFile, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    const v = await cli(['audit', 'verify', '--data-dir', restoredData, '--certs-dir', restoredCerts]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
