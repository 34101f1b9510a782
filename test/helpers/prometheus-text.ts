/**
 * Parses Prometheus text exposition with the Prometheus project's own Python client parser
 * (`prometheus_client.parser`, Debian package python3-prometheus-client, installed by .ci/run),
 * run as a child process; typed for the tests. It keeps every series, labelled histograms'
 * buckets, _sum and _count included, and throws on text it cannot read.
 */
import { execFile } from 'node:child_process';

export interface Sample {
  /** The series name as exposed (e.g. x_total, x_bucket, x_sum). */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  /** As exposed in `# TYPE`: counters keep their _total. */
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'unknown' | 'info' | 'stateset' | 'gaugehistogram';
  readonly samples: readonly Sample[];
}

/** The Debian python3 (the package installs into its dist-packages, not into a pyenv or venv python). */
const PYTHON = process.env['HANDRAIL_TEST_PYTHON'] ?? '/usr/bin/python3';

const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
out = []
for f in text_string_to_metric_families(text):
    name = f.name
    if f.type == 'counter' and ('# TYPE %s_total ' % name) in text:
        name += '_total'
    out.append({'name': name, 'help': f.documentation, 'type': f.type, 'samples': [
        {'name': s.name, 'labels': s.labels, 'value': s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
json.dump(out, sys.stdout)
`;

/** Families by name (as exposed); rejects on text the parser cannot read. */
export function parseMetrics(text: string): Promise<Map<string, Family>> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', SCRIPT], { maxBuffer: 64 * 1024 * 1024, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`prometheus_client.parser refused the exposition (is python3-prometheus-client installed for ${PYTHON}?): ${stderr.trim().split('\n').at(-1) ?? err.message}`));
        return;
      }
      const families = JSON.parse(stdout) as Array<Omit<Family, 'samples'> & { samples: Array<{ name: string; labels: Record<string, string>; value: number | string }> }>;
      resolve(new Map(families.map((f) => [f.name, { ...f, samples: f.samples.map((s) => ({ ...s, value: Number(s.value) })) }])));
    });
    child.stdin?.end(text);
  });
}

/**
 * The value of one series (labels matched exactly), or undefined when there is none. For a
 * histogram, `series` picks _count (default), _sum, or _bucket (give `le` among the labels).
 */
export function sampleValue(families: Map<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}, series: 'count' | 'sum' | 'bucket' = 'count'): number | undefined {
  const f = families.get(name);
  if (!f) return undefined;
  const sampleName = f.type === 'histogram' || f.type === 'summary' ? `${name}_${series}` : name;
  const want = JSON.stringify(Object.entries(labels).sort());
  return f.samples.find((s) => s.name === sampleName && JSON.stringify(Object.entries(s.labels).sort()) === want)?.value;
}

/** The series of a family whose sample name is the family's own (counters, gauges). */
export function seriesOf(f: Family | undefined): readonly Sample[] {
  return f ? f.samples.filter((s) => s.name === f.name) : [];
}
