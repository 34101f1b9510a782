/**
 * A thin promise wrapper over one `sqlite3` connection.
 *
 * Every write goes through `write()` (one transaction, serialised) or `batch()` (many small
 * writes from the same tick grouped into one transaction, each resolved after COMMIT), so
 * writes from concurrent callers never interleave inside someone else's transaction and an
 * acknowledgement is only sent for what is durable.
 *
 * Each statement costs a trip through libuv's thread pool (~45 µs here), so hot paths queue
 * rows instead (`queueInsert`, `queueUpdate`): a transaction turns everything queued into a
 * few multi-row statements just before COMMIT.
 */
import sqlite3 from 'sqlite3';

export type SqlValue = string | number | bigint | Buffer | Uint8Array | null;
export type SqlParams = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

export interface RunResult {
  lastID: number;
  changes: number;
}

/** What a transaction body may do. Statements are prepared once per SQL text and reused. */
export interface Tx {
  /** Distinct per transaction: lets callers cache what they read inside one transaction. */
  readonly txId: number;
  run(sql: string, params?: SqlParams): Promise<RunResult>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  /**
   * all() for a statement that reads and writes only `tables`, and reaches no other table
   * through a trigger or a foreign key check (an UPDATE that keeps the row's keys): it runs at
   * once, ahead of rows queued for other tables (they are written at the next statement or at
   * COMMIT, with the rows queued after it, so fewer statements). If any of `tables` has
   * queued rows, everything queued is written first, as for all().
   */
  allOn<T>(tables: readonly string[], sql: string, params?: SqlParams): Promise<T[]>;
  /** A row written with the other rows of the same shape, in one statement, before COMMIT. */
  queueInsert(table: string, columns: readonly string[], values: readonly SqlValue[], conflict?: 'IGNORE' | 'REPLACE'): void;
  /**
   * `UPDATE table SET set… WHERE key columns match [AND condition]`, merged with the other
   * updates of the same shape into one statement before COMMIT. A later update of the same key
   * in the same shape replaces an earlier one. Updates of one row in different shapes keep
   * their order: two unconditional ones become one (the later value of each column), otherwise
   * the later is written after the earlier. `condition` must be constant SQL.
   */
  queueUpdate(table: string, key: Readonly<Record<string, SqlValue>>, set: Readonly<Record<string, SqlValue>>, condition?: string): void;
  /**
   * Rows for `table` that need async work before they can be queued (the audit log signs every
   * record a transaction appends in one batch): `fill` runs once, before this transaction next
   * writes rows queued for `table` (at any run/get/all, an allOn naming `table`, or COMMIT), and
   * queues them. If it fails, the transaction fails.
   */
  queueLater(table: string, fill: () => Promise<void>): void;
  /** Runs once this transaction has committed (synchronously, before its callers resume). */
  afterCommit(fn: () => void): void;
  /** Runs if this transaction rolls back, with the error that ended it. */
  afterRollback(fn: (e: unknown) => void): void;
}

/** What a query function needs: the database itself (reads, autocommit) or a transaction. */
export type Queryable = Pick<Tx, 'run' | 'get' | 'all'>;

export interface OpenOptions {
  /** Milliseconds to wait for another process's write lock (CLI admin commands). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

interface InsertGroup {
  table: string;
  sqlHead: string;
  width: number;
  /** The queued rows' values, row after row (`width` each): bound as they are, no copy per flush. */
  values: SqlValue[];
}

/** `INSERT [OR …] INTO table (columns) VALUES ` per column list (callers pass module constants) and table. */
const insertHeads = new WeakMap<readonly string[], Map<string, string>>();
function insertHead(table: string, columns: readonly string[], conflict: 'IGNORE' | 'REPLACE' | undefined): string {
  let byTable = insertHeads.get(columns);
  if (!byTable) {
    byTable = new Map();
    insertHeads.set(columns, byTable);
  }
  const key = conflict ? `${table} ${conflict}` : table;
  let head = byTable.get(key);
  if (head === undefined) {
    head = `INSERT${conflict ? ` OR ${conflict}` : ''} INTO ${table} (${columns.join(', ')}) VALUES `;
    byTable.set(key, head);
  }
  return head;
}

