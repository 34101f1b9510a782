/**
 * Output throughput of agent/runner.ts: a child writing a lot of output (`head -c N /dev/zero`)
 * through runStep, everything captured and hashed, into
 *   - a no-op sink (the runner's own ceiling),
 *   - an async sink that resolves on the next turn (the backpressure path at full speed),
 *   - the same with a 1 MiB cap (the read-count-drop path),
 *   - a slow async sink (~10 MB/s): throughput follows the sink and memory stays flat.
 * Prints MB/s (1 MB = 2^20 bytes) per run and the median; peak RSS growth over the baseline
 * (sampled every 10 ms); the child's peak lead over the sink (bytes it had written, from
 * /proc/PID/io, minus bytes delivered: what sits in the pipe and the runner); and, for the slow
 * sink, peak live external memory after a forced GC every 100 ms (what is retained, not garbage).
 *
 *   node dist/bench/runner-throughput.js [--mb 500] [--slow-mb 50] [--slow-mbps 10] [--runs 3]
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { runStep, type OutputSink } from '../agent/runner.js';

const { values: args } = parseArgs({
  options: {
    mb: { type: 'string', default: '500' },
    'slow-mb': { type: 'string', default: '50' },
    'slow-mbps': { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
  },
});
const MIB = 1024 * 1024;
const RUNS = Number(args.runs);

// A bench, not the agent: a real GC call makes "retained" distinguishable from "not yet collected".
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sample {
  readonly mbPerS: number;
  readonly rssGrowth: number;
  readonly maxLead: number;
  /** Only with forcedGc. */
  readonly retainedGrowth: number;
}

/** Bytes the process has written so far (all fds), or 0 once it is gone. */
function written(pid: number): number {
  try {
    const m = /^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function measure(totalMb: number, sink: OutputSink, maxOutputBytes: number, forcedGc: boolean): Promise<Sample> {
  gc();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakRetained = base.external + base.arrayBuffers;
  let delivered = 0;
  let maxLead = 0;
  let pid = 0;
  const counting: OutputSink = (stream, offset, data) => {
    delivered += data.length;
    return sink(stream, offset, data);
  };
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    // Only meaningful while everything is captured (with a cap, the rest is dropped, not delivered).
    if (pid && maxOutputBytes >= totalMb * MIB) maxLead = Math.max(maxLead, written(pid) - delivered);
  }, 10);
  const gcSampler = forcedGc
    ? setInterval(() => {
        gc();
        const m = process.memoryUsage();
        peakRetained = Math.max(peakRetained, m.external + m.arrayBuffers);
      }, 100)
    : undefined;
  const t0 = performance.now();
  const r = await runStep({ argv: ['head', '-c', `${totalMb}M`, '/dev/zero'], env: { PATH: '/usr/bin:/bin' }, timeoutMs: 0, maxOutputBytes }, counting, {
    onStarted: (p) => (pid = p),
  });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  clearInterval(gcSampler);
  if (r.status !== 'succeeded' || r.stdout.totalBytes !== totalMb * MIB) throw new Error(`bad run: ${r.status} ${r.error ?? ''} ${r.stdout.totalBytes}`);
  return { mbPerS: totalMb / seconds, rssGrowth: peakRss - base.rss, maxLead, retainedGrowth: peakRetained - base.external - base.arrayBuffers };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

const fmt = (n: number): string => n.toFixed(0).padStart(5);
const mib = (b: number): string => `${(b / MIB).toFixed(1)} MiB`;

async function scenario(name: string, totalMb: number, makeSink: () => OutputSink, maxOutputBytes: number, forcedGc = false): Promise<void> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await measure(totalMb, makeSink(), maxOutputBytes, forcedGc));
  const peak = (f: (s: Sample) => number): string => mib(Math.max(...samples.map(f)));
  console.log(
    `${name.padEnd(38)} ${String(totalMb).padStart(4)} MB  runs ${samples.map((s) => fmt(s.mbPerS)).join(' ')} MB/s  median ${fmt(median(samples.map((s) => s.mbPerS)))} MB/s` +
      `  peak RSS +${peak((s) => s.rssGrowth)}` +
      (maxOutputBytes >= totalMb * MIB ? `  child lead ≤ ${peak((s) => s.maxLead)}` : '') +
      (forcedGc ? `  retained after GC +${peak((s) => s.retainedGrowth)}` : ''),
  );
}

const total = Number(args.mb);
const slowTotal = Number(args['slow-mb']);
const slowRate = Number(args['slow-mbps']) * MIB;
console.log(`runner throughput: node ${process.version}, ${availableParallelism()} cores, ${RUNS} runs each, producer: head -c NM /dev/zero`);

await scenario('no-op sink, all captured+hashed', total, () => () => undefined, total * MIB);
await scenario('async sink (next turn), all captured', total, () => () => new Promise<void>((r) => setImmediate(r)), total * MIB);
await scenario('no-op sink, cap 1 MiB (rest dropped)', total, () => () => undefined, MIB);
await scenario(`slow async sink (~${args['slow-mbps']} MB/s)`, slowTotal, () => {
  // Paces delivery like a slow network: each chunk "takes" length / rate seconds.
  let due = performance.now();
  return (_stream, _offset, data) => {
    due = Math.max(due, performance.now()) + (data.length / slowRate) * 1000;
    return new Promise<void>((r) => setTimeout(r, Math.max(0, due - performance.now())));
  };
}, slowTotal * MIB, true);
