/**
 * Counts the SQL statements a process runs (each is one trip through libuv's thread pool).
 * Preloaded into a coordinator with `--import`: it wraps node-sqlite3's statement and database
 * methods and, when the process exits, writes one line per statement to $HANDRAIL_SQL_TRACE
 * (JSON: wall-clock ms from performance.timeOrigin, method, SQL text cut to 200 characters).
 * rtt-profile's --trace-sql uses it; a bench tool only, never loaded by the product.
 *
 *   NODE_OPTIONS="--import ./dist/bench/sql-trace.js" HANDRAIL_SQL_TRACE=/tmp/t.jsonl handrail coordinator …
 */
import { writeFileSync } from 'node:fs';
import sqlite3 from 'sqlite3';

export type TraceLine = [at: number, method: string, sql: string];

/** The statements in [from, to] (ms on the wall clock of performance.timeOrigin + now). */
export function statementsIn(jsonl: string, from: number, to: number): TraceLine[] {
  return jsonl
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as TraceLine)
    .filter(([at]) => at >= from && at <= to);
}

const file = process.env.HANDRAIL_SQL_TRACE;
if (file) {
  const lines: string[] = [];
  const sqlOf = new WeakMap<object, string>();
  const note = (method: string, sql: string): void => {
    lines.push(JSON.stringify([performance.timeOrigin + performance.now(), method, sql.replace(/\s+/g, ' ').slice(0, 200)]));
  };
  type Fn = (this: object, ...a: unknown[]) => unknown;
  const D = sqlite3.Database.prototype as unknown as Record<string, Fn>;
  const S = sqlite3.Statement.prototype as unknown as Record<string, Fn>;
  const prepare = D.prepare as Fn;
  D.prepare = function (this: object, ...a: unknown[]) {
    const st = prepare.apply(this, a) as object;
    sqlOf.set(st, String(a[0]));
    return st;
  };
  for (const m of ['run', 'all', 'get', 'each']) {
    const orig = S[m] as Fn;
    S[m] = function (this: object, ...a: unknown[]) {
      note(m, sqlOf.get(this) ?? '?');
      return orig.apply(this, a);
    };
  }
  for (const m of ['exec', 'run', 'all', 'get']) {
    const orig = D[m] as Fn;
    D[m] = function (this: object, ...a: unknown[]) {
      note(`db.${m}`, String(a[0]));
      return orig.apply(this, a);
    };
  }
  process.on('exit', () => writeFileSync(file, lines.join('\n') + '\n'));
}
