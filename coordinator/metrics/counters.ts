/** Process-local counters (refusals, messages, results), exported as Prometheus text. */

export class Counters {
  private readonly values = new Map<string, number>();

  inc(name: string, labels: Readonly<Record<string, string>> = {}, by = 1): void {
    const key = seriesKey(name, labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(name: string, labels: Readonly<Record<string, string>> = {}): number {
    return this.values.get(seriesKey(name, labels)) ?? 0;
  }

  /** Sum over every label combination of a counter. */
  total(name: string): number {
    let sum = 0;
    for (const [k, v] of this.values) if (k === name || k.startsWith(`${name}{`)) sum += v;
    return sum;
  }

  prometheus(gauges: Readonly<Record<string, number>> = {}): string {
    const lines: string[] = [];
    for (const [k, v] of [...this.values].sort(([a], [b]) => a.localeCompare(b))) lines.push(`handrail_${k} ${v}`);
    for (const [k, v] of Object.entries(gauges)) lines.push(`handrail_${k} ${v}`);
    return lines.join('\n') + '\n';
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
