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
  /** A row written with the other rows of the same shape, in one statement, before COMMIT. */
  queueInsert(table: string, columns: readonly string[], values: readonly SqlValue[], conflict?: 'IGNORE' | 'REPLACE'): void;
  /**
   * `UPDATE table SET set… WHERE key columns match [AND condition]`, merged with the other
   * updates of the same shape into one statement before COMMIT. A later update of the same key
   * in the same transaction replaces an earlier one. `condition` must be constant SQL.
   */
  queueUpdate(table: string, key: Readonly<Record<string, SqlValue>>, set: Readonly<Record<string, SqlValue>>, condition?: string): void;
}

export interface OpenOptions {
  /** Milliseconds to wait for another process's write lock (CLI admin commands). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

interface InsertGroup {
  sqlHead: string;
  width: number;
  rows: SqlValue[][];
}

interface UpdateGroup {
  table: string;
  keyColumns: readonly string[];
  columns: readonly string[];
  condition: string | undefined;
  rows: Map<string, SqlValue[]>;
}

/** SQLite's default limit on bound parameters per statement is 32766. */
const MAX_PARAMS = 32_000;

export class Database {
  private readonly statements = new Map<string, sqlite3.Statement>();
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Array<{ fn: (tx: Tx) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }> = [];
  private flushScheduled = false;
  private closed = false;
  private txCounter = 0;

  private constructor(private readonly db: sqlite3.Database, readonly path: string) {}

  static async open(path: string, options: OpenOptions = {}): Promise<Database> {
    const mode = options.readonly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
    const raw = await new Promise<sqlite3.Database>((resolve, reject) => {
      const d = new sqlite3.Database(path, mode, (err) => (err ? reject(err) : resolve(d)));
    });
    raw.configure('busyTimeout', options.busyTimeoutMs ?? 10_000);
    const db = new Database(raw, path);
    if (!options.readonly) {
      await db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
    }
    return db;
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  private statement(sql: string): sqlite3.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      // Multi-row statements vary in size; keep the cache from growing without bound.
      if (this.statements.size > 500) {
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
    await this.run('BEGIN IMMEDIATE');
    const inserts = new Map<string, InsertGroup>();
    const updates = new Map<string, UpdateGroup>();
    const tx: Tx = {
      txId: ++this.txCounter,
      run: (sql, params) => this.run(sql, params),
      get: (sql, params) => this.get(sql, params),
      all: (sql, params) => this.all(sql, params),
      queueInsert: (table, columns, values, conflict) => {
        const head = `INSERT${conflict ? ` OR ${conflict}` : ''} INTO ${table} (${columns.join(', ')}) VALUES `;
        let g = inserts.get(head);
        if (!g) {
          g = { sqlHead: head, width: columns.length, rows: [] };
          inserts.set(head, g);
        }
        g.rows.push([...values]);
      },
      queueUpdate: (table, key, set, condition) => {
        const keyColumns = Object.keys(key);
        const columns = Object.keys(set);
        const id = `${table}|${keyColumns.join(',')}|${columns.join(',')}|${condition ?? ''}`;
        let g = updates.get(id);
        if (!g) {
          g = { table, keyColumns, columns, condition, rows: new Map() };
          updates.set(id, g);
        }
        const keyValues = Object.values(key);
        g.rows.set(JSON.stringify(keyValues.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v))), [...keyValues, ...Object.values(set)]);
      },
    };
    try {
      const result = await fn(tx);
      for (const g of inserts.values()) await this.flushInserts(g);
      for (const g of updates.values()) await this.flushUpdates(g);
      await this.run('COMMIT');
      return result;
    } catch (e) {
      await this.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  private async flushInserts(g: InsertGroup): Promise<void> {
    const per = Math.max(1, Math.floor(MAX_PARAMS / g.width));
    const tuple = `(${new Array(g.width).fill('?').join(', ')})`;
    for (let i = 0; i < g.rows.length; i += per) {
      const chunk = g.rows.slice(i, i + per);
      await this.run(g.sqlHead + new Array(chunk.length).fill(tuple).join(', '), chunk.flat());
    }
  }

  private async flushUpdates(g: UpdateGroup): Promise<void> {
    const k = g.keyColumns.length;
    const width = k + g.columns.length;
    const per = Math.max(1, Math.floor(MAX_PARAMS / width));
    const tuple = `(${new Array(width).fill('?').join(', ')})`;
    const set = g.columns.map((c, i) => `${c} = v.column${k + i + 1}`).join(', ');
    const match = g.keyColumns.map((c, i) => `${g.table}.${c} = v.column${i + 1}`).join(' AND ');
    const rows = [...g.rows.values()];
    for (let i = 0; i < rows.length; i += per) {
      const chunk = rows.slice(i, i + per);
      const sql = `UPDATE ${g.table} SET ${set} FROM (VALUES ${new Array(chunk.length).fill(tuple).join(', ')}) AS v WHERE ${match}${g.condition ? ` AND (${g.condition})` : ''}`;
      await this.run(sql, chunk.flat());
    }
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
