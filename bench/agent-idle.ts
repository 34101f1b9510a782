/**
 * A real agent process's idle footprint: enrolls one agent per variant against a real
 * coordinator, lets it settle, runs one step, idles, and prints RSS and CPU; then restarts it
 * (enrolled already) and times the start until it says it is running; and times a bare
 * `--help` (module loading alone). Variants: the unbundled dist agent under Node's defaults
 * and as shipped (--lite-mode), and the esbuild bundle fleet hosts install
 * (dist/agent-bundle/handrail-agent.mjs, run as its systemd unit runs it). Prints the bundle size.
 * Run: npm run build && node dist/bench/agent-idle.js [--idle-seconds 20] [--rounds 3]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { CLI, out, sleep, startBench } from './harness.js';
import { cpuMs, mb, median, rssBytes } from './proc-stats.js';

const args = parseArgs({ options: { 'idle-seconds': { type: 'string', default: '20' }, rounds: { type: 'string', default: '3' } } }).values;
const idleS = Number(args['idle-seconds']);
const rounds = Number(args.rounds);
const BUNDLE = join(CLI, '..', '..', 'agent-bundle', 'handrail-agent.mjs');

/** node argv before the agent's own arguments. */
const VARIANTS: Record<string, string[]> = {
  'dist, node defaults (handrail agent)': [CLI, 'agent'],
  'dist, as shipped (--lite-mode)': [...AGENT_NODE_FLAGS, CLI, 'agent'],
  'bundle, as installed (--lite-mode)': [...AGENT_NODE_FLAGS, BUNDLE],
};

const b = await startBench({ bootstrapUses: 1000, logLevel: 'warn' });
out(`cores: ${cpus().length}, node ${process.version}`);
out(`bundle: ${BUNDLE} ${(statSync(BUNDLE).size / 1024).toFixed(0)} KiB`);
const rss = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
const start = new Map<string, number[]>();
const version = new Map<string, number[]>();
const push = (m: Map<string, number[]>, k: string, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);

/** Spawns the agent and resolves with the time until it prints that it is running. */
function startAgent(prefix: string[], agentArgs: string[]): Promise<{ p: ChildProcess; ms: number }> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [...prefix, ...agentArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    p.stderr?.on('data', (d: Buffer) => {
      text += d.toString();
      if (/handrail agent \S+ running/.test(text)) resolve({ p, ms: performance.now() - t0 });
    });
    p.once('exit', (code) => reject(new Error(`agent exited ${code}: ${text.slice(-500)}`)));
  });
}

for (let r = 0; r < rounds; r++) {
  for (const [name, prefix] of Object.entries(VARIANTS)) {
    const i = `${r}-${Object.keys(VARIANTS).indexOf(name)}`;
    const agentArgs = ['--coordinator', b.address, '--token', b.bootstrap, '--ca', join(b.certsDir, 'ca.pem'), '--state-dir', join(b.dir, `idle-${i}`), '--name', `idle-${i}`, '--allow-adhoc', '--log-level', 'warn'];
    let { p } = await startAgent(prefix, agentArgs);
    let id: string | undefined;
    for (let t = 0; t < 120 && !id; t++) {
      await sleep(500);
      const { agents } = await b.api<{ agents: Array<{ id: string; name: string; status: string }> }>('GET', '/api/v1/agents');
      id = agents.find((a) => a.name === `idle-${i}` && a.status === 'online')?.id;
    }
    if (!id) throw new Error(`agent ${name} did not come online`);
    const run = await b.runToEnd('/api/v1/adhoc', { agents: [id], argv: ['true'] });
    if (run.view.state !== 'succeeded') throw new Error(`step ended ${run.view.state}`);
    await sleep(2000);
    const c0 = cpuMs(p.pid as number);
    await sleep(idleS * 1000);
    const c = cpuMs(p.pid as number) - c0;
    const bytes = rssBytes(p.pid as number);
    push(rss, name, bytes);
    push(cpu, name, (c / (idleS * 1000)) * 100);
    p.kill('SIGTERM');
    await new Promise((res) => p.once('exit', res));
    // A restart of the enrolled agent: what a host pays at every boot or upgrade.
    const restarted = await startAgent(prefix, agentArgs);
    p = restarted.p;
    push(start, name, restarted.ms);
    p.kill('SIGTERM');
    await new Promise((res) => p.once('exit', res));
    const t0 = performance.now();
    spawnSync(process.execPath, [...prefix, '--help'], { stdio: 'ignore' });
    push(version, name, performance.now() - t0);
    out(`round ${r + 1} ${name}: RSS ${mb(bytes)}, CPU ${c.toFixed(0)} ms over ${idleS} s, restart to running ${restarted.ms.toFixed(0)} ms`);
  }
}
out('');
for (const name of Object.keys(VARIANTS)) {
  out(
    `AGENT IDLE ${name}: median RSS ${mb(median(rss.get(name) ?? []))}, median CPU ${median(cpu.get(name) ?? []).toFixed(2)}% of a core, ` +
      `median restart to running ${median(start.get(name) ?? []).toFixed(0)} ms, median --help ${median(version.get(name) ?? []).toFixed(0)} ms ` +
      `(${rounds} rounds, ${idleS} s idle after one step)`,
  );
}
b.coord.kill('SIGTERM');
process.exit(0);
