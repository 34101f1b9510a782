/**
 * The coordinator's metrics, exported through prom-client (Prometheus text format 0.0.4):
 * counters, gauges read at scrape time, histograms in seconds, and Node's process metrics.
 * Every metric is declared once in METRICS (its type, help, labels): an undeclared name does
 * not compile, and an undeclared label is refused by prom-client. Label values are bounded
 * here (see MAX_LABEL_VALUES): a value from the outside can never grow the series without end.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

interface MetricSpec {
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly help: string;
  /** One label (the common case; kept so that call sites and new counters stay short). */
  readonly label?: string;
  readonly labels?: readonly string[];
  /** Histogram buckets, in seconds. */
  readonly buckets?: readonly number[];
  /** Distinct values kept per label before further ones count as "other" (default MAX_LABEL_VALUES). */
  readonly maxValues?: number;
}

/** Store and dispatch work takes milliseconds; these buckets resolve 0.5 ms to 1 s. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;
/** Steps run for anything from a few milliseconds to the default 1 h timeout. */
const STEP_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600] as const;

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
  login_failures_total: { type: 'counter', label: 'reason', help: 'Portal logins refused, by reason (invalid name or password, throttled).' },
  notification_deliveries_total: { type: 'counter', label: 'outcome', help: 'Notification delivery attempts, by outcome (delivered, retried, failed: given up).' },
  executions_total: {
    type: 'counter',
    labels: ['kind', 'runbook', 'team', 'status'],
    // Runbook ids and teams come from the reviewed catalog, not from requests.
    maxValues: 1000,
    help: 'Executions finished, by kind (runbook, adhoc), runbook id, owner team and final status.',
  },
  audit_records_appended_total: { type: 'counter', help: 'Audit records committed to the store (rate() of this is the audit append rate).' },
  store_commits_total: { type: 'counter', label: 'outcome', help: 'Store write transactions, by outcome (committed, rolled_back).' },
  // histograms (seconds)
  step_duration_seconds: { type: 'histogram', label: 'status', buckets: STEP_BUCKETS, help: 'How long steps ran on their agent (agent clock, start to finish), by final status.' },
  dispatch_latency_seconds: { type: 'histogram', buckets: FAST_BUCKETS, help: 'From a step request being committed and sent to the agent accepting it (coordinator clock).' },
  store_commit_duration_seconds: { type: 'histogram', buckets: FAST_BUCKETS, help: 'Store write transactions, BEGIN to COMMIT (including the fsync).' },
  // gauges (read at scrape time from the sources given to gauge())
  agents_online: { type: 'gauge', help: 'Agents with a live stream to this coordinator.' },
  queue_length: { type: 'gauge', label: 'queue', help: 'Work waiting, by queue: steps_in_flight (dispatched, no result yet), steps_deferred (busy agent, re-offer pending), store_writes (queued for the next commit), agent_send (messages queued behind slow agents), agent_connections_admitting (agent-port connections between accept and Welcome), agent_connections_waiting (accepted, waiting for admission).' },
} as const satisfies Record<string, MetricSpec>;

type MetricName = keyof typeof METRICS;
type NamesOf<T extends MetricSpec['type']> = { [K in MetricName]: (typeof METRICS)[K]['type'] extends T ? K : never }[MetricName];
export type CounterName = NamesOf<'counter'>;
export type HistogramName = NamesOf<'histogram'>;
export type GaugeName = NamesOf<'gauge'>;
/** A gauge's value: one number, or one per value of its label. */
export type GaugeReading = number | Readonly<Record<string, number>>;

export const METRIC_PREFIX = 'handrail_';
export const MAX_LABEL_VALUES = 64;
const MAX_LABEL_LENGTH = 64;
export const OVERFLOW_LABEL_VALUE = 'other';

type Labels = Readonly<Record<string, string>>;

export function labelNames(spec: MetricSpec): string[] {
  return spec.labels ? [...spec.labels] : spec.label ? [spec.label] : [];
}

