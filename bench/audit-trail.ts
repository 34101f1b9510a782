/**
 * Audit trail benchmark: seeds N audit records (default 1,000,000: 200,000 executions × 5
 * records — requested, policy decision, step dispatched, agent result, completed — over a year,
 * plus logins) and their executions into a real SQLite store, then measures p50/p95 of the page
 * query the /audit page and GET /api/v1/audit/records make (AuditTrail.page), in process, for a
 * whole-trail reader and for a user who sees one team of five and one who sees only their own
 * executions, with each filter and a walk of cursor pages. Prints each query's plan
 * (EXPLAIN QUERY PLAN) and the process CPU time per query (the machine is shared: wall-clock
 * figures are noisy, CPU time less so). Records carry real payload bytes but placeholder hashes
 * and signatures: the page query reads and parses them, it does not verify them.
 *
 *   node dist/bench/audit-trail.js [--records 1000000] [--requests 50] [--runs 3] [--reuse DIR]
 */
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataDir } from '../coordinator/data-dir.js';
import { Database, type SqlValue } from '../coordinator/store/database.js';
import { AuditTrail } from '../coordinator/audit/audit-trail.js';
import { trailQuery } from '../coordinator/store/audit-trail-queries.js';
import type { TrailPageQuery } from '../coordinator/audit/trail-filter.js';
import type { AuditTrailScope } from '../coordinator/policy/visibility.js';
import { median, percentile } from './proc-stats.js';
import { prng, RowWriter } from './seed-rows.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    reuse: { type: 'string' },
  },
});
const N = Number(args.records);
const REQUESTS = Number(args.requests);
const RUNS = Number(args.runs);
const out = (s: string): void => void process.stdout.write(s + '\n');
const YEAR_MS = 365 * 86_400_000;
const TEAMS = ['a', 'b', 'c', 'd', 'e'];



interface Seeded {
  readonly t0: number;
  readonly ms: number;
  readonly sampleExecution: string;
  readonly ownUser: string;
}