interface UpdateGroup {
  table: string;
  /** Table, key columns, set columns and condition: what one statement can write. */
  shape: string;
  keyColumns: readonly string[];
  columns: readonly string[];
  condition: string | undefined;
  /** Key values then set values, per row (table, key columns and key values). */
  rows: Map<string, SqlValue[]>;
}

/**
 * Queued updates that can be written in any order among themselves. A generation is written
 * after the one before it: an update that must follow one already queued in another shape (a
 * conditional one, or a row named by other key columns) starts the next generation.
 */
interface UpdateGeneration {
  readonly groups: Map<string, UpdateGroup>;
  /** The group holding each row. */
  readonly rows: Map<string, UpdateGroup>;
  /**
   * The key columns queued per table and first key value: `{id}` and `{id, agent_id}` may name
   * the same row. SEVERAL when more than one list was.
   */
  readonly firsts: Map<string, string>;
}

const SEVERAL = '\0';

/** A key's values as map-key text (no collisions between types: JSON, bigint and bytes spelled out). */
function keyText(values: readonly SqlValue[]): string {
  return values.length === 1 && typeof values[0] === 'string' ? values[0] : JSON.stringify(values.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v)));
}

interface SqliteBackup {
  readonly completed: boolean;
  readonly remaining: number;
  step(pages: number, cb: (err: Error | null) => void): void;
  finish(cb: (err: Error | null) => void): void;
}

/** SQLite's default limit on bound parameters per statement is 32766. */
const MAX_PARAMS = 32_000;

export interface CommitReport {
  readonly committed: boolean;
  /** BEGIN to COMMIT (or ROLLBACK), monotonic clock. */
  readonly seconds: number;
  /** Rows queued with queueInsert, per table (those written with run() are not counted). */
  readonly insertedRows: ReadonlyMap<string, number>;
}

export type CommitObserver = (r: CommitReport) => void;

/**
 * Group commit for batched writes (`batch()`). Every commit costs the same whatever its size
 * (BEGIN and COMMIT trips, the WAL frames of every touched index page, an fsync): about half a
 * millisecond of CPU here. When `worthWaiting(pending)` says more writes are on their way (many
 * steps in flight), a batch transaction waits `waitMs` before taking its group, so results that
 * trickle in commit together. Nothing is acknowledged before it commits, so this moves
 * acknowledgements later by at most `waitMs`, never earlier.
 */
export interface GroupCommit {
  readonly waitMs: number;
  readonly worthWaiting: (pending: number) => boolean;
}

