/**
 * A thin promise wrapper over one `sqlite3` connection.
 *
 * Every write goes through `write()` (one transaction, serialised) or `batch()` (many small
 * writes from the same tick grouped into one transaction, each resolved after COMMIT), so
 * writes from concurrent callers never interleave inside someone else's transaction and an
 * acknowledgement is only sent for what is durable.
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
}

export interface OpenOptions {
  /** Milliseconds to wait for another process's write lock (CLI admin commands). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

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

  get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const st = this.statement(sql);
      // A stepped-but-unreset statement keeps its read snapshot open; in WAL mode that makes the
      // next write fail with SQLITE_BUSY once another process has written. Always reset.
      st.get(params, (err: Error | null, row: unknown) => {
        st.reset(() => (err ? reject(err) : resolve(row as T | undefined)));
      });
    });
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
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    const run = this.chain.then(async () => {
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
    const tx: Tx = {
      txId: ++this.txCounter,
      run: (sql, params) => this.run(sql, params),
      get: (sql, params) => this.get(sql, params),
      all: (sql, params) => this.all(sql, params),
    };
    try {
      const result = await fn(tx);
      await this.run('COMMIT');
      return result;
    } catch (e) {
      await this.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /** Resolves once every queued write has committed. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushScheduled) {
      await new Promise((r) => setImmediate(r));
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
