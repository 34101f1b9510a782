/**
 * History benchmark (issue 14): seeds N executions (default 1,000,000) with their nodes and
 * step runs — 20 runbooks of 5 teams, 200 users with a skewed mix, ad-hoc runs, every state, a
 * year of times — into a real SQLite store in one transaction of multi-row prepared
 * statements, then measures p50/p95 of
 *  - the engine query the history page calls (listExecutions, coordinator/store/execution-queries.ts), in process, and
 *  - GET /api/v1/executions on a real coordinator over HTTP,
 * for an admin and for a user whose policy sees one team, with filters (runbook, user, state,
 * a time position, their combinations) and a walk of cursor pages. Prints each query's plan
 * (EXPLAIN QUERY PLAN), flagging full scans. Figures are medians over --runs rounds.
 *
 *   node dist/bench/history.js [--executions 1000000] [--requests 100] [--runs 3] [--drop-index NAME]… [--reuse DIR]
 *
 * --drop-index NAME measures twice: without that index, then with it created again as migrated
 * (the before and after of a new index), on the same seeded store (a fresh temp dir).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { Database, type SqlValue } from '../coordinator/store/database.js';
import { CLI, coordinatorListening } from './harness.js';
import { prng, RowWriter } from './seed-rows.js';
import { MIGRATIONS } from '../coordinator/store/migrations.js';
import { historyQuery, listExecutions, type ExecutionListQuery } from '../coordinator/store/execution-queries.js';
import { executionScope, validatePolicy, type Policy, type RunbookRef } from '../coordinator/policy/policy.js';
import type { ExecutionScope } from '../coordinator/policy/visibility.js';
import { median, percentile } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    executions: { type: 'string', default: '1000000' },
    requests: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    'drop-index': { type: 'string', multiple: true, default: [] },
    /** A bench dir a previous run seeded (its path is printed): measure again without seeding. */
    reuse: { type: 'string' },
  },
});
const N = Number(args.executions);
const REQUESTS = Number(args.requests);
const RUNS = Number(args.runs);
const out = (s: string): void => void process.stdout.write(s + '\n');

// ------------------------------------------------------------------ the mix

const TEAMS = ['a', 'b', 'c', 'd', 'e'];
const RUNBOOKS = TEAMS.flatMap((t) => [1, 2, 3, 4].map((i) => ({ id: `rb-${t}-${i}`, team: t, steps: i })));
const USERS_PER_TEAM = 40;
const AGENTS = 100;
const YEAR_MS = 365 * 86_400_000;

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const idOf = (prefix: string, rnd: () => number): string => {
  let s = `${prefix}-`;
  for (let i = 0; i < 16; i++) s += ALPHABET[Math.floor(rnd() * 32)];
  return s;
};

const POLICY = {
  apiVersion: 'handrail/v1',
  kind: 'Policy',
  metadata: { name: 'bench' },
  spec: {
    rules: [
      { name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] },
      ...TEAMS.map((t) => ({ name: `team-${t}`, effect: 'allow', actions: ['run', 'view', 'cancel'], subjects: [`group:team-${t}`], runbooks: { tags: [`team-${t}`] } })),
    ],
  },
};

function runbookYaml(): string {
  return RUNBOOKS.map((rb) =>
    stringify({
      apiVersion: 'handrail/v1',
      kind: 'Runbook',
      metadata: { id: rb.id, title: `Bench ${rb.id}`, owner: `team-${rb.team}`, tags: [`team-${rb.team}`] },
      spec: { targets: { selector: 'bench=true' }, steps: Array.from({ length: rb.steps }, (_, i) => ({ name: `step ${i + 1}`, run: ['true'] })) },
    }),
  ).join('---\n');
}

/** States of finished executions, weighted. */
const FINISHED: ReadonlyArray<[string, number]> = [['succeeded', 0.86], ['failed', 0.08], ['canceled', 0.04], ['timed_out', 0.02]];
const pickState = (r: number): string => {
  let acc = 0;
  for (const [s, w] of FINISHED) if (r < (acc += w)) return s;
  return 'succeeded';
};

// ------------------------------------------------------------------ seeding


interface Seeded {
  readonly ms: number;
  readonly executions: number;
  readonly nodes: number;
  readonly steps: number;
  readonly t0: number;
  readonly busiestUser: string;
  readonly quietUser: string;
}

