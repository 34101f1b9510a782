/**
 * Where a single step's round trip goes: a coordinator under `node --cpu-prof` with one
 * simulated agent, N sequential ad-hoc steps (POST /api/v1/adhoc, then GET ?wait until it
 * ends), coordinator CPU and store commits per round trip, and a PROFILE-WINDOW line for
 * cpu-profile-summary.ts. With --runbook each round trip is a one-step runbook execution
 * (POST /api/v1/executions) instead of an ad-hoc step. With --trace-sql, the coordinator runs
 * with bench/sql-trace.ts preloaded and the SQL statements of the measured round trips are
 * counted (and the usual ones listed).
 *
 *   node dist/bench/rtt-profile.js [--n 200] [--warmup 20] [--runbook] [--profile DIR] [--trace-sql]
 */
import { parseArgs } from 'node:util';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { out, simulatedFleet, sleep, startBench } from './harness.js';
import { statementsIn } from './sql-trace.js';
import { contextSwitches, cpuMs, median, percentile, threadCpuDelta, threadCpuMs } from './proc-stats.js';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '200' }, warmup: { type: 'string', default: '20' }, runbook: { type: 'boolean', default: false }, profile: { type: 'string' }, 'trace-sql': { type: 'boolean', default: false } } });
const N = Number(args.n);
const WARMUP = Number(args.warmup);

async function main(): Promise<void> {
  const rbDir = await mkdtemp(join(tmpdir(), 'hr-bench-policy-'));
  await writeFile(join(rbDir, 'policy.yaml'), 'apiVersion: handrail/v1\nkind: Policy\nmetadata: { name: bench }\nspec:\n  rules:\n    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }\n');
  await writeFile(join(rbDir, 'one.yaml'), 'apiVersion: handrail/v1\nkind: Runbook\nmetadata: { id: bench-one, title: One step, owner: team-bench }\nspec:\n  targets: { selector: bench=true }\n  steps:\n    - { name: only, run: ["true"] }\n');
  const traceFile = args['trace-sql'] ? join(rbDir, 'sql-trace.jsonl') : undefined;
  if (traceFile) {
    // Inherited by the coordinator startBench spawns (this process's own statements are done by then).
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${join(dirname(fileURLToPath(import.meta.url)), 'sql-trace.js')}`;
    process.env.HANDRAIL_SQL_TRACE = traceFile;
  }
  const b = await startBench({ bootstrapUses: 5, coordinatorArgs: ['--runbooks-dir', rbDir], logLevel: 'warn', ...(args.profile ? { profileDir: args.profile } : {}) });
  const { sims } = await simulatedFleet(b, 1);
  await sleep(500);
  const agentId = (sims[0] as (typeof sims)[number]).id.agentId;
  const pid = b.coord.pid as number;
  let gets = 0;
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    const { executionId } = args.runbook
      ? await b.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'bench-one' })
      : await b.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'] });
    let v: { state: string };
    do {
      v = await b.api('GET', `/api/v1/executions/${executionId}?wait=30s`);
      gets++;
    } while (v.state === 'running');
    return performance.now() - t0;
  };
  // V8 optimises the request path only after some hundreds of round trips; a coordinator runs for
  // days, so --warmup 1500 shows the steady state and the default its first minutes.
  for (let i = 0; i < WARMUP; i++) await once();
  gets = 0;
  const k0 = await commits(b.url);
  const c0 = cpuMs(pid);
  const t0 = threadCpuMs(pid);
  const s0 = contextSwitches(pid);
  const w0 = process.hrtime.bigint() / 1000n;
  const wall0 = performance.timeOrigin + performance.now();
  const rtt: number[] = [];
  for (let i = 0; i < N; i++) rtt.push(await once());
  const cpu = cpuMs(pid) - c0;
  const threads = threadCpuDelta(threadCpuMs(pid), t0);
  const switches = (contextSwitches(pid) - s0) / N;
  const wall1 = performance.timeOrigin + performance.now();
  const k = (await commits(b.url)) - k0;
  if (args.profile) out(`PROFILE-WINDOW ${w0} ${process.hrtime.bigint() / 1000n}`);
  out(`RTT ${N} sequential ${args.runbook ? 'one-step runbook executions' : 'ad-hoc steps'} on one simulated agent: p50 ${percentile(rtt, 50).toFixed(1)} ms, p99 ${percentile(rtt, 99).toFixed(1)} ms, median ${median(rtt).toFixed(1)} ms (after ${WARMUP} warm-up round trips); coordinator CPU ${(cpu / N).toFixed(2)} ms per round trip; ${(gets / N).toFixed(2)} GETs and ${(k / N).toFixed(2)} store commits per round trip; load ${loadavg()[0]?.toFixed(1)}`);
  out(`coordinator threads over the ${N} round trips: ${threads}; ${switches.toFixed(1)} context switches per round trip`);
  for (const s of sims) s.close();
  b.coord.kill('SIGTERM');
  await new Promise((r) => (b.coord.exitCode !== null ? r(undefined) : b.coord.once('exit', r)));
  if (traceFile) {
    const lines = statementsIn(await readFile(traceFile, 'utf8'), wall0, wall1);
    const bySql = new Map<string, number>();
    for (const [, , sql] of lines) bySql.set(sql, (bySql.get(sql) ?? 0) + 1);
    out(`SQL statements: ${(lines.length / N).toFixed(2)} per round trip (${lines.length} over ${N})`);
    for (const [sql, n] of [...bySql].sort((x, y) => y[1] - x[1])) if (n >= N / 10) out(`  ${(n / N).toFixed(2)}  ${sql.slice(0, 120)}`);
  }
  process.exit(0);
}

/** Committed store transactions so far, from the coordinator's /metrics. */
async function commits(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^handrail_store_commits_total\{outcome="committed"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
