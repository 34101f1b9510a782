/**
 * Output benchmark: one real agent streams a step's output to a real coordinator, which
 * stores it in SQLite. Prints MB/s end to end (step start to every byte stored and the signed
 * result recorded) and the peak RSS of both processes, sampled every 100 ms, to show that
 * backpressure keeps memory bounded.
 *
 * --without-output-indexes drops the step_output indexes the live event stream reads by
 * (step_output_seq, step_output_run_seq) before the coordinator starts: the same run without
 * them shows what they cost ingestion.
 *
 *   node dist/bench/output.js [--mb 200] [--runs 3] [--without-output-indexes]
 */
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { mb, median, rssBytes } from './proc-stats.js';
import { CLI, coordinatorListening } from './harness.js';

const { values: args } = parseArgs({ options: { mb: { type: 'string', default: '200' }, runs: { type: 'string', default: '3' }, 'without-output-indexes': { type: 'boolean', default: false } } });
const OUTPUT_INDEXES = ['step_output_seq', 'step_output_run_seq'];
const MB = Number(args.mb);
const out = (s: string): void => void process.stdout.write(s + '\n');

async function main(): Promise<void> {
  const indexes = args['without-output-indexes'] ? 'without the step_output indexes' : `with the step_output indexes (${OUTPUT_INDEXES.join(', ')})`;
  out(`# Handrail output benchmark — ${availableParallelism()} cores, ${MB} MB per run, ${indexes}`);
  const dir = await mkdtemp(join(tmpdir(), 'hr-out-'));
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  await initCa({ certsDir });
  const data = await openDataDir(dataDir);
  await data.users.add('bench', ['admins'], { kind: 'cli', id: 'bench' }, Date.now());
  const apiToken = (await data.users.issueToken('bench', 86_400_000, null, { kind: 'cli', id: 'bench' }, Date.now())).token;
  const bootstrap = (await data.tokens.create({ labels: {}, ttlMs: 600_000, uses: 1, namePattern: null, description: null, createdBy: 'bench' }, Date.now())).token;
  if (args['without-output-indexes']) for (const name of OUTPUT_INDEXES) await data.db.exec(`DROP INDEX ${name}`);
  await data.close();
  const coord = spawn(process.execPath, [CLI, 'coordinator', '--data-dir', dataDir, '--certs-dir', certsDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--max-output', String((MB + 1) * 1024 * 1024), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ports = await coordinatorListening(coord);
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI, 'agent', '--coordinator', `127.0.0.1:${ports.grpc}`, '--token', bootstrap, '--ca', join(certsDir, 'ca.pem'), '--state-dir', join(dir, 'agent'), '--name', 'out', '--allow-adhoc', '--log-level', 'warn'], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${ports.http}`;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  let agentId = '';
  while (!agentId) {
    const { agents } = await api<{ agents: Array<{ id: string; status: string }> }>('GET', '/api/v1/agents');
    agentId = agents.find((a) => a.status === 'online')?.id ?? '';
    if (!agentId) await new Promise((r) => setTimeout(r, 200));
  }
  const rates: number[] = [];
  for (let r = 0; r < Number(args.runs); r++) {
    let peakC = 0;
    let peakA = 0;
    const sampler = setInterval(() => {
      peakC = Math.max(peakC, rssBytes(coord.pid as number));
      peakA = Math.max(peakA, rssBytes(agent.pid as number));
    }, 100);
    const t0 = performance.now();
    const { executionId } = await api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['head', '-c', String(MB * 1024 * 1024), '/dev/urandom'], timeout: '10m', maxOutputBytes: (MB + 1) * 1024 * 1024 });
    let v: { state: string; steps: Array<{ stdoutBytes: number }> };
    do v = await api('GET', `/api/v1/executions/${executionId}?wait=60s`);
    while (v.state === 'running');
    const secs = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const stored = v.steps[0]?.stdoutBytes ?? 0;
    if (v.state !== 'succeeded' || stored !== MB * 1024 * 1024) throw new Error(`run ended ${v.state} with ${stored} bytes stored`);
    rates.push(MB / secs);
    out(`run ${r + 1}: ${MB} MB stored in ${secs.toFixed(2)} s = ${(MB / secs).toFixed(1)} MB/s; peak RSS coordinator ${mb(peakC)}, agent ${mb(peakA)}`);
  }
  out(`OUTPUT from one agent: median ${median(rates).toFixed(1)} MB/s over ${rates.length} runs, ${indexes} (random bytes, stored in SQLite, hashed and signed by the agent)`);
  agent.kill('SIGTERM');
  coord.kill('SIGTERM');
  setTimeout(() => process.exit(0), 500);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
