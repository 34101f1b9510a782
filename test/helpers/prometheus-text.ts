/**
 * Parses Prometheus text exposition with parse-prometheus-text-format (a port of the official
 * Python client's parser, output shaped like prom2json), typed for the tests.
 */
import { createRequire } from 'node:module';

export interface Sample {
  readonly labels?: Readonly<Record<string, string>>;
  readonly value?: string;
  readonly buckets?: Readonly<Record<string, string>>;
  readonly count?: string;
  readonly sum?: string;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  readonly metrics: readonly Sample[];
}

const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

/** Families by name; throws on text the parser cannot read. */
export function parseMetrics(text: string): Map<string, Family> {
  return new Map(parse(text).map((f) => [f.name, f]));
}

/** The value of one series (labels matched exactly), or undefined when there is none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const f = families.get(name);
  const want = JSON.stringify(Object.entries(labels).sort());
  const s = f?.metrics.find((m) => JSON.stringify(Object.entries(m.labels ?? {}).sort()) === want);
  if (!s) return undefined;
  return Number(s.value ?? s.count);
}