async function seed(db: Database, now: number): Promise<Seeded> {
  const rnd = prng(14);
  const t0 = now - YEAR_MS;
  const perUser = new Map<string, number>();
  const started = performance.now();
  const agents = Array.from({ length: AGENTS }, (_, i) => ({ id: idOf('agt', rnd), name: `host-${i}` }));
  const counts = await db.write(async (tx) => {
    const run = (sql: string, params: SqlValue[]): Promise<unknown> => tx.run(sql, params);
    const ex = new RowWriter(run, 'executions', ['id', 'kind', 'runbook_id', 'runbook_digest', 'requested_by', 'options_json', 'targets', 'state', 'reason', 'state_reason', 'created_at', 'started_at', 'finished_at', 'owner_team'], 400);
    const nodes = new RowWriter(run, 'execution_nodes', ['execution_id', 'agent_id', 'node_index', 'agent_name', 'state', 'started_at', 'finished_at'], 1000, ex);
    const steps = new RowWriter(run, 'step_runs', ['id', 'execution_id', 'agent_id', 'step_index', 'name', 'state', 'dispatched_at', 'finished_at', 'exit_code', 'stdout_bytes', 'stderr_bytes', 'error'], 1000, ex);
    for (let i = 0; i < N; i++) {
      const id = idOf('exe', rnd);
      const created = Math.floor(t0 + (i * YEAR_MS) / N + rnd() * (YEAR_MS / N));
      const adhoc = rnd() < 0.02;
      const rb = RUNBOOKS[Math.floor(rnd() * RUNBOOKS.length)]!;
      // A few users do most of the running: index skewed towards 0.
      const user = adhoc ? `ops-admin-${Math.floor(rnd() * 5)}` : `${rb.team}-user-${Math.floor(USERS_PER_TEAM * rnd() * rnd())}`;
      perUser.set(user, (perUser.get(user) ?? 0) + 1);
      // The newest few hundred are still active.
      const active = i >= N - 300;
      const state = active ? (['running', 'awaiting_approval', 'queued'][i % 3] as string) : pickState(rnd());
      const finished = active ? null : created + 1000 + Math.floor(rnd() * 120_000);
      const startedAt = state === 'awaiting_approval' || state === 'queued' ? null : created + 20;
      const reason = rnd() < 0.3 ? `ticket INC-${Math.floor(rnd() * 100_000)}` : null;
      const stateReason = state === 'failed' ? 'step 1 failed on host-3: exit status 1' : state === 'canceled' ? `canceled by ${user}` : state === 'timed_out' ? 'timed out after 60s' : null;
      const nodeCount = rnd() < 0.6 ? 1 : rnd() < 0.6 ? 2 : 3 + Math.floor(rnd() * 3);
      const first = Math.floor(rnd() * AGENTS);
      const picked = Array.from({ length: nodeCount }, (_, k) => agents[(first + k) % AGENTS]!);
      const stepCount = adhoc ? 1 : rb.steps;
      await ex.add([
        id, adhoc ? 'adhoc' : 'runbook', adhoc ? null : rb.id, adhoc ? null : 'ab'.repeat(32), user,
        adhoc ? '{}' : JSON.stringify({ reason: reason ?? 'routine' }), adhoc ? picked.map((a) => a.id).join(',') : 'bench=true', state, reason, stateReason, created, startedAt, finished, adhoc ? null : `team-${rb.team}`,
      ]);
      for (let n = 0; n < nodeCount; n++) {
        const a = picked[n]!;
        const nodeState = active ? 'running' : state;
        await nodes.add([id, a.id, n, a.name, nodeState, startedAt, finished]);
        if (startedAt === null) continue;
        for (let s = 0; s < stepCount; s++) {
          const last = s === stepCount - 1;
          const stepState = active ? (last ? 'running' : 'succeeded') : state === 'succeeded' || !last ? 'succeeded' : state;
          const exit = stepState === 'succeeded' ? 0 : stepState === 'failed' ? 1 : null;
          await steps.add([idOf('sr', rnd), id, a.id, s, adhoc ? 'adhoc' : `step ${s + 1}`, stepState, startedAt + s * 100, active && last ? null : startedAt + s * 100 + 90, exit, Math.floor(rnd() * 4000), rnd() < 0.1 ? 120 : 0, stepState === 'failed' ? 'exit status 1' : null]);
        }
      }
    }
    await ex.flush();
    await nodes.flush();
    await steps.flush();
    for (const rb of RUNBOOKS) await tx.run('INSERT OR REPLACE INTO runbook_refs (id, owner, tags_json, updated_at) VALUES (?, ?, ?, ?)', [rb.id, `team-${rb.team}`, JSON.stringify([`team-${rb.team}`]), now]);
    for (const rb of RUNBOOKS) await tx.run('INSERT OR IGNORE INTO runbook_teams (team, runbook_id) VALUES (?, ?)', [`team-${rb.team}`, rb.id]);
    return { executions: ex.inserted, nodes: nodes.inserted, steps: steps.inserted };
  });
  const byCount = [...perUser.entries()].filter(([u]) => !u.startsWith('ops-')).sort((x, y) => y[1] - x[1]);
  return { ms: performance.now() - started, ...counts, t0, busiestUser: byCount[0]![0], quietUser: byCount.at(-1)![0] };
}

