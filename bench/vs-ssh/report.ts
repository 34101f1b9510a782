/**
 * The race's figures as a table: per tool and N, median (min–max) wall time of the whole
 * command and CPU time of every process it involved, and how many times slower than
 * `handrail run` each tool was. Pure: samples in, text out.
 */
import { median } from '../proc-stats.js';

export interface Sample {
  readonly tool: string;
  readonly n: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

export interface Row {
  readonly tool: string;
  readonly label: string;
  readonly n: number;
  readonly rounds: number;
  readonly wall: { readonly median: number; readonly min: number; readonly max: number };
  readonly cpu: { readonly median: number; readonly min: number; readonly max: number };
  /** This tool's median wall time over Handrail's at the same N (null for Handrail itself). */
  readonly slowerThanHandrail: number | null;
  readonly cpuOverHandrail: number | null;
}

const stats = (xs: readonly number[]): Row['wall'] => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Rows in the order of `tools` (Handrail is the tool with id `handrail`), each N ascending. */
export function rows(samples: readonly Sample[], tools: ReadonlyArray<{ id: string; label: string }>): Row[] {
  const ns = [...new Set(samples.map((s) => s.n))].sort((a, b) => a - b);
  const of = (tool: string, n: number): Sample[] => samples.filter((s) => s.tool === tool && s.n === n);
  const out: Row[] = [];
  for (const n of ns) {
    const hr = of('handrail', n);
    const hrWall = hr.length ? median(hr.map((s) => s.wallMs)) : NaN;
    const hrCpu = hr.length ? median(hr.map((s) => s.cpuMs)) : NaN;
    for (const t of tools) {
      const mine = of(t.id, n);
      if (mine.length === 0) continue;
      const wall = stats(mine.map((s) => s.wallMs));
      const cpu = stats(mine.map((s) => s.cpuMs));
      const self = t.id === 'handrail';
      out.push({
        tool: t.id,
        label: t.label,
        n,
        rounds: mine.length,
        wall,
        cpu,
        slowerThanHandrail: self || !(hrWall > 0) ? null : wall.median / hrWall,
        cpuOverHandrail: self || !(hrCpu > 0) ? null : cpu.median / hrCpu,
      });
    }
  }
  return out;
}

const ms = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const times = (x: number | null): string => (x === null ? '—' : `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×`);

/** A markdown table (also readable as plain text). */
export function markdownTable(rs: readonly Row[]): string {
  const lines = [
    '| N | tool | wall, median (min–max) | wall ÷ Handrail | CPU, median (min–max) | CPU ÷ Handrail |',
    '|---:|---|---:|---:|---:|---:|',
  ];
  for (const r of rs) {
    lines.push(
      `| ${r.n} | ${r.label} | ${ms(r.wall.median)} (${ms(r.wall.min)}–${ms(r.wall.max)}) | ${times(r.slowerThanHandrail)} | ${ms(r.cpu.median)} (${ms(r.cpu.min)}–${ms(r.cpu.max)}) | ${times(r.cpuOverHandrail)} |`,
    );
  }
  return lines.join('\n');
}

/** Against the targets at the largest N: Handrail ≥ 20× faster than pdsh, ≥ 100× than Ansible `command`. */
export function targetLines(rs: readonly Row[]): string[] {
  const n = Math.max(...rs.map((r) => r.n));
  const at = (tool: string): Row | undefined => rs.find((r) => r.tool === tool && r.n === n);
  const lines: string[] = [];
  for (const [tool, want] of [
    ['pdsh', 20],
    ['ansible-command', 100],
  ] as const) {
    const r = at(tool);
    if (!r || r.slowerThanHandrail === null) continue;
    lines.push(`N=${n}: Handrail ${times(r.slowerThanHandrail)} faster than ${r.label} (target ≥ ${want}×: ${r.slowerThanHandrail >= want ? 'met' : 'NOT met'})`);
  }
  return lines;
}