export class Database {
  private readonly statements = new Map<string, sqlite3.Statement>();
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Array<{ fn: (tx: Tx) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  private flushScheduled = false;
  private closed = false;
  private txCounter = 0;
  private commitObserver: CommitObserver | undefined;
  private retryWhen: ((e: unknown) => boolean) | undefined;
  private gather: GroupCommit | undefined;

  private constructor(private readonly db: sqlite3.Database, readonly path: string) {}

  static async open(path: string, options: OpenOptions = {}): Promise<Database> {
    const mode = options.readonly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
    const raw = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new sqlite3.Database(path, mode, (err) => (err ? reject(err) : resolve(d)));
    });
    raw.configure('busyTimeout', options.busyTimeoutMs ?? 10_000);
    const db = new Database(raw, path);
    if (!options.readonly) {
      // FULL: an acknowledged result survives power loss too (the agent deletes its copy on ack).
      // Batching keeps the fsyncs to one per group.
      await db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;');
    }
    return db;
  }

  /**
   * A transaction that failed with an error `when` accepts is run once more from the start
   * (the audit log's optimistic chain head: coordinator/audit/audit-log.ts).
   */
  retryTransactionsWhen(when: (e: unknown) => boolean): void {
    this.retryWhen = when;
  }

  /** Sets (or, with undefined, removes) the group-commit policy for batched writes. */
  groupCommit(policy: GroupCommit | undefined): void {
    this.gather = policy;
  }

  /** Told about every write transaction once it ends (metrics: commit latency, audit append rate). */
  observeCommits(fn: CommitObserver): void {
    this.commitObserver = fn;
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  private statement(sql: string): sqlite3.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      // A safety net: statement texts are few (fixed chunk sizes), but never let the cache grow unbounded.
      if (this.statements.size > 400) {
        const [firstKey, first] = this.statements.entries().next().value as [string, sqlite3.Statement];
        first.finalize();
        this.statements.delete(firstKey);
      }
      this.statements.set(sql, st);
    }
    return st;
  }

  run(sql: string, params: SqlParams = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.statement(sql).run(params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ lastID: this.lastID, changes: this.changes });
      });
    });
  }

  /** One row. Uses all(): a statement stepped by get() stays open and pins a WAL snapshot. */
  async get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    const rows = await this.all<T>(sql, params);
    return rows[0];
  }

  all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.statement(sql).all(params, (err: Error | null, rows: unknown[]) => (err ? reject(err) : resolve(rows as T[])));
    });
  }

  /** Runs `fn` in its own IMMEDIATE transaction, after every earlier write has finished. */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const next = this.chain.then(() => this.transaction(fn));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Queues a small write; all writes queued in the same tick commit in one transaction.
   * If the group fails, each write is retried alone so one bad write cannot sink the others.
   */
  batch<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const run = this.chain.then(async () => {
      const gather = this.gather;
      if (gather && this.pending.length > 0 && !this.closed && gather.worthWaiting(this.pending.length)) {
        await new Promise((r) => setTimeout(r, gather.waitMs));
      }
      // Take what has accumulated by the time the previous transaction finished.
      const group = this.pending;
      this.pending = [];
      if (group.length === 0) return;
      try {
        const results = await this.transaction(async (tx) => {
          const out: unknown[] = [];
          for (const item of group) out.push(await item.fn(tx));
          return out;
        });
        group.forEach((item, i) => item.resolve(results[i]));
      } catch {
        for (const item of group) {
          try {
            item.resolve(await this.transaction(item.fn));
          } catch (e) {
            item.reject(e);
          }
        }
      }
    });
    this.chain = run.catch(() => undefined);
  }

  private async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    try {
      return await this.transactionOnce(fn);
    } catch (e) {
      if (!this.retryWhen?.(e)) throw e;
      return this.transactionOnce(fn);
    }
  }

  private async transactionOnce<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const started = performance.now();
    const onCommit: Array<() => void> = [];
    const onRollback: Array<(e: unknown) => void> = [];
    /** Rows queued per table: reported once the transaction commits. */
    const queuedRows = new Map<string, number>();
    await this.run('BEGIN IMMEDIATE');
    const inserts = new Map<string, InsertGroup>();
    let generations: UpdateGeneration[] = [];
    let later: Array<{ table: string; fill: () => Promise<void> }> = [];
    // Queued rows are written before any statement that follows them in the same transaction,
    // so a later read (or write) always sees what was queued before it.
    const flushQueued = async (): Promise<void> => {
      while (later.length > 0) {
        const fills = later;
        later = [];
        for (const l of fills) await l.fill();
      }
      for (const g of inserts.values()) await this.flushInserts(g);
      inserts.clear();
      const gens = generations;
      generations = [];
      for (const gen of gens) for (const g of gen.groups.values()) await this.flushUpdates(g);
    };
    const queued = (): boolean => inserts.size > 0 || generations.length > 0 || later.length > 0;
    const queuedFor = (tables: readonly string[]): boolean => {
      for (const l of later) if (tables.includes(l.table)) return true;
      for (const g of inserts.values()) if (tables.includes(g.table)) return true;
      for (const gen of generations) for (const g of gen.groups.values()) if (tables.includes(g.table)) return true;
      return false;
    };
    const queueUpdate = (table: string, key: Readonly<Record<string, SqlValue>>, set: Readonly<Record<string, SqlValue>>, condition: string | undefined): void => {
      const keyColumns = Object.keys(key);
      const keyValues = Object.values(key);
      const keyList = keyColumns.join(',');
      const row = `${table}|${keyList}|${keyText(keyValues)}`;
      const first = `${table}|${keyColumns[0] ?? ''}|${keyText(keyValues.slice(0, 1))}`;
      const columns = Object.keys(set);
      const shape = `${table}|${keyList}|${columns.join(',')}|${condition ?? ''}`;
      let gen = generations[generations.length - 1];
      const held = gen?.rows.get(row);
      if (gen && held && held.shape !== shape) {
        const old = held.rows.get(row) as SqlValue[];
        if (held.condition === undefined && condition === undefined) {
          // Both unconditional: one update of the union of their columns, later values winning.
          const merged: Record<string, SqlValue> = {};
          held.columns.forEach((c, i) => (merged[c] = old[keyColumns.length + i] as SqlValue));
          Object.assign(merged, set);
          held.rows.delete(row);
          gen.rows.delete(row);
          queueUpdate(table, key, merged, undefined);
          return;
        }
        gen = undefined;
      } else if (gen && !held) {
        const lists = gen.firsts.get(first);
        if (lists !== undefined && lists !== keyList) gen = undefined;
      }
      if (!gen) {
        gen = { groups: new Map(), rows: new Map(), firsts: new Map() };
        generations.push(gen);
      }
      let g = gen.groups.get(shape);
      if (!g) {
        g = { table, shape, keyColumns, columns, condition, rows: new Map() };
        gen.groups.set(shape, g);
      }
      g.rows.set(row, [...keyValues, ...Object.values(set)]);
      gen.rows.set(row, g);
      const lists = gen.firsts.get(first);
      if (lists === undefined) gen.firsts.set(first, keyList);
      else if (lists !== keyList) gen.firsts.set(first, SEVERAL);
    };
    const tx: Tx = {
      txId: ++this.txCounter,
      run: async (sql, params) => {
        if (queued()) await flushQueued();
        return this.run(sql, params);
      },
      get: async (sql, params) => {
        if (queued()) await flushQueued();
        return this.get(sql, params);
      },
      all: async (sql, params) => {
        if (queued()) await flushQueued();
        return this.all(sql, params);
      },
      allOn: async (tables, sql, params) => {
        if (queuedFor(tables)) await flushQueued();
        return this.all(sql, params);
      },
      queueInsert: (table, columns, values, conflict) => {
        queuedRows.set(table, (queuedRows.get(table) ?? 0) + 1);
        if (values.length !== columns.length) throw new Error(`${values.length} values for ${columns.length} columns of ${table}`);
        const head = insertHead(table, columns, conflict);
        let g = inserts.get(head);
        if (!g) {
          g = { table, sqlHead: head, width: columns.length, values: [] };
          inserts.set(head, g);
        }
        for (const v of values) g.values.push(v);
      },
      queueUpdate: (table, key, set, condition) => queueUpdate(table, key, set, condition),
      queueLater: (table, fill) => void later.push({ table, fill }),
      afterCommit: (f) => void onCommit.push(f),
      afterRollback: (f) => void onRollback.push(f),
    };
    try {
      const result = await fn(tx);
      await flushQueued();
      await this.run('COMMIT');
      for (const f of onCommit) f();
      this.commitObserver?.({ committed: true, seconds: (performance.now() - started) / 1000, insertedRows: queuedRows });
      return result;
    } catch (e) {
      await this.run('ROLLBACK').catch(() => undefined);
      for (const f of onRollback) f(e);
      this.commitObserver?.({ committed: false, seconds: (performance.now() - started) / 1000, insertedRows: new Map() });
      throw e;
    }
  }

  /**
   * Multi-row statements come in fixed sizes, powers of two up to 512, so that the
   * prepared-statement cache holds a bounded number of texts (each large statement costs
   * megabytes once prepared) while n rows take at most popcount(n) statements: every statement
   * is a trip through libuv's pool, and the usual group on the hot path is a few dozen rows.
   */
  private static chunks(total: number, max: number): number[] {
    const sizes = [512, 256, 128, 64, 32, 16, 8, 4, 2, 1].filter((n) => n <= max);
    const out: number[] = [];
    let left = total;
    for (const n of sizes.length ? sizes : [1]) {
      while (left >= n) {
        out.push(n);
        left -= n;
      }
    }
    return out;
  }

  private async flushInserts(g: InsertGroup): Promise<void> {
    const tuple = `(${new Array(g.width).fill('?').join(', ')})`;
    const rows = g.values.length / g.width;
    let i = 0;
    for (const n of Database.chunks(rows, Math.floor(MAX_PARAMS / g.width))) {
      const params = n === rows ? g.values : g.values.slice(i * g.width, (i + n) * g.width);
      i += n;
      await this.run(g.sqlHead + new Array(n).fill(tuple).join(', '), params);
    }
  }

  private async flushUpdates(g: UpdateGroup): Promise<void> {
    const k = g.keyColumns.length;
    const width = k + g.columns.length;
    const tuple = `(${new Array(width).fill('?').join(', ')})`;
    const set = g.columns.map((c, i) => `${c} = v.column${k + i + 1}`).join(', ');
    const match = g.keyColumns.map((c, i) => `${g.table}.${c} = v.column${i + 1}`).join(' AND ');
    const rows = [...g.rows.values()];
    let i = 0;
    for (const n of Database.chunks(rows.length, Math.floor(MAX_PARAMS / width))) {
      const chunk = rows.slice(i, i + n);
      i += n;
      const sql = `UPDATE ${g.table} SET ${set} FROM (VALUES ${new Array(n).fill(tuple).join(', ')}) AS v WHERE ${match}${g.condition ? ` AND (${g.condition})` : ''}`;
      await this.run(sql, chunk.flat());
    }
  }

  /**
   * Whether a write can commit now (readiness): takes the write lock and writes the header's
   * user_version back unchanged, then rolls back. Resolves to null when writable, else why not.
   * Runs in the write chain, so it never interleaves with a transaction on this connection.
   */
  probeWritable(): Promise<string | null> {
    const next = this.chain.then(async () => {
      if (this.closed) return 'the store is closed';
      try {
        await this.run('BEGIN IMMEDIATE');
        try {
          const row = await this.get<{ user_version: number }>('PRAGMA user_version');
          await this.exec(`PRAGMA user_version = ${Number(row?.user_version ?? 0)}`);
        } finally {
          await this.run('ROLLBACK').catch(() => undefined);
        }
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Writes queued for the next batch transaction (a queue depth for metrics). */
  get pendingWrites(): number {
    return this.pending.length;
  }

  /**
   * A consistent copy of the whole store in `file` through SQLite's online backup API, while
   * this or another process keeps writing: one step copies every page inside one read
   * transaction (WAL readers do not block writers), so the copy is the store at one instant.
   */
  backupTo(file: string): Promise<void> {
    return new Promise((resolve, reject) => {
      // @types for sqlite3 lack Backup: this is the part of it used here.
      const raw = this.db as unknown as { backup(file: string, cb: (err: Error | null) => void): SqliteBackup };
      const backup = raw.backup(file, (err) => {
        if (err) {
          reject(err);
          return;
        }
        backup.step(-1, (stepErr) => {
          const ok = !stepErr && backup.completed;
          backup.finish(() => (ok ? resolve() : reject(stepErr ?? new Error(`the backup stopped with ${backup.remaining} pages left`))));
        });
      });
    });
  }

  /** Resolves once every queued write has committed. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushScheduled) {
      await new Promise((r) => setImmediate(r));
      await this.chain;
    }
    await this.chain;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drain();
    for (const st of this.statements.values()) {
      await new Promise<void>((resolve) => st.finalize(() => resolve()));
    }
    this.statements.clear();
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}
