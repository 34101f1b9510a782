/**
 * Engine benchmark (issue 3): a rolling runbook of 3 steps over N1 simulated agents at
 * concurrency C, and a parallel one-step runbook over N2, through the real coordinator
 * (policy, options, scheduler, signed dispatch, stored and audited results). Prints wall time,
 * engine overhead per node-step and store writes per second.
 *
 *   node dist/bench/engine.js [--rolling-agents 1000] [--concurrency 50] [--parallel-agents 2000] [--rounds 3] [--warmup 0] [--profile DIR]
 *   node --experimental-websocket dist/bench/engine.js … --alloc-profile FILE   (allocations per node-step, by function)
 *
 * Each round also prints the store commits it took (the coordinator's store_commits_total): one
 * fsync and one WAL rewrite of the touched pages each, so fewer per node-step is cheaper; the
 * execution's timeline from its audit records (request, steps dispatched, results stored, end)
 * and how long after the last result this script's long-poll saw the end; the coordinator's GC
 * pauses; and this process's own CPU. The simulated agents live in this process, on one thread:
 * their verify and RSA signature per step bound how fast results can come back, and on a small
 * machine they share its cores with the coordinator.
 *
 * With --profile the coordinator runs under `node --cpu-prof`; each measured round prints a
 * `PROFILE-WINDOW <startUs> <endUs>` line on the monotonic clock (the profile's timebase), so
 * the summary can leave out enrollment and connection setup.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Database } from '../coordinator/store/database.js';
import { cpuMs, median, threadCpuDelta, threadCpuMs } from './proc-stats.js';
import { freePort, out, simulatedFleet, sleep, startBench } from './harness.js';
import { allocationsByFunction, HeapSampler, type SamplingHeapProfile } from './heap-sampling.js';

const { values: args } = parseArgs({
  options: {
    'rolling-agents': { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '50' },
    'parallel-agents': { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    /** Rounds run first and not counted: the JIT compiles the hot path in the first rounds (steady state after). */
    warmup: { type: 'string', default: '0' },
    /** Directory for the coordinator's --cpu-prof output (see bench/cpu-profile-summary.ts). */
    profile: { type: 'string' },
    /**
     * Write the coordinator's allocations over each runbook's measured rounds to FILE.RUNBOOK.heapprofile
     * (V8's sampling heap profiler, collected objects included: bench/heap-sampling.ts) and print
     * the top functions in bytes per node-step. Needs `node --experimental-websocket` on Node 20.
     */
    'alloc-profile': { type: 'string' },
  },
});
const N1 = Number(args['rolling-agents']);
const N2 = Number(args['parallel-agents']);
const C = Number(args.concurrency);

const runbooks = (c: number): string => `apiVersion: handrail/v1
kind: Runbook
metadata: { id: bench-rolling, title: Rolling three steps, owner: team-bench, tags: [bench] }
spec:
  targets: { selector: bench=true }
  strategy: rolling
  concurrency: ${c}
  maxErrors: 0
  steps:
    - { name: one, run: ["true"] }
    - { name: two, run: ["true"] }
    - { name: three, run: ["true"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: bench-parallel, title: Parallel one step, owner: team-bench, tags: [bench] }
spec:
  targets: { selector: bench=true }
  strategy: parallel
  concurrency: 100%
  steps:
    - { name: only, run: ["true"] }
---
apiVersion: handrail/v1
kind: Policy
metadata: { name: bench }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
`;

async function storeWrites(dataDir: string): Promise<number> {
  // Rows the engine wrote: step runs, node updates and audit records (each a durable write).
  const db = await Database.open(join(dataDir, 'handrail.db'), { readonly: true });
  const a = await db.get<{ n: number }>('SELECT (SELECT count(*) FROM step_runs) + (SELECT count(*) FROM audit_records) + (SELECT count(*) FROM execution_nodes) AS n');
  await db.close();
  return a?.n ?? 0;
}

/** The last audit record's sequence number. */
async function lastAuditSeq(dataDir: string): Promise<number> {
  const db = await Database.open(join(dataDir, 'handrail.db'), { readonly: true });
  const r = await db.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM audit_records');
  await db.close();
  return r?.seq ?? 0;
}

/**
 * The execution's timeline from its audit records (ms, coordinator clock): requested, the first
 * and last step dispatched and result stored, and its end. The records of one commit share a
 * time, so "first dispatched" is when the first dispatch batch committed.
 */
interface Timeline {
  readonly requested: number;
  readonly dispatched: readonly [number, number];
  readonly results: readonly [number, number];
  readonly ended: number;
}

