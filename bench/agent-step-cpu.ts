/**
 * One real agent process (as shipped, --lite-mode) against a real coordinator, running `true`
 * as ad-hoc steps one after another: the agent's CPU per step (/proc/PID/stat, user + system),
 * which other work on a shared machine disturbs far less than wall time. With --cpu-prof DIR the
 * agent writes a V8 CPU profile there when it stops (for `node --cpu-prof` reading of where its
 * per-step CPU goes).
 *
 *   npm run build && node dist/bench/agent-step-cpu.js [--steps 150] [--rounds 3] [--cpu-prof DIR]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { CLI, out, sleep, startBench } from './harness.js';
import { cpuMs, median } from './proc-stats.js';

const args = parseArgs({ options: { steps: { type: 'string', default: '150' }, rounds: { type: 'string', default: '3' }, 'cpu-prof': { type: 'string' } } }).values;
const steps = Number(args.steps);
const rounds = Number(args.rounds);
const prof = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];

const b = await startBench({ bootstrapUses: 10, logLevel: 'warn' });
out(`cores: ${cpus().length}, node ${process.version}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const agentArgs = ['--coordinator', b.address, '--token', b.bootstrap, '--ca', join(b.certsDir, 'ca.pem'), '--state-dir', join(b.dir, 'agent'), '--name', 'step-cpu', '--allow-adhoc', '--log-level', 'warn'];
const p: ChildProcess = spawn(process.execPath, [...prof, ...AGENT_NODE_FLAGS, CLI, 'agent', ...agentArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
let id: string | undefined;
for (let t = 0; t < 240 && !id; t++) {
  await sleep(500);
  const { agents } = await b.api<{ agents: Array<{ id: string; name: string; status: string }> }>('GET', '/api/v1/agents');
  id = agents.find((a) => a.name === 'step-cpu' && a.status === 'online')?.id;
}
if (!id) throw new Error('the agent did not come online');
// Warm up (first spawn, lazily loaded modules, JIT).
for (let i = 0; i < 10; i++) await b.runToEnd('/api/v1/adhoc', { agents: [id], argv: ['true'] });
const perStep: number[] = [];
const coordPerStep: number[] = [];
for (let r = 0; r < rounds; r++) {
  const c0 = cpuMs(p.pid as number);
  const k0 = cpuMs(b.coord.pid as number);
  for (let i = 0; i < steps; i++) {
    const run = await b.runToEnd('/api/v1/adhoc', { agents: [id], argv: ['true'] });
    if (run.view.state !== 'succeeded') throw new Error(`step ended ${run.view.state}`);
  }
  const c = (cpuMs(p.pid as number) - c0) / steps;
  const k = (cpuMs(b.coord.pid as number) - k0) / steps;
  perStep.push(c);
  coordPerStep.push(k);
  out(`round ${r + 1}: agent ${c.toFixed(2)} ms CPU per step, coordinator ${k.toFixed(2)} ms CPU per one-step execution (${steps} steps)`);
}
out(`AGENT STEP CPU: median ${median(perStep).toFixed(2)} ms per step (agent), ${median(coordPerStep).toFixed(2)} ms per execution (coordinator); load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
p.kill('SIGTERM');
await new Promise((res) => p.once('exit', res));
b.coord.kill('SIGTERM');
process.exit(0);