// ------------------------------------------------------------------ the queries

interface Case {
  readonly name: string;
  readonly q: Omit<ExecutionListQuery, 'limit'> & { limit?: number };
  /** Follow `next` this many pages, timing each. */
  readonly pages?: number;
}

function cases(s: Seeded, forTeamA: boolean): Case[] {
  const mid = Math.floor(s.t0 + YEAR_MS / 2);
  const rb = forTeamA ? 'rb-a-2' : 'rb-c-3';
  const user = forTeamA ? 'a-user-0' : s.busiestUser;
  return [
    { name: 'newest page', q: {} },
    { name: `runbook=${rb}`, q: { runbookId: rb } },
    { name: `user=${user} (busy)`, q: { requestedBy: user } },
    { name: `user=${forTeamA ? 'a-user-39' : s.quietUser} (quiet)`, q: { requestedBy: forTeamA ? 'a-user-39' : s.quietUser } },
    { name: 'state=failed', q: { state: 'failed' } },
    { name: 'state=timed_out (2%)', q: { state: 'timed_out' } },
    { name: 'state=running (none: the coordinator fails what it cannot resume)', q: { state: 'running' } },
    { name: `runbook=${rb}&state=failed`, q: { runbookId: rb, state: 'failed' } },
    { name: `runbook=${rb}&user=${user}`, q: { runbookId: rb, requestedBy: user } },
    { name: 'six months back (before=T)', q: { before: `${mid}:zzzzzzzzzzzzzzzzzzzz` } },
    { name: `six months back, runbook=${rb}&state=timed_out`, q: { before: `${mid}:zzzzzzzzzzzzzzzzzzzz`, runbookId: rb, state: 'timed_out' } },
    { name: 'limit=500', q: { limit: 500 } },
    { name: '20 cursor pages', q: {}, pages: 20 },
    { name: `20 cursor pages, state=failed`, q: { state: 'failed' }, pages: 20 },
    // Team and time filters (issue 8): a team is one range per runbook it owned.
    { name: 'team=team-a', q: { team: 'team-a' } },
    { name: 'team=team-c (not theirs, for a team-a reader)', q: { team: 'team-c' } },
    { name: 'team=team-a&state=timed_out', q: { team: 'team-a', state: 'timed_out' } },
    { name: `team=team-a&user=${user}`, q: { team: 'team-a', requestedBy: user } },
    { name: 'from=T-1d&to=T (one day, six months back)', q: { fromMs: mid - 86_400_000, toMs: mid } },
    { name: 'from=T (the newer half)', q: { fromMs: mid } },
    { name: 'to=T-300d (the oldest weeks)', q: { toMs: s.t0 + 65 * 86_400_000 } },
    { name: 'team=team-a, one day six months back', q: { team: 'team-a', fromMs: mid - 86_400_000, toMs: mid } },
    { name: 'team=team-a&state=failed, one week', q: { team: 'team-a', state: 'failed', fromMs: mid - 7 * 86_400_000, toMs: mid } },
    { name: '20 cursor pages, team=team-a, from=T', q: { team: 'team-a', fromMs: mid }, pages: 20 },
  ];
}

const toQueryString = (q: Case['q']): string => {
  const p = new URLSearchParams();
  if (q.state) p.set('state', q.state);
  if (q.runbookId) p.set('runbook', q.runbookId);
  if (q.requestedBy) p.set('user', q.requestedBy);
  if (q.team) p.set('team', q.team);
  if (q.fromMs !== undefined) p.set('from', new Date(q.fromMs).toISOString());
  if (q.toMs !== undefined) p.set('to', new Date(q.toMs).toISOString());
  if (q.before) p.set('before', q.before);
  if (q.limit) p.set('limit', String(q.limit));
  const s = p.toString();
  return s ? `?${s}` : '';
};