async function timeline(dataDir: string, afterSeq: number, executionId: string): Promise<Timeline> {
  const db = await Database.open(join(dataDir, 'handrail.db'), { readonly: true });
  const rows = await db.all<{ payload: Buffer }>('SELECT payload FROM audit_records WHERE seq > ?', [afterSeq]);
  await db.close();
  const span = (): [number, number] => [Number.NaN, Number.NaN];
  const t = { requested: Number.NaN, dispatched: span(), results: span(), ended: Number.NaN };
  const widen = (s: [number, number], at: number): void => {
    if (!(at >= s[0])) s[0] = at;
    if (!(at <= s[1])) s[1] = at;
  };
  for (const r of rows) {
    const rec = JSON.parse(r.payload.toString('utf8')) as { ts: string; type: string; data: { executionId?: string } };
    if (rec.data.executionId !== executionId) continue;
    const at = Date.parse(rec.ts);
    if (rec.type === 'execution.requested') t.requested = at;
    else if (rec.type === 'step.dispatched') widen(t.dispatched, at);
    else if (rec.type === 'step.result') widen(t.results, at);
    else if (rec.type === 'execution.completed') t.ended = at;
  }
  return t;
}

interface Scrape {
  /** Committed store transactions so far. */
  readonly commits: number;
  /** V8 garbage collections so far, by kind (minor: scavenges; major: mark-compact): count and seconds. */
  readonly gc: ReadonlyMap<string, { count: number; seconds: number }>;
}

/** The coordinator's own counters from its /metrics (prom-client's nodejs_gc_duration_seconds for the GC). */
async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^handrail_store_commits_total\{outcome="committed"\} (\d+)/m.exec(text);
  const gc = new Map<string, { count: number; seconds: number }>();
  for (const g of text.matchAll(/^nodejs_gc_duration_seconds_(sum|count)\{kind="(\w+)"\} ([\d.e+-]+)/gm)) {
    const kind = g[2] as string;
    const e = gc.get(kind) ?? { count: 0, seconds: 0 };
    if (g[1] === 'sum') e.seconds = Number(g[3]);
    else e.count = Number(g[3]);
    gc.set(kind, e);
  }
  return { commits: m ? Number(m[1]) : Number.NaN, gc };
}

/** "minor 12 in 85 ms, major 1 in 20 ms": the collections between two scrapes. */
function gcBetween(a: Scrape, b: Scrape): { text: string; ms: number } {
  let ms = 0;
  const parts: string[] = [];
  for (const [kind, e] of b.gc) {
    const before = a.gc.get(kind) ?? { count: 0, seconds: 0 };
    const n = e.count - before.count;
    if (n === 0) continue;
    const kindMs = (e.seconds - before.seconds) * 1000;
    ms += kindMs;
    parts.push(`${kind} ${n} in ${kindMs.toFixed(0)} ms`);
  }
  return { text: parts.length > 0 ? parts.join(', ') : 'none', ms };
}

/** Writes the profile and prints its largest allocators, in bytes per node-step (sampled: estimates). */
async function reportAllocations(profile: SamplingHeapProfile, file: string, nodeSteps: number): Promise<void> {
  await writeFile(file, JSON.stringify(profile));
  const a = allocationsByFunction(profile);
  const perStep = (bytes: number): string => `${(bytes / nodeSteps / 1024).toFixed(2)} KiB`;
  out(`ALLOCATIONS over ${nodeSteps} node-steps: ${perStep(a.total)} per node-step (sampled; collected objects included), profile in ${file}`);
  out('  self, per node-step:');
  for (const [fn, bytes] of a.self.slice(0, 12)) out(`    ${perStep(bytes).padStart(10)}  ${fn}`);
  out('  inclusive (with what it called), per node-step:');
  for (const [fn, bytes] of a.inclusive.filter(([fn]) => !fn.startsWith('(root)')).slice(0, 20)) out(`    ${perStep(bytes).padStart(10)}  ${fn}`);
}

