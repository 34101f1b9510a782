/**
 * What the metrics cost on the hot paths: Counters.inc (a step dispatched, a result stored),
 * a histogram observation (a step's duration), and one /metrics exposition with the Node
 * process metrics and a full set of labelled series. Medians of several runs.
 * Run: npm run build && node dist/bench/metrics.js
 */
import { cpus } from 'node:os';
import { Counters } from '../coordinator/metrics/counters.js';
import { out } from './harness.js';
import { median } from './proc-stats.js';

const ROUNDS = 5;
const N = 1_000_000;

function perOp(fn: (i: number) => void, n: number): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t) / n;
}

out(`cores: ${cpus().length}, node ${process.version}`);
const c = new Counters({ processMetrics: true });
const inc: number[] = [];
const incLabelled: number[] = [];
const observe: number[] = [];
const expose: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  inc.push(perOp(() => c.inc('steps_dispatched_total'), N));
  incLabelled.push(perOp((i) => c.inc('steps_rejected_total', { reason: `r${i % 8}` }), N));
  observe.push(perOp((i) => c.observe('step_duration_seconds', (i % 1000) / 100, { status: i % 7 === 0 ? 'failed' : 'succeeded' }), N));
}
for (let i = 0; i < 1000; i++) c.inc('executions_total', { kind: 'runbook', runbook: `rb-${i % 200}`, team: `team-${i % 20}`, status: 'succeeded' });
for (let r = 0; r < ROUNDS; r++) {
  const t = process.hrtime.bigint();
  const text = await c.exposition();
  expose.push(Number(process.hrtime.bigint() - t) / 1e6);
  if (r === 0) out(`exposition: ${text.split('\n').length} lines, ${(text.length / 1024).toFixed(1)} KiB`);
}
out(`inc, unlabelled:       ${median(inc).toFixed(0)} ns/op`);
out(`inc, labelled:         ${median(incLabelled).toFixed(0)} ns/op`);
out(`histogram observe:     ${median(observe).toFixed(0)} ns/op`);
out(`/metrics exposition:   ${median(expose).toFixed(2)} ms (medians of ${ROUNDS} runs)`);
