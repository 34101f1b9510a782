/**
 * The execution page of a 100-host execution (issue 8): a real coordinator runs a runbook of
 * --steps steps on --hosts simulated agents (real mTLS streams, real signed envelopes and
 * results; each step prints --lines lines of output, stored as a real agent's would be), then
 * this measures p50/p95 of
 *  - GET /executions/ID, the portal's server-rendered page (with a session cookie), and
 *  - GET /api/v1/executions/ID, the API's view of the same execution,
 * over --requests sequential requests per round, --runs rounds, and prints the medians of the
 * rounds, the page's size and the coordinator's CPU time per request (/proc: steadier than wall
 * time on a shared machine).
 *
 *   node dist/bench/execution-page.js [--hosts 100] [--steps 4] [--lines 20] [--requests 50] [--runs 3]
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { out, simulatedFleet, startBench } from './harness.js';
import { portalSession } from './portal-session.js';
import { cpuMs, median, percentile } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100' },
    steps: { type: 'string', default: '4' },
    lines: { type: 'string', default: '20' },
    requests: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
  },
});
const HOSTS = Number(args.hosts);
const STEPS = Number(args.steps);
const LINES = Number(args.lines);
const REQUESTS = Number(args.requests);
const RUNS = Number(args.runs);
const PASSWORD = 'bench-portal-password';

/** What a simulated host prints for a step: LINES lines of ~70 bytes, like a diagnostics step. */
function stepOutput(stepId: string): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++) lines.push(`${stepId.slice(-8)} line ${String(i + 1).padStart(3)}: load 0.42 0.37 0.31, mem 812/2048 MB, disk 61%`);
  return Buffer.from(lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  out(`# Handrail execution page benchmark — ${availableParallelism()} cores, ${HOSTS} hosts × ${STEPS} steps × ${LINES} lines of output, ${REQUESTS} requests × ${RUNS} rounds`);
  const runbooks = join(process.env['TMPDIR'] ?? '/tmp', `hr-bench-runbooks-${process.pid}`);
  await mkdir(runbooks, { recursive: true });
  await writeFile(
    join(runbooks, 'bench.yaml'),
    [
      stringify({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'bench' }, spec: { rules: [{ name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] }] } }),
      stringify({
        apiVersion: 'handrail/v1',
        kind: 'Runbook',
        metadata: { id: 'wide', title: 'A step on every host', owner: 'team-bench', tags: ['bench'] },
        spec: { targets: { selector: 'bench=true' }, strategy: 'parallel', concurrency: '100%', maxErrors: 0, steps: Array.from({ length: STEPS }, (_, i) => ({ name: `step ${i + 1}`, run: ['uptime'] })) },
      }),
    ].join('---\n'),
  );
  const b = await startBench({ bootstrapUses: HOSTS, portalPassword: PASSWORD, logLevel: 'warn', coordinatorArgs: ['--runbooks-dir', runbooks] });
  const { sims } = await simulatedFleet(b, HOSTS, stepOutput);
  try {
    const run = await b.runToEnd('/api/v1/executions', { runbook: 'wide', reason: 'bench' });
    if (run.view.state !== 'succeeded') throw new Error(`the execution ended ${run.view.state}`);
    const id = (await b.api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions?limit=1')).executions[0]?.id as string;
    out(`execution ${id}: ${run.view.steps.length} step runs, ${(run.ms / 1000).toFixed(1)} s to run`);
    const cookie = await portalSession(b.url, 'bench', PASSWORD);
    const targets = [
      { name: `GET /executions/${id} (HTML page)`, get: () => fetch(`${b.url}/executions/${id}`, { headers: { cookie } }) },
      { name: `GET /api/v1/executions/${id}`, get: () => fetch(`${b.url}/api/v1/executions/${id}`, { headers: { authorization: `Bearer ${b.apiToken}` } }) },
    ];
    const pid = b.coord.pid as number;
    for (const t of targets) {
      const first = await t.get();
      const body = await first.text();
      if (first.status !== 200) throw new Error(`${t.name}: ${first.status} ${body.slice(0, 300)}`);
      const rounds: Array<{ p50: number; p95: number; cpu: number }> = [];
      for (let r = 0; r < RUNS; r++) {
        const ms: number[] = [];
        const cpu0 = cpuMs(pid);
        for (let i = 0; i < REQUESTS; i++) {
          const t0 = performance.now();
          const res = await t.get();
          await res.arrayBuffer();
          ms.push(performance.now() - t0);
        }
        rounds.push({ p50: percentile(ms, 50), p95: percentile(ms, 95), cpu: (cpuMs(pid) - cpu0) / REQUESTS });
      }
      out(`${t.name}: ${(body.length / 1024).toFixed(0)} KiB; p50 ${median(rounds.map((x) => x.p50)).toFixed(1)} ms, p95 ${median(rounds.map((x) => x.p95)).toFixed(1)} ms, coordinator CPU ${median(rounds.map((x) => x.cpu)).toFixed(1)} ms/request (medians of ${RUNS} rounds: p50 ${rounds.map((x) => x.p50.toFixed(1)).join(' / ')})`);
    }
  } finally {
    for (const s of sims) s.close();
    b.coord.kill('SIGTERM');
    await rm(runbooks, { recursive: true, force: true });
  }
}

await main();
