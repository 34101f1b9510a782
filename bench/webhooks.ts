/**
 * Inbound webhooks: what one delivery costs to judge, and what a flood of forged ones costs the
 * coordinator. (1) in process: signature check + JSON parse + mapping of an Alertmanager-sized
 * payload, µs per delivery; (2) over HTTP against a real coordinator: bad-signature deliveries
 * per second from 16 concurrent senders, and how many audit records the flood left (refusals
 * are rate-limited to one per hook and reason per minute).
 * Run: npm run build && node dist/bench/webhooks.js [--rounds 5] [--requests 4000]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { checkDelivery } from '../coordinator/webhooks/delivery-check.js';
import { checkMapping, mapPayload } from '../coordinator/webhooks/payload-mapping.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { signWebhook } from '../core/webhook-signature.js';
import { out, startBench } from './harness.js';
import { median } from './proc-stats.js';

const args = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '4000' } } }).values;
const rounds = Number(args.rounds);
const requests = Number(args.requests);
out(`cores: ${cpus().length}, node ${process.version}`);

const payload = {
  version: '4',
  status: 'firing',
  receiver: 'handrail',
  groupLabels: { alertname: 'DiskFull' },
  commonLabels: { severity: 'critical', alertname: 'DiskFull' },
  alerts: Array.from({ length: 10 }, (_, i) => ({ status: 'firing', labels: { alertname: 'DiskFull', host: `web-${i}`, instance: `web-${i}:9100`, mountpoint: '/var' }, annotations: { summary: 'disk almost full', description: 'x'.repeat(200) }, startsAt: new Date().toISOString() })),
};
const body = Buffer.from(JSON.stringify(payload));
const secret = 'hrw_benchbenchbenchbenchbenchbenchbenchbench';
const mapping = checkMapping({ options: { alert: { path: '$.alerts[0].labels.alertname' }, severity: { path: '$.commonLabels.severity' } }, target: { label: 'name', path: '$.alerts[-1].labels.host' } }, [
  { name: 'alert', type: 'string', required: true, default: undefined },
  { name: 'severity', type: 'string', required: false, default: undefined },
]);
if (!mapping.ok) throw new Error(mapping.problems.join('; '));
const perDelivery: number[] = [];
for (let r = 0; r < rounds; r++) {
  const n = 5000;
  const now = Date.now();
  const ts = String(Math.floor(now / 1000));
  const headers = { signature: signWebhook(secret, ts, 'd-1', body), timestamp: ts, delivery: 'd-1' };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const c = checkDelivery({ headers, body, secrets: { current: 'hrw_other', previous: { secret, until: now + 1000 } }, nowMs: now });
    if (!c.ok) throw new Error(c.message);
    const m = mapPayload(mapping.mapping, JSON.parse(body.toString('utf8')));
    if (!m.ok) throw new Error(m.message);
  }
  perDelivery.push(((performance.now() - t0) * 1000) / n);
}
out(`judge one ${body.length}-byte delivery (previous secret: two HMACs, parse, map): median ${median(perDelivery).toFixed(1)} µs over ${rounds} rounds`);

const b = await startBench({ bootstrapUses: 1, logLevel: 'warn' });
const rates: number[] = [];
let hookId = '';
try {
  hookId = (await b.api<{ webhook: { id: string } }>('POST', '/api/v1/webhooks', { runbook: 'diagnostics-bundle', runAs: 'bench', mapping: { options: { ticket: { path: '$.t', default: 'bench' } } } })).webhook.id;
  const forged = async (i: number): Promise<void> => {
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${b.url}/hooks/${hookId}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-handrail-timestamp': ts, 'x-handrail-delivery': `forged-${i}`, 'x-handrail-signature': signWebhook('hrw_not-the-secret', ts, `forged-${i}`, body) }, body });
    await res.text();
    if (res.status !== 401) throw new Error(`expected 401, got ${res.status}`);
  };
  // For scale: the cheapest route there is, through the same HTTP stack.
  const health = async (): Promise<void> => {
    const res = await fetch(`${b.url}/api/v1/health`);
    await res.text();
  };
  const healthRates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next++ < requests) await health();
    }));
    healthRates.push(requests / ((performance.now() - t0) / 1000));
  }
  out(`GET /api/v1/health for scale (16 clients): median ${Math.round(median(healthRates))}/s`);
  for (let r = 0; r < rounds; r++) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < requests) await forged(next++);
    }));
    rates.push(requests / ((performance.now() - t0) / 1000));
  }
} finally {
  b.coord.kill('SIGINT');
  await new Promise((r) => b.coord.once('exit', r));
}
const data = await openDataDir(b.dataDir);
const refused = (await data.db.all<{ payload: Buffer }>('SELECT payload FROM audit_records')).map((x) => JSON.parse(Buffer.from(x.payload).toString('utf8')) as { type: string; data: { count?: number } }).filter((x) => x.type === 'webhook.refused');
await data.close();
out(`forged deliveries refused over HTTP (401, 16 senders, ${body.length}-byte body): median ${Math.round(median(rates))}/s over ${rounds} rounds of ${requests}`);
out(`audit records the ${rounds * requests} refusals left: ${refused.length} webhook.refused (count ${refused.map((x) => x.data.count).join(', ')})`);