/** Times `REQUESTS` calls of a case (a cursor walk counts each page). */
async function timeCase(c: Case, call: (q: ExecutionListQuery) => Promise<{ next: string | null; n: number }>): Promise<number[]> {
  const times: number[] = [];
  const rounds = c.pages ? Math.max(1, Math.floor(REQUESTS / c.pages)) : REQUESTS;
  for (let r = 0; r < rounds; r++) {
    let q: ExecutionListQuery = { limit: 50, ...c.q };
    for (let p = 0; p < (c.pages ?? 1); p++) {
      const t = performance.now();
      const page = await call(q);
      times.push(performance.now() - t);
      if (!page.next) break;
      q = { ...q, before: page.next };
    }
  }
  return times;
}

async function plans(db: Database, list: readonly Case[], scope: ExecutionScope, who: string): Promise<void> {
  for (const c of list) {
    const teamIds = c.q.team ? (await db.all<{ runbook_id: string }>('SELECT runbook_id FROM runbook_teams WHERE team = ?', [c.q.team])).map((r) => r.runbook_id) : [];
    const { sql, params } = historyQuery({ limit: 50, ...c.q }, scope, teamIds);
    const rows = await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params);
    const details = [...new Set(rows.map((r) => r.detail))];
    const scans = details.filter((d) => /^SCAN (executions|\w+)(?! USING)/.test(d) && !/USING (COVERING )?INDEX/.test(d) && !/SCAN \(subquery|SCAN SUBQUERY/.test(d));
    out(`  plan ${who} ${c.name}: ${details.join(' | ')}${scans.length ? '   <-- FULL SCAN' : ''}`);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  out(`# Handrail history benchmark — ${availableParallelism()} cores, ${args.reuse ? 'a reused store' : `${N.toLocaleString('en')} executions`}, ${REQUESTS} timed calls per case, ${RUNS} rounds`);
  const dir = args.reuse ?? (await mkdtemp(join(tmpdir(), 'hr-history-')));
  out(`bench dir ${dir}`);
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  const runbooksDir = join(dir, 'runbooks');
  const now = Date.now();
  const actor = { kind: 'cli', id: 'bench' } as const;
  if (!args.reuse) {
    await initCa({ certsDir });
    await mkdir(runbooksDir);
    await writeFile(join(runbooksDir, 'runbooks.yaml'), runbookYaml());
    await writeFile(join(runbooksDir, 'policy.yaml'), stringify(POLICY));
  }
  const opening = performance.now();
  const data = await openDataDir(dataDir);
  // A reused store seeded by an older build is migrated here: this is what an upgrade costs.
  if (args.reuse) out(`opened the store (migrating it if it was older) in ${((performance.now() - opening) / 1000).toFixed(1)} s`);
  if (!args.reuse) {
    await data.users.add('root', ['admins'], actor, now);
    await data.users.add('a-user-0', ['team-a'], actor, now);
  }
  const adminToken = (await data.users.issueToken('root', 86_400_000, null, actor, now)).token;
  const teamToken = (await data.users.issueToken('a-user-0', 86_400_000, null, actor, now)).token;
  let seeded: Seeded;
  if (args.reuse) {
    const t = await data.db.get<{ t0: number; n: number }>('SELECT min(created_at) AS t0, count(*) AS n FROM executions');
    const users = await data.db.all<{ u: string }>("SELECT requested_by AS u FROM executions WHERE kind = 'runbook' GROUP BY requested_by ORDER BY count(*) DESC");
    seeded = { ms: 0, executions: t?.n ?? 0, nodes: 0, steps: 0, t0: t?.t0 ?? now - YEAR_MS, busiestUser: users[0]?.u ?? 'a-user-0', quietUser: users.at(-1)?.u ?? 'a-user-39' };
    out(`reusing ${seeded.executions.toLocaleString('en')} executions seeded before`);
  } else {
    // The seed alone: one transaction this size goes fastest with a rollback journal and no
    // fsync (the coordinator opens the store in WAL mode again).
    await data.db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;');
    seeded = await seed(data.db, now);
    out(`seeded ${seeded.executions.toLocaleString('en')} executions, ${seeded.nodes.toLocaleString('en')} nodes, ${seeded.steps.toLocaleString('en')} step runs in ${(seeded.ms / 1000).toFixed(1)} s (one transaction) = ${Math.round((seeded.executions + seeded.nodes + seeded.steps) / (seeded.ms / 1000)).toLocaleString('en')} rows/s`);
  }
  // Indexes measured both ways: dropped for a first phase, then created again as migrated.
  const compared: Array<{ name: string; sql: string }> = [];
  for (const name of args['drop-index']) {
    const sql = new RegExp(`CREATE INDEX ${name} ON [^;]+`).exec(MIGRATIONS.join('\n'))?.[0];
    if (!sql) throw new Error(`no index ${name} in the migrations`);
    compared.push({ name, sql });
    await data.db.exec(`DROP INDEX IF EXISTS ${name}`);
  }
  await data.close();

  const policy = validatePolicy(POLICY);
  if (!policy.policy) throw new Error(JSON.stringify(policy.issues));
  const policies: Policy[] = [policy.policy];
  const refs: RunbookRef[] = RUNBOOKS.map((rb) => ({ id: rb.id, owner: `team-${rb.team}`, tags: [`team-${rb.team}`] }));
  const readers = [
    { who: 'admin', token: adminToken, scope: executionScope(policies, { user: 'root', groups: ['admins'] }, refs), cases: cases(seeded, false) },
    { who: 'team-a user', token: teamToken, scope: executionScope(policies, { user: 'a-user-0', groups: ['team-a'] }, refs), cases: cases(seeded, true) },
  ];

  const db = await Database.open(join(dataDir, 'handrail.db'));

  const coord = spawn(process.execPath, [CLI, 'coordinator', '--data-dir', dataDir, '--certs-dir', certsDir, '--runbooks-dir', runbooksDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = (await coordinatorListening(coord)).http;
  const rest = (token: string) => async (q: ExecutionListQuery): Promise<{ next: string | null; n: number }> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/executions${toQueryString(q)}`, { headers: { authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`GET executions: ${r.status} ${await r.text()}`);
    const body = (await r.json()) as { executions: unknown[]; next: string | null };
    return { next: body.next, n: body.executions.length };
  };

  const phases = compared.length ? [`without ${compared.map((c) => c.name).join(', ')}`, `with ${compared.map((c) => c.name).join(', ')}`] : ['as migrated'];
  for (const [phase, label] of phases.entries()) {
    if (phase === 1) {
      const t = performance.now();
      for (const c of compared) await db.exec(c.sql);
      out(`\ncreated ${compared.map((c) => c.name).join(', ')} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    out(`\n## ${label}`);
    for (const r of readers) await plans(db, r.cases, r.scope, r.who);
    await measure(label);
  }

  async function measure(label: string): Promise<void> {
    // per reader, case and layer: p50 and p95 of each round
    const results = new Map<string, { p50: number[]; p95: number[]; rows: number }>();
    const cpuPerCall = new Map<string, number[]>();
    for (let round = 0; round < RUNS; round++) {
      for (const r of readers) {
        for (const c of r.cases) {
          let rows = 0;
          let calls = 0;
          const cpu0 = process.cpuUsage();
          const engine = await timeCase(c, async (q) => {
            const page = await listExecutions(db, q, r.scope);
            rows = page.executions.length;
            calls++;
            return { next: page.next, n: rows };
          });
          // Process CPU (SQLite runs on libuv's pool, counted too): far less noisy than wall time on a shared machine.
          const cpu = process.cpuUsage(cpu0);
          const cpuKey = `${r.who}\t${c.name}`;
          cpuPerCall.set(cpuKey, [...(cpuPerCall.get(cpuKey) ?? []), (cpu.user + cpu.system) / 1000 / calls]);
          const http = await timeCase(c, rest(r.token));
          for (const [layer, t] of [['engine', engine], ['REST', http]] as const) {
            const key = `${r.who}\t${layer}\t${c.name}`;
            const e = results.get(key) ?? { p50: [], p95: [], rows };
            e.p50.push(percentile(t, 50));
            e.p95.push(percentile(t, 95));
            results.set(key, e);
          }
        }
      }
    }
    out('');
    out('reader       layer   p50 ms  p95 ms  cpu ms  rows  case   (cpu: process CPU per call, engine layer)');
    let worst = 0;
    for (const [key, e] of results) {
      const [who, layer, name] = key.split('\t') as [string, string, string];
      const p95 = median(e.p95);
      worst = Math.max(worst, p95);
      const cpu = layer === 'engine' ? median(cpuPerCall.get(`${who}\t${name}`) ?? [NaN]).toFixed(2) : '';
      out(`${who.padEnd(12)} ${layer.padEnd(6)} ${median(e.p50).toFixed(2).padStart(7)} ${p95.toFixed(2).padStart(7)} ${cpu.padStart(7)} ${String(e.rows).padStart(5)}  ${name}${p95 > 50 ? '   <-- over 50 ms' : ''}`);
    }
    out(`HISTORY over ${seeded.executions.toLocaleString('en')} executions, ${label}: worst p95 ${worst.toFixed(1)} ms (target ≤ 50 ms; medians of ${RUNS} rounds, ${availableParallelism()} cores)`);
  }
  await db.close();
  coord.kill('SIGTERM');
  await new Promise((r) => coord.once('exit', r));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
