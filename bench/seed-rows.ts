/**
 * Seeding helpers the store benchmarks share: a seeded PRNG, so that every run writes the same
 * data, and multi-row INSERTs batched per statement.
 */
import type { SqlValue } from '../coordinator/store/database.js';

/** mulberry32: a fixed seed gives the same sequence on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Multi-row INSERTs into one table: one statement per `perStatement` rows. */
export class RowWriter {
  private rows: SqlValue[] = [];
  private count = 0;
  inserted = 0;
  constructor(
    private readonly run: (sql: string, params: SqlValue[]) => Promise<unknown>,
    private readonly table: string,
    private readonly columns: readonly string[],
    private readonly perStatement: number,
    /** Rows this table's rows refer to (foreign keys): written first. */
    private readonly after?: RowWriter,
  ) {}
  async add(values: readonly SqlValue[]): Promise<void> {
    this.rows.push(...values);
    if (++this.count === this.perStatement) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.count === 0) return;
    await this.after?.flush();
    const one = `(${this.columns.map(() => '?').join(', ')})`;
    await this.run(`INSERT INTO ${this.table} (${this.columns.join(', ')}) VALUES ${Array.from({ length: this.count }, () => one).join(', ')}`, this.rows);
    this.inserted += this.count;
    this.rows = [];
    this.count = 0;
  }
}
