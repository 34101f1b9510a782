/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) as text: self time by function, self
 * time by module (package or source file), and inclusive time by function (the call paths that
 * hold the time). Samples may be limited to windows on the monotonic clock, e.g. the
 * `PROFILE-WINDOW start end` lines bench/engine.ts prints, so setup does not drown the hot path.
 *
 *   node dist/bench/cpu-profile-summary.js FILE.cpuprofile [--windows FILE] [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { windows: { type: 'string' }, top: { type: 'string', default: '25' } },
});
const TOP = Number(args.top);
const out = (s: string): void => void process.stdout.write(s + '\n');

/** A module name: the npm package, node's own module, or the source file under dist/. */
export function moduleOf(url: string): string {
  if (!url) return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').split('/').slice(0, 2).join('/');
  const dist = /\/dist\/(.*)$/.exec(url);
  return dist ? (dist[1] as string) : url;
}

function frameName(f: CallFrame): string {
  return `${f.functionName || '(anonymous)'} ${moduleOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
}

function main(): void {
  const file = positionals[0];
  if (!file) throw new Error('usage: cpu-profile-summary FILE.cpuprofile [--windows FILE] [--top N]');
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const windows: Array<[number, number]> = args.windows
    ? [...readFileSync(args.windows, 'utf8').matchAll(/PROFILE-WINDOW (\d+) (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])])
    : [];
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<number, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (windows.length && !windows.some(([a, b]) => t >= a && t <= b)) continue;
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  }
  const idle = new Set(['(idle)', '(program)', '(garbage collector)']);
  const selfFn = new Map<string, number>();
  const selfMod = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id) as ProfileNode;
    const name = idle.has(n.callFrame.functionName) ? n.callFrame.functionName : frameName(n.callFrame);
    selfFn.set(name, (selfFn.get(name) ?? 0) + us);
    const mod = idle.has(n.callFrame.functionName) ? n.callFrame.functionName : moduleOf(n.callFrame.url);
    selfMod.set(mod, (selfMod.get(mod) ?? 0) + us);
    // Inclusive: every distinct frame on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = (byId.get(cur) as ProfileNode).callFrame;
      if (f.functionName === '(root)') break;
      const k = frameName(f);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const busy = total - (selfFn.get('(idle)') ?? 0);
  const table = (title: string, m: Map<string, number>, denom: number): void => {
    out(`\n## ${title}`);
    for (const [k, us] of [...m].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
      out(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / denom) * 100).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
  out(`# ${file}: ${(total / 1000).toFixed(0)} ms sampled${windows.length ? ` in ${windows.length} windows` : ''}, ${(busy / 1000).toFixed(0)} ms not idle (the percentages are of that; idle is left out)`);
  table('self time by function', selfFn, busy);
  table('self time by module', selfMod, busy);
  table('inclusive time by function (call paths)', incl, busy);
}

main();
