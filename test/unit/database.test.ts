import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { ROOT } from '../helpers/processes.js';

describe('store batching', () => {
  let db: Database;
  beforeEach(async () => {
    db = await Database.open(join(await mkdtemp(join(tmpdir(), 'hr-db-')), 't.db'));
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER NOT NULL DEFAULT 0)');
  });
  afterEach(async () => {
    await db.close();
  });

  it('groups writes from one tick into one transaction, each resolved after commit', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => db.batch(async (tx) => (await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [i, `v${i}`])).changes)));
    expect(results.every((c) => c === 1)).toBe(true);
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(100);
  });

  it('lets a later write in the same group see rows queued before it', async () => {
    const [, seen, changed] = await Promise.all([
      db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [1, 'queued'])),
      db.batch(async (tx) => (await tx.get<{ v: string }>('SELECT v FROM t WHERE id = 1'))?.v),
      db.batch(async (tx) => {
        tx.queueUpdate('t', { id: 1 }, { v: 'by queue' });
        return (await tx.run("UPDATE t SET v = 'by statement' WHERE id = 1 AND v = 'by queue'")).changes;
      }),
    ]);
    expect(seen).toBe('queued');
    expect(changed).toBe(1);
    expect((await db.get<{ v: string }>('SELECT v FROM t WHERE id = 1'))?.v).toBe('by statement');
  });

  it('retries each write alone when the group fails, so one bad write does not sink the others', async () => {
    await db.write((tx) => tx.run('INSERT INTO t (id, v) VALUES (1, ?)', ['x']));
    const outcomes = await Promise.allSettled([
      db.batch((tx) => tx.run('INSERT INTO t (id, v) VALUES (2, ?)', ['ok'])),
      db.batch((tx) => tx.run('INSERT INTO t (id, v) VALUES (1, ?)', ['duplicate'])),
      db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [3, 'ok'])),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await db.all<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('coalesces queued updates of one key and writes thousands of rows in a few statement shapes', async () => {
    await db.write(async (tx) => {
      for (let i = 0; i < 3000; i++) tx.queueInsert('t', ['id', 'v'], [i, 'a']);
    });
    await db.write(async (tx) => {
      for (let i = 0; i < 3000; i++) tx.queueUpdate('t', { id: i }, { n: i });
      tx.queueUpdate('t', { id: 7 }, { n: 700 });
    });
    expect((await db.get<{ s: number }>('SELECT sum(n) AS s FROM t'))?.s).toBe((2999 * 3000) / 2 - 7 + 700);
    // Different group sizes reuse a bounded set of statement texts: chunks of 512, 256, …, 2, 1
    // rows, so at most ten texts per statement shape (three shapes here) whatever the sizes.
    for (const size of [5, 77, 513, 1000, 1999]) {
      await db.write(async (tx) => {
        for (let i = 0; i < size; i++) tx.queueUpdate('t', { id: i }, { v: `s${size}` });
      });
    }
    const cache = (db as unknown as { statements: Map<string, unknown> }).statements;
    expect(cache.size).toBeLessThanOrEqual(3 * 10 + 4);
  });
});

