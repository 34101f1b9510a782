/**
 * Process-local counters (refusals, messages, results) and the coordinator's gauges, exported
 * in the Prometheus text exposition format (version 0.0.4): every family has its `# HELP` and
 * `# TYPE` line, unlabelled counters are exported from 0, and label values are escaped.
 * Every metric is declared once in METRICS (with the label it is counted by, if any): an
 * undeclared name does not compile.
 */

export const METRICS = {
  // counters
  connections_total: { type: 'counter', label: 'kind', help: 'TLS connections accepted on the agent port, by kind (agent, enrollment).' },
  connections_refused_total: { type: 'counter', label: 'reason', help: 'Connections to the agent port refused at the handshake, by reason.' },
  tls_handshake_failures_total: { type: 'counter', label: 'reason', help: 'TLS handshakes on the agent port that failed before a certificate was checked, by OpenSSL error code.' },
  sessions_started_total: { type: 'counter', help: 'Agent streams opened (an agent connecting or reconnecting).' },
  messages_refused_total: { type: 'counter', label: 'reason', help: 'Agent stream messages refused (oversized, undecodable, malformed frames), by reason.' },
  enrollments_total: { type: 'counter', help: 'Agents enrolled with a bootstrap token.' },
  enrollments_refused_total: { type: 'counter', label: 'reason', help: 'Enrollment attempts refused, by reason.' },
  renewals_total: { type: 'counter', help: 'Agent certificates renewed over the stream.' },
  agent_trust_refusals_total: { type: 'counter', label: 'what', help: 'Certificates or dispatch key sets an agent reported it refused, by what.' },
  steps_dispatched_total: { type: 'counter', help: 'Signed step requests dispatched to agents.' },
  steps_deferred_total: { type: 'counter', help: 'Steps a busy agent turned away, to be offered again.' },
  steps_rejected_total: { type: 'counter', label: 'reason', help: 'Steps an agent refused, by reason.' },
  results_stored_total: { type: 'counter', help: 'Agent-signed step results stored.' },
  results_refused_total: { type: 'counter', label: 'reason', help: 'Step results refused (bad signature, unknown certificate, mismatch), by reason.' },
  output_gaps_total: { type: 'counter', help: 'Output chunks that arrived ahead of a gap and were dropped until the agent resends.' },
  webhook_deliveries_total: { type: 'counter', label: 'outcome', help: 'Inbound webhook deliveries, by outcome (accepted, or the reason they were refused).' },
  auth_failures_total: { type: 'counter', help: 'HTTP API requests refused for a missing, unknown, expired or revoked token.' },
  // gauges (values supplied at export time)
  agents_online: { type: 'gauge', help: 'Agents with a live stream to this coordinator.' },
  rss_bytes: { type: 'gauge', help: 'Resident set size of the coordinator process, in bytes.' },
} as const satisfies Record<string, { readonly type: 'counter' | 'gauge'; readonly help: string; readonly label?: string }>;

type MetricName = keyof typeof METRICS;
export type CounterName = { [K in MetricName]: (typeof METRICS)[K]['type'] extends 'counter' ? K : never }[MetricName];
export type GaugeName = Exclude<MetricName, CounterName>;

export const METRIC_PREFIX = 'handrail_';

export class Counters {
  /** name -> serialized label set -> value */
  private readonly values = new Map<CounterName, Map<string, number>>();

  inc(name: CounterName, labels: Readonly<Record<string, string>> = {}, by = 1): void {
    let series = this.values.get(name);
    if (!series) this.values.set(name, (series = new Map()));
    const key = labelText(labels);
    series.set(key, (series.get(key) ?? 0) + by);
  }

  get(name: CounterName, labels: Readonly<Record<string, string>> = {}): number {
    return this.values.get(name)?.get(labelText(labels)) ?? 0;
  }

  /** Sum over every label combination of a counter. */
  total(name: CounterName): number {
    let sum = 0;
    for (const v of this.values.get(name)?.values() ?? []) sum += v;
    return sum;
  }

  prometheus(gauges: Readonly<Partial<Record<GaugeName, number>>> = {}): string {
    const lines: string[] = [];
    for (const [name, m] of Object.entries(METRICS) as Array<[MetricName, (typeof METRICS)[MetricName]]>) {
      const full = `${METRIC_PREFIX}${name}`;
      lines.push(`# HELP ${full} ${escapeHelp(m.help)}`, `# TYPE ${full} ${m.type}`);
      if (m.type === 'gauge') {
        const v = gauges[name as GaugeName];
        if (v !== undefined) lines.push(`${full} ${formatValue(v)}`);
        continue;
      }
      const series = this.values.get(name as CounterName);
      if (!series || series.size === 0) {
        // A counter with labels has no series until it first counts; one without starts at 0.
        if (!('label' in m)) lines.push(`${full} 0`);
        continue;
      }
      for (const [labels, v] of [...series].sort(([a], [b]) => a.localeCompare(b))) lines.push(`${full}${labels} ${formatValue(v)}`);
    }
    return lines.join('\n') + '\n';
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, series] of this.values) for (const [labels, v] of series) out[`${name}${labels}`] = v;
    return out;
  }
}

/** `{a="x",b="y"}` with names sorted and values escaped as the format requires; '' for none. */
function labelText(labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${sanitizeLabelName(k)}="${escapeLabelValue(String(labels[k]))}"`).join(',')}}`;
}

function sanitizeLabelName(k: string): string {
  const s = k.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[a-zA-Z_]/.test(s) ? s : `_${s}`;
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
