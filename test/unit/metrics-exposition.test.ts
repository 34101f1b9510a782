/**
 * /metrics speaks the Prometheus text exposition format (0.0.4): a `# HELP` and a `# TYPE` line
 * for every family before its samples, valid names, escaped label values, counters from 0.
 * Checked with a strict line grammar (no Prometheus parser is a dependency of this repository).
 */
import { describe, expect, it } from 'vitest';
import { Counters, METRICS, METRIC_PREFIX } from '../../coordinator/metrics/counters.js';

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const HELP = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL})(?:,${LABEL})*,?\\})? (${VALUE})(?: -?\\d+)?$`);

interface Family {
  help?: string;
  type?: string;
  samples: Array<{ labels: string; value: number }>;
}

/** Parses exposition text, throwing on the first line that breaks the format's rules. */
function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: string | undefined;
  const family = (name: string): Family => {
    if (current !== name) {
      if (current !== undefined) closed.add(current);
      if (closed.has(name)) throw new Error(`family ${name} is split`);
      current = name;
    }
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  text.slice(0, -1).split('\n').forEach((line, i) => {
    const at = `line ${i + 1} "${line}"`;
    let m: RegExpExecArray | null;
    if ((m = HELP.exec(line))) {
      const f = family(m[1] as string);
      if (f.help !== undefined || f.samples.length) throw new Error(`${at}: HELP twice or after samples`);
      f.help = m[2] as string;
    } else if ((m = TYPE.exec(line))) {
      const f = family(m[1] as string);
      if (f.type !== undefined || f.samples.length) throw new Error(`${at}: TYPE twice or after samples`);
      f.type = m[2] as string;
    } else if ((m = SAMPLE.exec(line))) {
      const f = family(m[1] as string);
      if (f.samples.some((s) => s.labels === (m?.[2] ?? ''))) throw new Error(`${at}: duplicate series`);
      f.samples.push({ labels: m[2] ?? '', value: Number(m[3]) });
    } else if (line !== '' && !line.startsWith('#')) {
      throw new Error(`${at}: not a comment, HELP, TYPE or sample line`);
    }
  });
  return families;
}

describe('Counters.prometheus', () => {
  it('gives every family HELP and TYPE, unlabelled counters from 0, gauges as given', () => {
    const c = new Counters();
    c.inc('connections_refused_total', { reason: 'revoked' });
    c.inc('connections_refused_total', { reason: 'revoked' });
    c.inc('connections_refused_total', { reason: 'no_client_certificate' });
    c.inc('results_stored_total');
    const families = parseExposition(c.prometheus({ agents_online: 3, rss_bytes: 123456789 }));
    expect([...families.keys()].sort()).toEqual(Object.keys(METRICS).map((n) => `${METRIC_PREFIX}${n}`).sort());
    for (const [name, f] of families) {
      expect(f.help, name).toMatch(/\S/);
      expect(f.type, name).toBe(METRICS[name.slice(METRIC_PREFIX.length) as keyof typeof METRICS].type);
      if (f.type === 'counter') expect(name, name).toMatch(/_total$/);
    }
    expect(families.get('handrail_connections_refused_total')!.samples).toEqual([
      { labels: '{reason="no_client_certificate"}', value: 1 },
      { labels: '{reason="revoked"}', value: 2 },
    ]);
    expect(families.get('handrail_results_stored_total')!.samples).toEqual([{ labels: '', value: 1 }]);
    expect(families.get('handrail_renewals_total')!.samples).toEqual([{ labels: '', value: 0 }]);
    expect(families.get('handrail_steps_rejected_total')!.samples).toEqual([]); // labelled: no series until counted
    expect(families.get('handrail_agents_online')!.samples).toEqual([{ labels: '', value: 3 }]);
  });

  it('escapes label values as the format requires', () => {
    const c = new Counters();
    c.inc('tls_handshake_failures_total', { reason: 'a "quoted"\\ back\nslash' });
    const f = parseExposition(c.prometheus()).get('handrail_tls_handshake_failures_total')!;
    expect(f.samples).toEqual([{ labels: '{reason="a \\"quoted\\"\\\\ back\\nslash"}', value: 1 }]);
  });

  it('the grammar refuses what it must', () => {
    expect(() => parseExposition('handrail_x 1\nhandrail_y 2\nhandrail_x 3\n')).toThrow(/split/);
    expect(() => parseExposition('handrail_x{a="1"} 1\n# TYPE handrail_x counter\n')).toThrow(/TYPE twice or after samples/);
    expect(() => parseExposition('handrail_x{a="b"c"} 1\n')).toThrow(/not a comment/);
    expect(() => parseExposition('1bad 1\n')).toThrow(/not a comment/);
  });
});