describe('group commit', () => {
  let dir: string;
  let db: Database;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hr-db-'));
    db = await Database.open(join(dir, 't.db'));
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  });
  afterEach(async () => {
    await db.close();
  });

  const insert = (id: number): Promise<void> => db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [id, 'x']));

  it('never holds back a lone write, however long the linger', async () => {
    db.groupCommit(600_000);
    // Quiet store: the last batch took in one write, so the next starts at once (else this test would time out).
    await insert(1);
    await insert(2);
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(2);
  });

  it('starts a full batch at once, however long the linger', async () => {
    db.groupCommit(600_000);
    await Promise.all([insert(1), insert(2)]); // streaming: the next batch would linger…
    await Promise.all(Array.from({ length: 600 }, (_, i) => insert(10 + i))); // …but 600 writes are enough
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(602);
  });

  it('while writes stream in, waits after a batch before the next and resolves each write only once it is committed', async () => {
    const lingerMs = 40;
    db.groupCommit(lingerMs);
    const reader = await Database.open(join(dir, 't.db'), { readonly: true });
    try {
      let commits = 0;
      db.observeCommits((r) => void (r.committed && commits++));
      await Promise.all([insert(1), insert(2)]);
      const committedAt = performance.now();
      const seen: number[] = [];
      // Writes arriving one tick after another: without group commit each could be its own commit.
      const writes = Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setImmediate(r));
        await insert(100 + i);
        // Resolved: another connection must see it (the acknowledgement comes after COMMIT).
        const row = await reader.get<{ id: number }>('SELECT id FROM t WHERE id = ?', [100 + i]);
        if (row) seen.push(row.id);
        return performance.now();
      });
      const resolvedAt = await Promise.all(writes);
      expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 100 + i));
      // Timers never fire early; a loaded machine only makes the wait longer.
      expect(Math.min(...resolvedAt) - committedAt).toBeGreaterThanOrEqual(lingerMs - 1);
      expect(commits).toBeLessThan(1 + 20);
    } finally {
      await reader.close();
    }
  });
});

describe('group commit across kill -9', () => {
  it('every write a process saw resolved is in the store after it is killed mid-batch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-db-'));
    const file = join(dir, 't.db');
    const setup = await Database.open(file);
    await setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    await setup.close();
    // A writer that streams writes in groups under group commit and prints each id once its write resolved.
    const script = `
      const { Database } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'coordinator', 'store', 'database.js')).href)});
      const db = await Database.open(${JSON.stringify(file)});
      db.groupCommit(5);
      let id = 0;
      for (;;) {
        await Promise.all(Array.from({ length: 7 }, async () => {
          const mine = ++id;
          await db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [mine, 'x'.repeat(200)]));
          process.stdout.write(mine + '\\n');
        }));
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked: number[] = [];
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) acked.push(Number(l));
        // Killed while it keeps writing: some batch is always in flight or lingering.
        if (acked.length >= 500) {
          child.removeAllListeners('exit');
          child.kill('SIGKILL');
          child.once('exit', () => resolve());
        }
      });
    });
    const db = await Database.open(file, { readonly: true });
    try {
      const stored = new Set((await db.all<{ id: number }>('SELECT id FROM t')).map((r) => r.id));
      expect(acked.filter((id) => !stored.has(id))).toEqual([]);
      expect(stored.size).toBeGreaterThanOrEqual(acked.length);
    } finally {
      await db.close();
    }
  });
});

describe('schema migrations', () => {
  it('upgrades a store made by an earlier version, keeping its rows', async () => {
    const { MIGRATIONS, migrate } = await import('../../coordinator/store/migrations.js');
    const db = await Database.open(join(await mkdtemp(join(tmpdir(), 'hr-mig-')), 'old.db'));
    try {
      // What the first released schema left behind: version 1 and an agent row.
      await db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
      await db.exec(MIGRATIONS[0] as string);
      await db.exec('INSERT INTO schema_version (version) VALUES (1)');
      await db.run(
        "INSERT INTO agents (id, name, labels_json, pinned_labels_json, facts_json, enrolled_at, cert_serial, cert_not_after, connected) VALUES ('agt_old', 'old', '{}', '{}', '{}', 1, '01', 2, 0)",
      );
      await migrate(db);
      const version = await db.get<{ v: number }>('SELECT max(version) AS v FROM schema_version');
      expect(version?.v).toBe(MIGRATIONS.length);
      const agent = await db.get<{ name: string; heartbeat_interval_ms: number | null }>("SELECT name, heartbeat_interval_ms FROM agents WHERE id = 'agt_old'");
      expect(agent).toEqual({ name: 'old', heartbeat_interval_ms: null });
      const cols = await db.all<{ name: string }>('PRAGMA table_info(step_runs)');
      expect(cols.map((c) => c.name)).toContain('request_sha256');
      await migrate(db); // a second start changes nothing
      expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM schema_version'))?.n).toBe(MIGRATIONS.length);
    } finally {
      await db.close();
    }
  });
});
