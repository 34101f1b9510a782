/** /readyz's decision (pure, table-driven) and its store input probed on real SQLite files. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decideReadiness, type ReadinessInputs } from '../../coordinator/health/readiness.js';
import { Database } from '../../coordinator/store/database.js';

const OK: ReadinessInputs = { phase: 'serving', storeError: null, catalog: { loaded: true, runbooks: 3, policies: 1 } };

describe('decideReadiness', () => {
  it.each([
    { why: 'all good', inputs: OK, ready: true, failing: [] },
    { why: 'starting: gateway not listening', inputs: { ...OK, phase: 'starting' }, ready: false, failing: ['gateway: not listening yet (starting)'] },
    { why: 'draining', inputs: { ...OK, phase: 'draining' }, ready: false, failing: ['gateway: shutting down: no new agents or work'] },
    { why: 'store read-only', inputs: { ...OK, storeError: 'SQLITE_READONLY: attempt to write a readonly database' }, ready: false, failing: ['store: not writable: SQLITE_READONLY: attempt to write a readonly database'] },
    { why: 'catalog not loaded', inputs: { ...OK, catalog: { loaded: false, runbooks: 0, policies: 0 } }, ready: false, failing: ['runbooks: runbooks and policies not loaded yet'] },
    { why: 'an empty catalog is loaded', inputs: { ...OK, catalog: { loaded: true, runbooks: 0, policies: 0 } }, ready: true, failing: [] },
    {
      why: 'everything wrong at once',
      inputs: { phase: 'starting', storeError: 'disk I/O error', catalog: { loaded: false, runbooks: 0, policies: 0 } },
      ready: false,
      failing: ['store: not writable: disk I/O error', 'gateway: not listening yet (starting)', 'runbooks: runbooks and policies not loaded yet'],
    },
  ] as Array<{ why: string; inputs: ReadinessInputs; ready: boolean; failing: string[] }>)('$why', ({ inputs, ready, failing }) => {
    const r = decideReadiness(inputs);
    expect(r.ready).toBe(ready);
    expect(r.checks.map((c) => c.name)).toEqual(['store', 'gateway', 'runbooks']);
    expect(r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual(failing);
  });

  it('says what is loaded', () => {
    expect(decideReadiness(OK).checks.find((c) => c.name === 'runbooks')?.detail).toBe('3 runbook(s), 1 policy loaded');
  });
});

describe('Database.probeWritable', () => {
  it('is null for a writable store and names the error for a read-only one, without changing either', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'hr-ready-')), 't.db');
    const rw = await Database.open(path);
    await rw.exec('CREATE TABLE t (x INTEGER); PRAGMA user_version = 7');
    const commits: boolean[] = [];
    rw.observeCommits((r) => commits.push(r.committed));
    expect(await rw.probeWritable()).toBeNull();
    // The probe writes nothing and is no commit (it must not move the store metrics).
    expect((await rw.get<{ user_version: number }>('PRAGMA user_version'))?.user_version).toBe(7);
    expect(commits).toEqual([]);
    // It queues behind a transaction in progress instead of failing inside it.
    const [written, probed] = await Promise.all([rw.write((tx) => tx.run('INSERT INTO t VALUES (1)')), rw.probeWritable()]);
    expect(written.changes).toBe(1);
    expect(probed).toBeNull();
    const ro = await Database.open(path, { readonly: true });
    try {
      expect(await ro.probeWritable()).toMatch(/SQLITE_READONLY/);
    } finally {
      await ro.close();
    }
    await rw.close();
    expect(await rw.probeWritable()).toBe('the store is closed');
  });
});