async function seed(db: Database, now: number): Promise<Seeded> {
  const rnd = prng(8);
  const t0 = now - YEAR_MS;
  const started = performance.now();
  const executions = Math.floor(N / 5);
  let sampleExecution = '';
  await db.write(async (tx) => {
    const run = (sql: string, p: SqlValue[]): Promise<unknown> => tx.run(sql, p);
    const ex = new RowWriter(run, 'executions', ['id', 'kind', 'runbook_id', 'runbook_digest', 'requested_by', 'options_json', 'targets', 'state', 'created_at'], 500);
    const recs = new RowWriter(run, 'audit_records', ['seq', 'payload', 'hash', 'key_id', 'signature'], 500);
    const sig = Buffer.alloc(64, 1);
    const hash = 'ab'.repeat(32);
    let seq = 0;
    const rec = async (ts: number, type: string, code: string, actor: { kind: string; id: string }, data: object): Promise<void> => {
      seq++;
      const payload = Buffer.from(JSON.stringify({ v: 1, seq, ts: new Date(ts).toISOString(), type, code, actor, data, prev: hash, kid: 'audit-bench' }));
      await recs.add([seq, payload, hash, 'audit-bench', sig]);
    };
    for (let i = 0; i < executions; i++) {
      const team = TEAMS[Math.floor(rnd() * TEAMS.length)] as string;
      const rb = `rb-${team}-${1 + Math.floor(rnd() * 4)}`;
      const user = `${team}-user-${Math.floor(40 * rnd() * rnd())}`;
      const id = `exe-${i.toString(36).padStart(8, '0')}`;
      if (i === Math.floor(executions / 2)) sampleExecution = id;
      const at = Math.floor(t0 + (i * YEAR_MS) / executions);
      await ex.add([id, 'runbook', rb, 'ab'.repeat(32), user, '{"reason":"routine"}', 'bench=true', 'succeeded', at]);
      const agent = `agt-${Math.floor(rnd() * 100)}`;
      await rec(at, 'execution.requested', 'HR2001', { kind: 'user', id: user }, { executionId: id, kind: 'runbook', runbookId: rb, runbookDigest: 'ab'.repeat(32), options: { reason: 'routine' }, targets: 'bench=true' });
      await rec(at, 'policy.decided', 'HR2002', { kind: 'system', id: 'coordinator' }, { requestId: null, executionId: id, user, action: 'run', runbookId: rb, allowed: true, rule: 'bench/team', reason: 'allowed' });
      await rec(at + 5, 'step.dispatched', 'HR3001', { kind: 'system', id: 'coordinator' }, { executionId: id, stepRunId: `sr-${i}`, agentId: agent, name: 'look', argv: ['uptime'], script: null, env: {}, timeoutMs: 60000, notAfter: new Date(at + 60000).toISOString(), requestSha256: hash, keyId: 'dispatch-1', signature: 'c2ln' });
      await rec(at + 900, 'step.result', 'HR3003', { kind: 'agent', id: agent }, { executionId: id, stepRunId: `sr-${i}`, agentId: agent, status: 'succeeded', exitCode: 0, certificateSerial: '01', payloadType: 'application/vnd.handrail.step-result.v1+proto', payload: 'cGF5bG9hZA==', signature: 'c2ln' });
      await rec(at + 1000, 'execution.completed', 'HR2003', { kind: 'system', id: 'coordinator' }, { executionId: id, state: 'succeeded' });
    }
    // The rest: logins (records of no execution).
    while (seq < N) await rec(t0 + (seq / N) * YEAR_MS, 'login.succeeded', 'HR5006', { kind: 'user', id: 'a-user-0' }, { user: 'a-user-0', remote: '10.0.0.1', sessionId: 'ses-1', expiresAt: new Date(now).toISOString() });
    await ex.flush();
    await recs.flush();
    for (const t of TEAMS) for (let k = 1; k <= 4; k++) await tx.run('INSERT OR REPLACE INTO runbook_refs (id, owner, tags_json, updated_at) VALUES (?, ?, ?, ?)', [`rb-${t}-${k}`, `team-${t}`, '[]', now]);
  });
  await db.exec('ANALYZE');
  return { t0, ms: performance.now() - started, sampleExecution, ownUser: 'a-user-30' };
}

interface Case {
  readonly name: string;
  readonly q: Omit<TrailPageQuery, 'limit'>;
  readonly scope: AuditTrailScope;
  /** Walk this many pages through the cursor (1: the first page only). */
  readonly pages: number;
}

function cases(s: Seeded): Case[] {
  const all: AuditTrailScope = { all: true };
  const teamA: AuditTrailScope = { all: false, executions: { all: false, user: 'a-user-1', runbookIds: ['rb-a-1', 'rb-a-2', 'rb-a-3', 'rb-a-4'], adhoc: false } };
  const own: AuditTrailScope = { all: false, executions: { all: false, user: s.ownUser, runbookIds: [], adhoc: false } };
  const day = (d: number): { fromIso: string; toIso: string } => ({ fromIso: new Date(s.t0 + d * 86_400_000).toISOString(), toIso: new Date(s.t0 + (d + 1) * 86_400_000 - 1).toISOString() });
  return [
    { name: 'all: newest page', q: {}, scope: all, pages: 1 },
    { name: 'all: walk 20 pages', q: {}, scope: all, pages: 20 },
    { name: 'all: deep cursor (middle of the log)', q: { before: Math.floor(N / 2) }, scope: all, pages: 1 },
    { name: 'all: type=step.result', q: { type: 'step.result' }, scope: all, pages: 1 },
    { name: 'all: type=login.succeeded (rare-ish, old)', q: { type: 'login.succeeded' }, scope: all, pages: 1 },
    { name: 'all: actor=a-user-0', q: { actor: 'a-user-0' }, scope: all, pages: 1 },
    { name: 'all: execution=one', q: { executionId: s.sampleExecution }, scope: all, pages: 1 },
    { name: 'all: one day 200 days back', q: day(165), scope: all, pages: 1 },
    { name: 'all: one day + type', q: { ...day(165), type: 'step.result' }, scope: all, pages: 1 },
    { name: 'all: a 90-day range', q: { fromIso: day(100).fromIso, toIso: day(190).toIso }, scope: all, pages: 1 },
    { name: 'team a: newest page', q: {}, scope: teamA, pages: 1 },
    { name: 'team a: walk 20 pages', q: {}, scope: teamA, pages: 20 },
    { name: 'team a: type=execution.completed', q: { type: 'execution.completed' }, scope: teamA, pages: 1 },
    { name: 'team a: execution=one (another team: empty)', q: { executionId: s.sampleExecution }, scope: teamA, pages: 1 },
    { name: 'own only: newest page (sees few)', q: {}, scope: own, pages: 1 },
  ];
}