/**
 * Keeps a label's distinct values bounded: the first `max` values seen are kept (cut to 64
 * characters), any later one is reported as "other". Pure apart from the set it is given.
 */
export function boundLabelValue(seen: Set<string>, value: string, max: number): string {
  const v = value.length > MAX_LABEL_LENGTH ? value.slice(0, MAX_LABEL_LENGTH) : value;
  if (seen.has(v)) return v;
  if (seen.size >= max) return OVERFLOW_LABEL_VALUE;
  seen.add(v);
  return v;
}

export interface CountersOptions {
  /** Node's process metrics (CPU, memory, event loop lag, GC…), prefixed `process_`/`nodejs_`. */
  readonly processMetrics?: boolean;
}

export class Counters {
  readonly registry = new Registry();
  /** Local copies of counter values, so that get()/total()/snapshot() stay synchronous. */
  private readonly values = new Map<CounterName, Map<string, number>>();
  private readonly counters = new Map<CounterName, Counter>();
  private readonly histograms = new Map<HistogramName, Histogram>();
  private readonly gaugeSources = new Map<GaugeName, () => GaugeReading>();
  private readonly seen = new Map<string, Set<string>>();

  constructor(options: CountersOptions = {}) {
    for (const [name, spec] of Object.entries(METRICS) as Array<[MetricName, MetricSpec]>) {
      const common = { name: `${METRIC_PREFIX}${name}`, help: spec.help, labelNames: labelNames(spec), registers: [this.registry] };
      if (spec.type === 'counter') this.counters.set(name as CounterName, new Counter(common));
      else if (spec.type === 'histogram') this.histograms.set(name as HistogramName, new Histogram({ ...common, buckets: [...(spec.buckets ?? FAST_BUCKETS)] }));
      else {
        const sources = this.gaugeSources;
        const label = labelNames(spec)[0];
        new Gauge({
          ...common,
          collect(this: Gauge) {
            const source = sources.get(name as GaugeName);
            if (!source) return;
            const reading = source();
            this.reset();
            if (typeof reading === 'number') this.set(reading);
            else if (label) for (const [k, v] of Object.entries(reading)) this.set({ [label]: k }, v);
          },
        });
      }
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  inc(name: CounterName, labels: Labels = {}, by = 1): void {
    const bounded = this.bound(name, labels);
    this.counters.get(name)?.inc(bounded, by);
    let series = this.values.get(name);
    if (!series) this.values.set(name, (series = new Map()));
    const key = labelKey(bounded);
    series.set(key, (series.get(key) ?? 0) + by);
  }

  /** Records one observation, in seconds, in a histogram. */
  observe(name: HistogramName, seconds: number, labels: Labels = {}): void {
    if (!Number.isFinite(seconds) || seconds < 0) return; // clock steps backwards: no observation is better than a wrong one
    this.histograms.get(name)?.observe(this.bound(name, labels), seconds);
  }

  /** Where a gauge's value comes from; read at every scrape. */
  gauge(name: GaugeName, source: () => GaugeReading): void {
    this.gaugeSources.set(name, source);
  }

  get(name: CounterName, labels: Labels = {}): number {
    return this.values.get(name)?.get(labelKey(labels)) ?? 0;
  }

  /** Sum over every label combination of a counter. */
  total(name: CounterName): number {
    let sum = 0;
    for (const v of this.values.get(name)?.values() ?? []) sum += v;
    return sum;
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, series] of this.values) for (const [labels, v] of series) out[`${name}${labels}`] = v;
    return out;
  }

  /** The exposition text, as /metrics serves it. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private bound(name: MetricName, labels: Labels): Record<string, string> {
    const spec: MetricSpec = METRICS[name];
    const max = spec.maxValues ?? MAX_LABEL_VALUES;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) {
      const id = `${name}\u0000${k}`;
      let seen = this.seen.get(id);
      if (!seen) this.seen.set(id, (seen = new Set()));
      out[k] = boundLabelValue(seen, String(v), max);
    }
    return out;
  }
}

/** `{a="x",b="y"}` with names sorted; '' for none (the key of snapshot() entries). */
function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}
