/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, top entries first.
 * Also usable alone: node dist/bench/cpu-profile.js FILE.cpuprofile [--top 20]
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Sampled time outside '(idle)'. */
  readonly busyMs: number;
  readonly top: readonly ProfileEntry[];
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  const where = f.url.includes('node_modules') ? f.url.slice(f.url.lastIndexOf('node_modules/') + 13) : f.url.startsWith('node:') ? f.url : basename(f.url);
  return `${fn} ${where}:${f.lineNumber + 1}`;
}

export function summariseProfile(path: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i] as number);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    if (!node) continue;
    const name = label(node);
    if (name === '(idle)') idle += dt;
    self.set(name, (self.get(name) ?? 0) + dt);
  }
  const busy = total - idle;
  const entries = [...self.entries()]
    .filter(([n]) => n !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, selfMs: ms, share: busy > 0 ? ms / busy : 0 }));
  return { totalMs: total, busyMs: busy, top: entries };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`profile: ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.totalMs / 1000).toFixed(2)} s sampled; top self time:`];
  for (const e of s.top) lines.push(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.name}`);
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node dist/bench/cpu-profile.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(formatProfile(summariseProfile(file, Number(process.argv[3] ?? 20))) + '\n');
}
