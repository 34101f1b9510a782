/**
 * How long a coordinator takes to start: spawn to "agents on port" on stderr (it listens), and
 * the CPU it spent by then (/proc). Each CLI given is started `--runs` times on one data dir,
 * alternating and with the order rotated, so that the machine's drift falls on both. The default
 * pair is the shipped bundle (dist/cli-bundle/main.js, scripts/bundle-cli.mjs) against the
 * unbundled build it is made from (dist/cli/main.js). A coordinator restart's reconnect storm
 * waits for this (bench/reconnect.ts prints it as "listening after").
 *
 *   node dist/bench/coordinator-start.js [--runs 8] [--state-dir DIR] [--cli A.js --cli B.js]
 *
 * --state-dir takes bench/reconnect's cached fleet (certs/ and data/ of an enrolled fleet) to
 * start on a database with thousands of agents; without it the data dir is fresh (no agents).
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { CLI, coordinatorListening, out } from './harness.js';
import { median, preciseCpuMs } from './proc-stats.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '8' }, 'state-dir': { type: 'string' }, cli: { type: 'string', multiple: true } } });
const RUNS = Number(args.runs);
const CLIS = (args.cli ?? [CLI, resolve(CLI, '..', '..', 'cli', 'main.js')]).map((c) => resolve(c));

/** One start: wall time to the listening line, and the process's CPU at that moment. */
async function startOnce(cli: string, certsDir: string, dataDir: string): Promise<{ wallMs: number; cpuMs: number }> {
  const t0 = performance.now();
  const c = spawn(process.execPath, [cli, 'coordinator', '--data-dir', dataDir, '--certs-dir', certsDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((r) => c.once('exit', r));
  try {
    // The CPU is read at once, while the process still runs.
    const { at } = await coordinatorListening(c);
    return { wallMs: at - t0, cpuMs: preciseCpuMs(c.pid as number) };
  } finally {
    c.kill('SIGKILL');
    await exited;
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-bench-start-'));
  try {
    const certsDir = join(dir, 'certs');
    const dataDir = join(dir, 'data');
    if (args['state-dir']) {
      await cp(join(args['state-dir'], 'certs'), certsDir, { recursive: true });
      await cp(join(args['state-dir'], 'data'), dataDir, { recursive: true });
    } else {
      await initCa({ certsDir });
      await (await openDataDir(dataDir)).close();
    }
    // One untimed start: migrations, keys made on first start, the page cache warmed for both.
    await startOnce(CLIS[0] as string, certsDir, dataDir);
    const figures = new Map(CLIS.map((c) => [c, { wall: [] as number[], cpu: [] as number[] }]));
    for (let r = 0; r < RUNS; r++) {
      const order = r % 2 === 0 ? CLIS : [...CLIS].reverse();
      for (const cli of order) {
        const f = await startOnce(cli, certsDir, dataDir);
        figures.get(cli)?.wall.push(f.wallMs);
        figures.get(cli)?.cpu.push(f.cpuMs);
      }
    }
    out(`# coordinator start-up, ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, load ${loadavg()[0]?.toFixed(2)} at the end, ${RUNS} starts each, ${args['state-dir'] ? `data from ${args['state-dir']}` : 'a fresh data dir'}`);
    for (const [cli, f] of figures) {
      const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
      out(`START ${cli}: spawn to listening median ${median(f.wall).toFixed(0)} ms (${range(f.wall)}), CPU by then median ${median(f.cpu).toFixed(0)} ms (${range(f.cpu)})`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