async function main(): Promise<void> {
  const cannotSample = args['alloc-profile'] ? HeapSampler.unavailable() : null;
  if (cannotSample) {
    process.stderr.write(`engine: --alloc-profile: ${cannotSample}\n`);
    process.exit(2);
  }
  out(`# Handrail engine benchmark — ${availableParallelism()} cores, Node ${process.version}`);
  out('# simulated agents: real mTLS streams, real envelope verification and RSA-signed results, no process spawned');
  const max = Math.max(N1, N2);
  const rbDir = join(tmpdir(), `hr-bench-runbooks-${process.pid}`);
  await mkdir(rbDir, { recursive: true });
  await writeFile(join(rbDir, 'bench.yaml'), runbooks(C));
  const allocFile = args['alloc-profile'];
  const b = await startBench({
    bootstrapUses: max + 10,
    coordinatorArgs: ['--runbooks-dir', rbDir],
    logLevel: 'warn',
    ...(args.profile ? { profileDir: args.profile } : {}),
    ...(allocFile ? { inspectPort: await freePort() } : {}),
  });
  const sampler = allocFile ? await HeapSampler.connect(b.inspectPort as number) : undefined;
  const { sims } = await simulatedFleet(b, max);
  await sleep(1000);
  out(`${max} simulated agents connected`);
  const pid = b.coord.pid as number;

  for (const [name, runbook, n, nodeSteps] of [
    ['rolling, 3 steps', 'bench-rolling', N1, N1 * 3],
    ['parallel, 1 step', 'bench-parallel', N2, N2],
  ] as const) {
    if (n === 0) continue; // --rolling-agents 0: the parallel runbook only
    const targets = n === max ? undefined : `name in (${sims.slice(0, n).map((_, i) => `sim-${i}`).join(',')})`;
    const walls: number[] = [];
    const overheads: number[] = [];
    const writes: number[] = [];
    const commitCounts: number[] = [];
    const toEnd: number[] = [];
    const toSeen: number[] = [];
    const gcMs: number[] = [];
    const warmup = Number(args.warmup);
    for (let r = -warmup; r < Number(args.rounds); r++) {
      if (r < 0) {
        const { view } = await b.runToEnd('/api/v1/executions', { runbook, ...(targets ? { targets } : {}) });
        if (view.state !== 'succeeded') throw new Error(`${runbook} ended ${view.state}`);
        continue;
      }
      if (r === 0) await sampler?.start();
      const m0 = await scrape(b.url);
      const w0 = await storeWrites(b.dataDir);
      const seq0 = await lastAuditSeq(b.dataDir);
      const c0 = cpuMs(pid);
      const t0 = threadCpuMs(pid);
      const d0 = process.cpuUsage();
      const w0us = process.hrtime.bigint() / 1000n;
      const { ms, view, executionId, endSeenAt } = await b.runToEnd('/api/v1/executions', { runbook, ...(targets ? { targets } : {}) });
      const cpu = cpuMs(pid) - c0;
      const d = process.cpuUsage(d0);
      const driverMs = (d.user + d.system) / 1000;
      const threads = threadCpuDelta(threadCpuMs(pid), t0);
      if (args.profile) out(`PROFILE-WINDOW ${w0us} ${process.hrtime.bigint() / 1000n}`);
      const w1 = await storeWrites(b.dataDir);
      const m1 = await scrape(b.url);
      const k = m1.commits - m0.commits;
      const gc = gcBetween(m0, m1);
      gcMs.push(gc.ms);
      if (view.state !== 'succeeded') throw new Error(`${runbook} ended ${view.state}`);
      const times = await timeline(b.dataDir, seq0, executionId);
      walls.push(ms);
      overheads.push((cpu / nodeSteps) * 1000);
      writes.push(((w1 - w0) / ms) * 1000);
      commitCounts.push(k);
      toEnd.push(times.ended - times.results[1]);
      toSeen.push(endSeenAt - times.results[1]);
      out(`${name} over ${n} agents${runbook === 'bench-rolling' ? ` at concurrency ${C}` : ''}: ${ms.toFixed(0)} ms wall, coordinator CPU ${cpu.toFixed(0)} ms = ${((cpu / nodeSteps) * 1000).toFixed(0)} µs per node-step, ${(w1 - w0)} rows written = ${(((w1 - w0) / ms) * 1000).toFixed(0)} rows/s, ${k} commits = ${(nodeSteps / k).toFixed(1)} node-steps per commit, timeline from the request: steps dispatched +${times.dispatched[0] - times.requested}..+${times.dispatched[1] - times.requested} ms, results stored +${times.results[0] - times.requested}..+${times.results[1] - times.requested} ms, end recorded +${times.ended - times.requested} ms, seen by this script ${endSeenAt - times.results[1]} ms after the last result, coordinator GC pauses on its main thread: ${gc.text} (threads: ${threads}); this process (the simulated agents: verify, RSA-sign, gRPC client) ${driverMs.toFixed(0)} ms CPU, so both need ${((cpu + driverMs) / availableParallelism()).toFixed(0)} ms of wall on ${availableParallelism()} cores`);
    }
    if (warmup > 0) out(`(after ${warmup} warm-up round${warmup > 1 ? 's' : ''}, not counted)`);
    if (sampler && allocFile) await reportAllocations(await sampler.stop(), `${allocFile}.${runbook}.heapprofile`, nodeSteps * Number(args.rounds));
    out(`ENGINE ${name} over ${n} agents: median wall ${median(walls).toFixed(0)} ms, median coordinator CPU per node-step ${median(overheads).toFixed(0)} µs, median store writes ${median(writes).toFixed(0)} rows/s, median commits ${median(commitCounts)}, median last result stored -> end recorded ${median(toEnd).toFixed(0)} ms, -> end seen ${median(toSeen).toFixed(0)} ms, median GC pauses ${median(gcMs).toFixed(0)} ms per round`);
  }
  for (const s of sims) s.close();
  sampler?.close();
  b.coord.kill('SIGTERM');
  // The profile is written as the coordinator exits.
  await new Promise((r) => (b.coord.exitCode !== null ? r(undefined) : b.coord.once('exit', r)));
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
