/**
 * One real agent process (as shipped, --lite-mode) against a real coordinator, running `true`
 * as ad-hoc steps one after another: the agent's CPU per step (/proc/PID/stat, user + system),
 * which other work on a shared machine disturbs far less than wall time. With --cpu-prof DIR the
 * agent writes a V8 CPU profile there when it stops (for `node --cpu-prof` reading of where its
 * per-step CPU goes).
 *
 *   npm run build && node dist/bench/agent-step-cpu.js [--steps 150] [--rounds 3] [--cpu-prof DIR [--cpu-prof-interval US]]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { CLI, out, sleep, startBench } from './harness.js';
import { contextSwitches, cpuMs, median, preciseCpuMs, threadCpuMs } from './proc-stats.js';

const args = parseArgs({ options: { steps: { type: 'string', default: '150' }, rounds: { type: 'string', default: '3' }, 'cpu-prof': { type: 'string' }, 'cpu-prof-interval': { type: 'string', default: '1000' } } }).values;
const steps = Number(args.steps);
const rounds = Number(args.rounds);
const prof = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof'], '--cpu-prof-interval', args['cpu-prof-interval']] : [];

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
// The first steps run cold (code not yet compiled, modules loaded lazily), as in bench/vs-ssh
// where each agent runs only a few: timed one by one (all threads, nanosecond counters).
const agentPid = p.pid as number;
const cold: number[] = [];
const coldMain: number[] = [];
for (let i = 0; i < 10; i++) {
  await sleep(200); // let the agent settle (heartbeats, GC) so the step's CPU stands alone
  const c0 = preciseCpuMs(agentPid);
  const m0 = preciseCpuMs(agentPid, 'main');
  const t0 = process.hrtime.bigint() / 1000n;
  await b.runToEnd('/api/v1/adhoc', { agents: [id], argv: ['true'] });
  cold.push(preciseCpuMs(agentPid) - c0);
  coldMain.push(preciseCpuMs(agentPid, 'main') - m0);
  // The step's time span on the monotonic clock the agent's profile uses (cpu-profile-summary --windows).
  if (prof.length) out(`cold step ${i + 1}: PROFILE-WINDOW ${t0} ${process.hrtime.bigint() / 1000n}`);
}
out(`cold: step 1 ${cold[0]?.toFixed(2)} ms CPU, step 2 ${cold[1]?.toFixed(2)}, step 3 ${cold[2]?.toFixed(2)}, steps 4-10 median ${median(cold.slice(3)).toFixed(2)} (agent, all threads)`);
out(`cold, main thread only: step 1 ${coldMain[0]?.toFixed(2)} ms CPU, step 2 ${coldMain[1]?.toFixed(2)}, step 3 ${coldMain[2]?.toFixed(2)}, steps 4-10 median ${median(coldMain.slice(3)).toFixed(2)}`);
const perStep: number[] = [];
const coordPerStep: number[] = [];
for (let r = 0; r < rounds; r++) {
  const c0 = cpuMs(p.pid as number);
  const t0 = threadCpuMs(p.pid as number);
  const x0 = contextSwitches(p.pid as number);
  const k0 = cpuMs(b.coord.pid as number);
  for (let i = 0; i < steps; i++) {
    const run = await b.runToEnd('/api/v1/adhoc', { agents: [id], argv: ['true'] });
    if (run.view.state !== 'succeeded') throw new Error(`step ended ${run.view.state}`);
  }
  const c = (cpuMs(p.pid as number) - c0) / steps;
  const k = (cpuMs(b.coord.pid as number) - k0) / steps;
  const t = threadCpuMs(p.pid as number);
  const mainMs = ((t['main'] ?? 0) - (t0['main'] ?? 0)) / steps;
  const switches = (contextSwitches(p.pid as number) - x0) / steps;
  perStep.push(c);
  coordPerStep.push(k);
  out(`round ${r + 1}: agent ${c.toFixed(2)} ms CPU per step (main thread ${mainMs.toFixed(2)}, other threads ${(c - mainMs).toFixed(2)}; ${switches.toFixed(1)} context switches), coordinator ${k.toFixed(2)} ms CPU per one-step execution (${steps} steps)`);
}
out(`AGENT STEP CPU: median ${median(perStep).toFixed(2)} ms per step (agent), ${median(coordPerStep).toFixed(2)} ms per execution (coordinator); load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
p.kill('SIGTERM');
await new Promise((res) => p.once('exit', res));
b.coord.kill('SIGTERM');
process.exit(0);
