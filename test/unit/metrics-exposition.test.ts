/**
 * /metrics speaks the Prometheus text exposition format through prom-client. Checked with the
 * Prometheus project's own parser (prometheus_client.parser, the Python client): every
 * declared family is there with its HELP and TYPE, counters end in _total, histograms in
 * _seconds (buckets, _sum and _count per label set), label values are escaped and bounded.
 */
import { describe, expect, it } from 'vitest';
import { boundLabelValue, Counters, MAX_LABEL_VALUES, METRICS, METRIC_PREFIX, OVERFLOW_LABEL_VALUE } from '../../coordinator/metrics/counters.js';
import { parseMetrics, sampleValue, seriesOf } from '../helpers/prometheus-text.js';

describe('Counters exposition', () => {
  it('gives every family HELP and TYPE, unlabelled counters from 0, gauges from their sources', async () => {
    const c = new Counters();
    c.inc('connections_refused_total', { reason: 'revoked' });
    c.inc('connections_refused_total', { reason: 'revoked' });
    c.inc('connections_refused_total', { reason: 'no_client_certificate' });
    c.inc('results_stored_total');
    c.gauge('agents_online', () => 3);
    c.gauge('queue_length', () => ({ steps_in_flight: 2, store_writes: 0 }));
    c.observe('step_duration_seconds', 0.2, { status: 'succeeded' });
    c.observe('step_duration_seconds', 7, { status: 'succeeded' });
    const text = await c.exposition();
    const families = await parseMetrics(text);
    expect([...families.keys()].sort()).toEqual(Object.keys(METRICS).map((n) => `${METRIC_PREFIX}${n}`).sort());
    for (const [name, f] of families) {
      expect(f.help, name).toMatch(/\S/);
      expect(f.type, name).toBe(METRICS[name.slice(METRIC_PREFIX.length) as keyof typeof METRICS].type);
      if (f.type === 'counter') expect(name, name).toMatch(/_total$/);
      if (f.type === 'histogram') expect(name, name).toMatch(/_seconds$/);
    }
    expect(sampleValue(families, 'handrail_connections_refused_total', { reason: 'revoked' })).toBe(2);
    expect(sampleValue(families, 'handrail_connections_refused_total', { reason: 'no_client_certificate' })).toBe(1);
    expect(sampleValue(families, 'handrail_results_stored_total')).toBe(1);
    expect(sampleValue(families, 'handrail_renewals_total')).toBe(0);
    expect(families.get('handrail_steps_rejected_total')?.samples).toEqual([]); // labelled: no series until counted
    expect(sampleValue(families, 'handrail_agents_online')).toBe(3);
    expect(sampleValue(families, 'handrail_queue_length', { queue: 'steps_in_flight' })).toBe(2);
    const h = 'handrail_step_duration_seconds';
    expect(families.get(h)?.type).toBe('histogram');
    expect(sampleValue(families, h, { le: '0.5', status: 'succeeded' }, 'bucket')).toBe(1);
    expect(sampleValue(families, h, { le: '10', status: 'succeeded' }, 'bucket')).toBe(2);
    expect(sampleValue(families, h, { le: '+Inf', status: 'succeeded' }, 'bucket')).toBe(2);
    expect(sampleValue(families, h, { status: 'succeeded' })).toBe(2);
    expect(sampleValue(families, h, { status: 'succeeded' }, 'sum')).toBeCloseTo(7.2, 9);
    // The synchronous view the call sites and tests use agrees with the exposition.
    expect(c.get('connections_refused_total', { reason: 'revoked' })).toBe(2);
    expect(c.total('connections_refused_total')).toBe(3);
  });

  it('escapes label values as the format requires', async () => {
    const c = new Counters();
    c.inc('tls_handshake_failures_total', { reason: 'a "quoted"\\ back\nslash' });
    expect(await c.exposition()).toContain('handrail_tls_handshake_failures_total{reason="a \\"quoted\\"\\\\ back\\nslash"} 1');
    expect(seriesOf((await parseMetrics(await c.exposition())).get('handrail_tls_handshake_failures_total'))[0]?.labels).toEqual({ reason: 'a "quoted"\\ back\nslash' });
  });

  it('bounds label values: long ones are cut, values past the limit count as "other"', async () => {
    const c = new Counters();
    for (let i = 0; i < MAX_LABEL_VALUES + 10; i++) c.inc('tls_handshake_failures_total', { reason: `ERR_${i}` });
    c.inc('tls_handshake_failures_total', { reason: 'ERR_0' });
    c.inc('tls_handshake_failures_total', { reason: 'x'.repeat(500) });
    const families = await parseMetrics(await c.exposition());
    expect(seriesOf(families.get('handrail_tls_handshake_failures_total')).length).toBe(MAX_LABEL_VALUES + 1);
    expect(sampleValue(families, 'handrail_tls_handshake_failures_total', { reason: OVERFLOW_LABEL_VALUE })).toBe(11);
    expect(sampleValue(families, 'handrail_tls_handshake_failures_total', { reason: 'ERR_0' })).toBe(2);
  });

  it.each([
    { seen: [], value: 'a', max: 2, out: 'a' },
    { seen: ['a', 'b'], value: 'a', max: 2, out: 'a' },
    { seen: ['a', 'b'], value: 'c', max: 2, out: OVERFLOW_LABEL_VALUE },
    { seen: [], value: 'y'.repeat(70), max: 2, out: 'y'.repeat(64) },
  ])('boundLabelValue($value with $seen, max $max) is $out', ({ seen, value, max, out }) => {
    expect(boundLabelValue(new Set(seen), value, max)).toBe(out);
  });

  it('adds Node process metrics when asked', async () => {
    const families = await parseMetrics(await new Counters({ processMetrics: true }).exposition());
    expect(families.get('process_resident_memory_bytes')?.type).toBe('gauge');
    expect(families.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('refuses a label the metric does not declare', () => {
    expect(() => new Counters().inc('connections_refused_total', { agent: 'agt-1' })).toThrow();
  });
});
