/**
 * The floors under `handrail run` of a one-step runbook on N agents sharing one machine (issue
 * 10, bench/vs-ssh): what starting `true` costs a Node process the way the agent's runner starts
 * it (child_process.spawn: no shell, its own process group, stdin ignored, stdout and stderr
 * piped) — the parent's CPU (fork, the copy-on-write faults after it, the JS around it) and the
 * child's (exec, the dynamic loader, `true`, exit) — and what starting Node costs (`node -e 0`,
 * the CLI's `--version`). Run it under the agent's flags to match the agent:
 *
 *   node --lite-mode --no-expose-wasm dist/bench/spawn-floor.js [--spawns 200] [--starts 10]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CLI, out } from './harness.js';
import { median } from './proc-stats.js';

const { values: args } = parseArgs({ options: { spawns: { type: 'string', default: '200' }, starts: { type: 'string', default: '10' } } });
const SPAWNS = Number(args.spawns);
const STARTS = Number(args.starts);

/** This process's reaped children's CPU (cutime + cstime), in ms: 10 ms ticks, fine over many children. */
function childrenCpuMs(): number {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}
const selfCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const minorFaults = (): number => {
  const s = readFileSync('/proc/self/stat', 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
};

function run(cmd: string, argv: readonly string[], piped: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, argv, { stdio: ['ignore', piped ? 'pipe' : 'ignore', piped ? 'pipe' : 'ignore'], detached: true, env: { PATH: '/usr/bin:/bin' } });
    c.stdout?.resume();
    c.stderr?.resume();
    c.once('error', reject);
    c.once('exit', () => resolve());
  });
}

out(`# spawn-floor: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version} ${process.execArgv.join(' ')}, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
await run('true', [], true); // Node sets its child-process machinery up on the first spawn
for (const piped of [true, false]) {
  const s0 = selfCpuMs();
  const c0 = childrenCpuMs();
  const f0 = minorFaults();
  const w0 = performance.now();
  for (let i = 0; i < SPAWNS; i++) await run('true', [], piped);
  const n = SPAWNS;
  out(
    `spawn \`true\` (${piped ? 'stdout/stderr piped, as a step' : 'stdio ignored'}), one after another, per spawn: this process ${((selfCpuMs() - s0) / n).toFixed(2)} ms CPU ` +
      `(${((minorFaults() - f0) / n).toFixed(0)} minor faults), the child ${((childrenCpuMs() - c0) / n).toFixed(2)} ms CPU, wall ${((performance.now() - w0) / n).toFixed(2)} ms`,
  );
}
for (const [label, argv] of [
  ['node -e 0', ['-e', '0']],
  ['handrail --version', [CLI, '--version']],
] as const) {
  const walls: number[] = [];
  const c0 = childrenCpuMs();
  for (let i = 0; i < STARTS; i++) {
    const w0 = performance.now();
    await run(process.execPath, argv, true);
    walls.push(performance.now() - w0);
  }
  out(`\`${label}\`: wall median ${median(walls).toFixed(0)} ms, CPU ${((childrenCpuMs() - c0) / STARTS).toFixed(0)} ms per start (mean of ${STARTS})`);
}
