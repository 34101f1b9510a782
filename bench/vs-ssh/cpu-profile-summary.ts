/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) as self time per source: each package under
 * node_modules, each Handrail folder under dist/, Node's internals, and V8's own entries
 * (garbage collector, program, idle). Pure: the profile's JSON in, rows out.
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** What a script URL counts as: "zod", "dist/cli", "node:internal/modules", "(garbage collector)"… */
export function sourceOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  const dist = /\/dist\/([^/]+)\//.exec(url);
  if (dist) return `dist/${dist[1]}`;
  const internal = /^node:internal\/([^/]+)/.exec(url);
  if (internal) return `node:internal/${internal[1]}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

/** Self time (ms) per source, largest first, and the profile's whole span (ms). */
export function selfTimeBySource(p: CpuProfile): { spanMs: number; rows: Array<{ source: string; ms: number }> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    if (!n) return;
    const src = sourceOf(n.callFrame.url, n.callFrame.functionName);
    totals.set(src, (totals.get(src) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  const rows = [...totals].map(([source, ms]) => ({ source, ms })).sort((a, b) => b.ms - a.ms);
  return { spanMs: (p.endTime - p.startTime) / 1000, rows };
}