async function main(): Promise<void> {
  const dir = args.reuse ?? (await mkdtemp(join(tmpdir(), 'hr-bench-audit-trail-')));
  const now = Date.UTC(2026, 11, 1);
  const data = await openDataDir(join(dir, 'data'), () => now);
  out(`audit trail benchmark: ${N.toLocaleString('en')} records, ${availableParallelism()} cores, node ${process.version}, store ${dir}`);
  let s: Seeded;
  if (args.reuse) {
    const t0 = now - YEAR_MS;
    const mid = (await data.db.get<{ id: string }>('SELECT id FROM executions ORDER BY created_at LIMIT 1 OFFSET ?', [Math.floor(N / 10)]))?.id ?? '';
    s = { t0, ms: 0, sampleExecution: mid, ownUser: 'a-user-30' };
  } else {
    s = await seed(data.db, now);
    out(`seeded in ${(s.ms / 1000).toFixed(1)} s`);
  }
  // As the coordinator wires it: reads through a read-only connection.
  const reader = await Database.open(data.db.path, { readonly: true });
  const trail = new AuditTrail({ db: data.db, reader, audit: data.audit, caPem: () => '', now: () => now });
  out('');
  out('case | plan | rows | p50 ms | p95 ms | CPU ms/query');
  for (const c of cases(s)) {
    const planned = await trail.plan({ ...c.q, limit: 50 }, c.scope);
    const { sql, params } = trailQuery(planned ?? { ...c.q, limit: 50 }, c.scope);
    const plan = planned === null ? '(no record in the time range)' : (await data.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join('; ');
    const p50s: number[] = [];
    const p95s: number[] = [];
    const cpus: number[] = [];
    let rows = 0;
    for (let run = 0; run < RUNS; run++) {
      const times: number[] = [];
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < REQUESTS; i++) {
        const t = performance.now();
        let before = c.q.before;
        rows = 0;
        for (let p = 0; p < c.pages; p++) {
          const page = await trail.page({ ...c.q, ...(before !== undefined ? { before } : {}), limit: 50 }, c.scope);
          rows += page.records.length;
          if (page.next === null) break;
          before = page.next;
        }
        times.push(performance.now() - t);
      }
      const cpu = process.cpuUsage(cpu0);
      cpus.push((cpu.user + cpu.system) / 1000 / REQUESTS);
      p50s.push(percentile(times, 50));
      p95s.push(percentile(times, 95));
    }
    out(`${c.name} | ${plan} | ${rows} | ${median(p50s).toFixed(2)} | ${median(p95s).toFixed(2)} | ${median(cpus).toFixed(2)}`);
  }
  await reader.close();
  await data.close();
  out(`(medians of ${RUNS} runs of ${REQUESTS} requests each; "walk" rows are 20 pages per request)`);
}

await main();
