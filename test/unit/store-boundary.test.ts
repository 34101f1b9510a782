/**
 * One owner of the store: SQL lives only in coordinator/store/. Everything else calls its query
 * modules with domain values, so that batching writes, caching and a second store
 * implementation (PostgreSQL for several coordinators) each have one place to change. This
 * reads every production source file and fails on SQL text or raw row queueing outside it;
 * the tests that sit beside their code (`*.test.ts` under web/) are not production and may
 * seed rows as test/ does.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PRODUCTION = ['agent', 'cli', 'coordinator', 'core', 'proto', 'server', 'web'];
const STORE = 'coordinator/store/';
/** A test beside the code it tests (web/pages/catalog/catalog.test.ts): not shipped, not production. */
const TEST_FILE = /\.test\.tsx?$/;

/** SQL statements as they appear in string literals, and the transaction's raw row writers. */
const SQL = [
  /\bSELECT\s+(\*|DISTINCT\b|[a-z_][\w.]*\s*(,|\bAS\b|\bFROM\b|\())/i,
  /\bINSERT\s+(OR\s+\w+\s+)?INTO\s+\w/i,
  /\bUPDATE\s+\w+\s+SET\b/i,
  /\bDELETE\s+FROM\s+\w/i,
  /\b(CREATE|DROP|ALTER)\s+(TABLE|INDEX|VIEW|TRIGGER)\b/i,
  /\bPRAGMA\s+\w/i,
  /\b(BEGIN|COMMIT|ROLLBACK)\b\s*['"`]/,
  /\.queue(Insert|Update)\(/,
];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'gen' ? [] : sources(path);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') && !TEST_FILE.test(e.name) ? [path] : [];
  });
}

function sqlOutsideStore(): string[] {
  const found: string[] = [];
  for (const file of PRODUCTION.flatMap(sources)) {
    const rel = relative(ROOT, join(ROOT, file)).split('\\').join('/');
    if (rel.startsWith(STORE)) continue;
    readFileSync(join(ROOT, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        // Comments may name statements ("the INSERT fails"): only code counts.
        const code = line.replace(/^\s*(\/\/|\*|\/\*).*$/, '');
        if (SQL.some((re) => re.test(code))) found.push(`${rel}:${i + 1}: ${line.trim().slice(0, 120)}`);
      });
  }
  return found;
}

describe('the store boundary', () => {
  it('has no SQL outside coordinator/store/', () => {
    expect(sqlOutsideStore()).toEqual([]);
  });

  it('would see SQL if it were there (the patterns match real statements)', () => {
    const samples = [
      "db.all('SELECT * FROM step_runs WHERE id = ?')",
      "tx.get('SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1')",
      'q.get(`SELECT max(seq) AS m FROM step_output`)',
      "tx.run('INSERT OR REPLACE INTO audit_checkpoints (seq) VALUES (?)')",
      "tx.run('UPDATE agents SET connected = 0')",
      "tx.run('DELETE FROM web_sessions WHERE expires_at < ?')",
      "db.exec('PRAGMA journal_mode = WAL')",
      "tx.queueUpdate('step_runs', { id }, { state })",
    ];
    for (const s of samples) expect(SQL.some((re) => re.test(s)), s).toBe(true);
    for (const prose of ['the INSERT fails on the primary key', 'select the agents to update', 'Update the runbook, then select it']) expect(SQL.some((re) => re.test(prose)), prose).toBe(false);
  });
});
