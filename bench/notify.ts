/**
 * Outbound notifications: what queueing costs the engine's state-change transactions, and how
 * fast the sender drains the outbox into a local receiver. In-process, real SQLite store (WAL,
 * synchronous FULL), real HTTP on 127.0.0.1. Prints medians of several runs and the core count.
 *
 *   npm run build && node dist/bench/notify.js [changes=2000] [runs=5]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDataDir, type DataDir } from '../coordinator/data-dir.js';
import { SecretBox } from '../coordinator/pki/secret-box.js';
import { Counters } from '../coordinator/metrics/counters.js';
import { NotificationStore } from '../coordinator/store/notifications.js';
import { Outbox } from '../coordinator/notify/outbox.js';
import { Subscriptions } from '../coordinator/notify/subscriptions.js';
import { DEFAULT_SENDER, fetchPoster, NotificationSender, timerSchedule } from '../coordinator/notify/sender.js';
import { out } from './harness.js';

const N = Number(process.argv[2] ?? 2000);
const RUNS = Number(process.argv[3] ?? 5);
const log = pino({ level: 'silent' });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function fresh(): Promise<{ dir: string; data: DataDir; box: SecretBox; store: NotificationStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-bench-notify-'));
  const data = await openDataDir(join(dir, 'data'));
  const box = await SecretBox.open(join(dir, 'data', 'keys', 'secrets.key'));
  await data.db.write(async (tx) => {
    await tx.run("INSERT INTO runbook_refs (id, owner, tags_json, updated_at) VALUES ('restart-web', 'team-web', '[]', 0)");
    for (let i = 0; i < N; i++) {
      await tx.run("INSERT INTO executions (id, kind, runbook_id, requested_by, state, created_at, started_at) VALUES (?, 'runbook', 'restart-web', 'alice', 'running', 0, 0)", [`exe-${i}`]);
    }
  });
  return { dir, data, box, store: new NotificationStore(data.db) };
}

/** N executions finishing at once, as the engine batches them: one UPDATE (and the outbox's work) each. */
async function finishAll(data: DataDir, outbox: Outbox | null): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      data.db.batch(async (tx) => {
        await tx.run("UPDATE executions SET state = 'succeeded', finished_at = 1 WHERE id = ? AND state = 'running'", [`exe-${i}`]);
        if (outbox) await outbox.queue(tx, 'execution.finished', `exe-${i}`);
      }),
    ),
  );
  return performance.now() - t0;
}

async function queueing(subscriptions: number, matching: boolean): Promise<number> {
  const { dir, data, box, store } = await fresh();
  const subs = new Subscriptions(data.db, store, box, data.audit, log, Date.now);
  for (let i = 0; i < subscriptions; i++) {
    await subs.create({ url: `http://127.0.0.1:9/${i}`, scope: matching ? { kind: 'team', team: 'team-web' } : { kind: 'runbook', runbookId: 'other' }, events: ['execution.finished'], enabled: true, description: null }, { kind: 'cli', id: 'bench' });
  }
  const ms = await finishAll(data, subscriptions < 0 ? null : new Outbox(store, 'https://handrail.example.com', Date.now, () => undefined));
  await data.close();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

async function baseline(): Promise<number> {
  const { dir, data } = await fresh();
  const ms = await finishAll(data, null);
  await data.close();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

async function draining(): Promise<number> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const { dir, data, box, store } = await fresh();
  const subs = new Subscriptions(data.db, store, box, data.audit, log, Date.now);
  await subs.create({ url, scope: { kind: 'all' }, events: ['execution.finished'], enabled: true, description: null }, { kind: 'cli', id: 'bench' });
  await finishAll(data, new Outbox(store, 'https://handrail.example.com', Date.now, () => undefined));
  const sender = new NotificationSender({ db: data.db, store, box, audit: data.audit, counters: new Counters(), log, now: Date.now, random: Math.random, post: fetchPoster, schedule: timerSchedule, config: { ...DEFAULT_SENDER, perTargetConcurrency: 16 } });
  const t0 = performance.now();
  sender.start();
  for (;;) {
    const left = await data.db.get<{ n: number }>("SELECT count(*) AS n FROM notification_deliveries WHERE state = 'pending'");
    if (left?.n === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  await sender.stop();
  server.close();
  await data.close();
  await rm(dir, { recursive: true, force: true });
  return ms;
}

async function main(): Promise<void> {
  out(`notifications bench: ${N} executions finishing together, ${RUNS} runs, ${availableParallelism()} cores, Node ${process.version}`);
  const base: number[] = [];
  const none: number[] = [];
  const nonMatching: number[] = [];
  const one: number[] = [];
  const three: number[] = [];
  const drain: number[] = [];
  await baseline(); // warm-up: the first store opened pays for loading and JIT
  for (let r = 0; r < RUNS; r++) {
    base.push(await baseline());
    none.push(await queueing(0, false));
    nonMatching.push(await queueing(10, false));
    one.push(await queueing(1, true));
    three.push(await queueing(3, true));
    drain.push(await draining());
  }
  const per = (xs: number[]): string => `${median(xs).toFixed(0)} ms (${((median(xs) - median(base)) * 1000 / N).toFixed(1)} µs per change over the baseline)`;
  out(`  baseline, no outbox:                   ${median(base).toFixed(0)} ms`);
  out(`  outbox, no subscriptions:              ${per(none)}`);
  out(`  outbox, 10 subscriptions, none match:  ${per(nonMatching)}`);
  out(`  outbox, 1 matching subscription:       ${per(one)}`);
  out(`  outbox, 3 matching subscriptions:      ${per(three)}`);
  out(`  sender: ${N} deliveries to one local receiver (16 in flight): ${median(drain).toFixed(0)} ms, ${(N / (median(drain) / 1000)).toFixed(0)} deliveries/s`);
}

await main();
