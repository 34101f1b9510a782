/**
 * A real agent process's idle footprint: enrolls one agent per V8 flag set against a real
 * coordinator, lets it settle, runs one step, idles, and prints RSS (and the heap parts) and CPU.
 * Run: npm run build && node dist/bench/agent-idle.js [--idle-seconds 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, out, sleep, startBench } from './harness.js';
import { cpuMs, mb, median, rssBytes } from './proc-stats.js';

const args = parseArgs({ options: { 'idle-seconds': { type: 'string', default: '20' }, rounds: { type: 'string', default: '3' } } }).values;
const idleS = Number(args['idle-seconds']);
const rounds = Number(args.rounds);

const FLAG_SETS: Record<string, string[]> = {
  'node defaults (handrail agent)': [],
  'as shipped (handrail-agent: --lite-mode)': [],
  '--lite-mode --max-semi-space-size=1': ['--lite-mode', '--max-semi-space-size=1'],
};

const b = await startBench({ bootstrapUses: 1000, logLevel: 'warn' });
out(`cores: ${(await import('node:os')).cpus().length}, node ${process.version}`);
const results = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const [name, flags] of Object.entries(FLAG_SETS)) {
    const shipped = name.startsWith('as shipped');
    const i = `${r}-${Object.keys(FLAG_SETS).indexOf(name)}`;
    const argv = [...flags, CLI, 'agent', '--coordinator', b.address, '--token', b.bootstrap, '--ca', join(b.certsDir, 'ca.pem'), '--state-dir', join(b.dir, `idle-${i}`), '--name', `idle-${i}`, '--allow-adhoc', '--log-level', 'warn'];
    const p: ChildProcess = shipped
      ? spawn(join(CLI, '..', '..', '..', 'bin', 'handrail-agent.js'), argv.slice(flags.length + 2), { stdio: 'ignore' })
      : spawn(process.execPath, argv, { stdio: 'ignore' });
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
    const rss = rssBytes(p.pid as number);
    results.set(name, [...(results.get(name) ?? []), rss]);
    cpu.set(name, [...(cpu.get(name) ?? []), (c / (idleS * 1000)) * 100]);
    out(`round ${r + 1} ${name}: RSS ${mb(rss)}, CPU ${c.toFixed(0)} ms over ${idleS} s`);
    p.kill('SIGTERM');
    await new Promise((res) => p.once('exit', res));
  }
}
out('');
for (const [name, xs] of results) out(`AGENT IDLE ${name}: median RSS ${mb(median(xs))}, median CPU ${median(cpu.get(name) ?? []).toFixed(2)}% of a core (${rounds} rounds, ${idleS} s idle after one step)`);
b.coord.kill('SIGTERM');
process.exit(0);
