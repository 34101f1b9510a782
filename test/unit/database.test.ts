import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Database, type Tx } from '../../coordinator/store/database.js';

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

  it('allOn runs ahead of rows queued for other tables, which then go out together; rows queued for its own tables are written first', async () => {
    await db.exec('CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)');
    await db.exec("INSERT INTO u (id, v) VALUES (1, 'before')");
    const [ahead, after, own] = await db.write(async (tx) => {
      tx.queueInsert('t', ['id', 'v'], [1, 'a']);
      // Not written yet: allOn on u does not flush t.
      const a = await tx.allOn<{ n: string }>(['u'], "UPDATE u SET v = (SELECT count(*) FROM t) WHERE id = 1 RETURNING v AS n");
      tx.queueInsert('t', ['id', 'v'], [2, 'b']);
      const b = await tx.get<{ n: number }>('SELECT count(*) AS n FROM t');
      tx.queueInsert('u', ['id', 'v'], [2, 'queued']);
      // u has a queued row: it is written before the statement runs.
      const c = await tx.allOn<{ n: number }>(['u'], 'SELECT count(*) AS n FROM u');
      return [a[0]?.n, b?.n, c[0]?.n];
    });
    expect(ahead).toBe('0');
    expect(after).toBe(2);
    expect(own).toBe(2);
  });

  it('queueLater fills its rows before the transaction next writes them: at a statement, an allOn naming its table, or COMMIT; never for another table', async () => {
    await db.exec('CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)');
    const fills: string[] = [];
    const later = (tx: Tx, id: number): void =>
      tx.queueLater('t', async () => {
        await new Promise((r) => setImmediate(r));
        fills.push(`t${id}`);
        tx.queueInsert('t', ['id', 'v'], [id, 'late']);
      });
    const seen = await db.write(async (tx) => {
      later(tx, 1);
      const onU = await tx.allOn<{ n: number }>(['u'], 'SELECT count(*) AS n FROM u');
      const filledBeforeU = fills.length;
      const onT = await tx.allOn<{ n: number }>(['t'], 'SELECT count(*) AS n FROM t');
      later(tx, 2);
      const byGet = await tx.get<{ n: number }>('SELECT count(*) AS n FROM t');
      later(tx, 3);
      return { onU: onU[0]?.n, filledBeforeU, onT: onT[0]?.n, byGet: byGet?.n };
    });
    expect(seen).toEqual({ onU: 0, filledBeforeU: 0, onT: 1, byGet: 2 });
    expect(fills).toEqual(['t1', 't2', 't3']);
    expect((await db.all<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('a failing queueLater fill rolls the whole transaction back', async () => {
    await expect(db.write(async (tx) => {
      tx.queueInsert('t', ['id', 'v'], [1, 'a']);
      tx.queueLater('t', () => Promise.reject(new Error('could not sign')));
    })).rejects.toThrow(/could not sign/);
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(0);
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

  it('refuses a queued row whose values do not match its columns, instead of shifting later rows', async () => {
    await expect(db.write(async (tx) => {
      tx.queueInsert('t', ['id', 'v'], [1, 'a']);
      tx.queueInsert('t', ['id', 'v'], [2]);
      tx.queueInsert('t', ['id', 'v'], [3, 'c']);
    })).rejects.toThrow(/1 values for 2 columns of t/);
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(0);
  });

  it('keeps queued rows of different tables, conflict clauses and column lists apart', async () => {
    await db.exec('CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)');
    const cols = ['id', 'v'] as const;
    await db.write(async (tx) => {
      tx.queueInsert('t', cols, [1, 't1']);
      tx.queueInsert('u', cols, [1, 'u1']);
      tx.queueInsert('t', cols, [1, 'ignored'], 'IGNORE');
      tx.queueInsert('t', ['id', 'n'], [2, 5]);
      tx.queueInsert('u', cols, [2, 'u2'], 'REPLACE');
    });
    await db.write(async (tx) => tx.queueInsert('u', cols, [2, 'u2 again'], 'REPLACE'));
    expect(await db.all('SELECT id, v, n FROM t ORDER BY id')).toEqual([{ id: 1, v: 't1', n: 0 }, { id: 2, v: null, n: 5 }]);
    expect(await db.all('SELECT id, v FROM u ORDER BY id')).toEqual([{ id: 1, v: 'u1' }, { id: 2, v: 'u2 again' }]);
  });

  it('group commit: while the policy says more writes are coming, a batch waits for them and they share one commit', async () => {
    const commits: number[] = [];
    db.observeCommits((r) => commits.push(r.insertedRows.get('t') ?? 0));
    const asked: number[] = [];
    let late: Promise<void> | undefined;
    db.groupCommit({
      waitMs: 50,
      worthWaiting: (pending) => {
        asked.push(pending);
        // A write that arrives while the first one waits (after its tick): it joins the same group.
        late ??= db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [2, 'late']));
        return true;
      },
    });
    let firstDone = false;
    const first = db.batch(async (tx) => tx.queueInsert('t', ['id', 'v'], [1, 'first'])).then(() => {
      firstDone = true;
      // Acknowledged only once committed: the commit was observed before this runs.
      expect(commits).toEqual([2]);
    });
    await first;
    await late;
    expect(firstDone).toBe(true);
    expect(asked[0]).toBe(1);
    expect(commits).toEqual([2]);
    expect((await db.all<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 2]);
    db.groupCommit(undefined);
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

  // Updates are written per shape (table, key columns, set columns, condition), each shape in
  // the order it was first queued: a later update of a row must still land after an earlier one
  // queued in a shape that another row opened later (a node started, then finished, in one batch).
  it.each([
    {
      name: 'two unconditional shapes: merged, the later value of each column wins',
      queue: (tx: Tx): void => {
        tx.queueUpdate('t', { id: 2 }, { v: 'done', n: 2 });
        tx.queueUpdate('t', { id: 1 }, { v: 'running' });
        tx.queueUpdate('t', { id: 1 }, { v: 'done', n: 1 });
        tx.queueUpdate('t', { id: 3 }, { v: 'running' });
        tx.queueUpdate('t', { id: 3 }, { n: 30 });
      },
      want: [{ id: 1, v: 'done', n: 1 }, { id: 2, v: 'done', n: 2 }, { id: 3, v: 'running', n: 30 }],
    },
    {
      name: 'a conditional update, then an unconditional one of the same row in an older shape',
      queue: (tx: Tx): void => {
        tx.queueUpdate('t', { id: 2 }, { v: 'x' });
        tx.queueUpdate('t', { id: 1 }, { v: 'a' }, 't.n = 0');
        tx.queueUpdate('t', { id: 1 }, { v: 'b' });
      },
      want: [{ id: 1, v: 'b', n: 0 }, { id: 2, v: 'x', n: 0 }],
    },
    {
      name: 'the same row named by other key columns (as a step is by id, and by id and agent)',
      queue: (tx: Tx): void => {
        tx.queueUpdate('t', { id: 2 }, { v: 'x' });
        tx.queueUpdate('t', { id: 1, n: 0 }, { v: 'a' }, 't.n = 0');
        tx.queueUpdate('t', { id: 1 }, { v: 'b' });
      },
      want: [{ id: 1, v: 'b', n: 0 }, { id: 2, v: 'x', n: 0 }],
    },
    {
      name: 'an unconditional update, then a conditional one that no longer matches',
      queue: (tx: Tx): void => {
        tx.queueUpdate('t', { id: 2 }, { v: 'a' }, 't.n = 0');
        tx.queueUpdate('t', { id: 1 }, { n: 5 });
        tx.queueUpdate('t', { id: 1 }, { v: 'a' }, 't.n = 0');
      },
      want: [{ id: 1, v: 'start', n: 5 }, { id: 2, v: 'a', n: 0 }],
    },
  ])('keeps the order of updates of one row across shapes: $name', async ({ queue, want }) => {
    await db.write(async (tx) => {
      for (const id of [1, 2, 3]) tx.queueInsert('t', ['id', 'v'], [id, 'start']);
    });
    await db.write(async (tx) => queue(tx));
    const rows = await db.all<{ id: number; v: string; n: number }>('SELECT id, v, n FROM t WHERE id IN (1, 2) OR v <> ? ORDER BY id', ['start']);
    expect(rows).toEqual(want);
  });

  it('keeps rows of different keys in one statement per shape, however their shapes interleave', async () => {
    await db.write(async (tx) => {
      for (let i = 0; i < 200; i++) tx.queueInsert('t', ['id', 'v'], [i, 'start']);
    });
    const runs = async (queue: (tx: Tx) => void): Promise<number> => {
      const proto = sqlite3.Statement.prototype as unknown as { run: (...a: unknown[]) => unknown };
      const run = proto.run;
      let n = 0;
      proto.run = function (this: unknown, ...a: unknown[]) {
        n++;
        return run.apply(this, a);
      };
      try {
        await db.write(async (tx) => queue(tx));
      } finally {
        proto.run = run;
      }
      return n;
    };
    const grouped = await runs((tx) => {
      for (let i = 0; i < 200; i += 2) tx.queueUpdate('t', { id: i }, { v: 'even' });
      for (let i = 1; i < 200; i += 2) tx.queueUpdate('t', { id: i }, { n: i }, "t.v = 'start'");
    });
    const interleaved = await runs((tx) => {
      for (let i = 0; i < 200; i++) {
        if (i % 2 === 0) tx.queueUpdate('t', { id: i }, { v: 'even2' });
        else tx.queueUpdate('t', { id: i }, { n: -i }, "t.v = 'start'");
      }
    });
    expect(interleaved).toBe(grouped);
    expect((await db.get<{ c: number }>("SELECT count(*) AS c FROM t WHERE v = 'even2'"))?.c).toBe(100);
    expect((await db.get<{ s: number }>('SELECT sum(n) AS s FROM t WHERE id % 2 = 1'))?.s).toBe(-10000);
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
