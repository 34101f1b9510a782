/**
 * The notification sender against a real local HTTP server, a real SQLite store and the real
 * sealing key, with an injected clock and timer: no test waits for a real backoff.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';
import { SecretBox } from '../../coordinator/pki/secret-box.js';
import { Counters } from '../../coordinator/metrics/counters.js';
import { NotificationStore, type NotificationEvent } from '../../coordinator/store/notifications.js';
import { Subscriptions } from '../../coordinator/notify/subscriptions.js';
import { Outbox } from '../../coordinator/notify/outbox.js';
import { DEFAULT_SENDER, fetchPoster, NotificationSender, type Schedule } from '../../coordinator/notify/sender.js';
import { DEFAULT_RETRY } from '../../coordinator/notify/retry-policy.js';
import type { NotificationBody } from '../../coordinator/notify/payload.js';
import { verifyWebhook, WEBHOOK_HEADERS } from '../../core/webhook-signature.js';
import { REDACT_PATHS } from '../../cli/logger.js';
import { waitFor } from '../helpers/processes.js';

const T0 = Date.UTC(2026, 11, 3, 9, 0, 0);
const ADMIN = { kind: 'user', id: 'root' } as const;

/** A clock and a timer the test moves by hand. */
class ManualTime {
  t = T0;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  /** Every wait the sender asked for, in order. */
  readonly waits: number[] = [];
  readonly now = (): number => this.t;
  readonly schedule: Schedule = (fn, ms) => {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    this.waits.push(ms);
    return () => {
      timer.live = false;
    };
  };
  advance(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((x) => x.live && x.at <= this.t);
    this.timers = this.timers.filter((x) => x.live && x.at > this.t);
    for (const x of due) x.fn();
  }
}

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly res: ServerResponse;
}

/** A receiver whose answer to each request the test decides (`answer`), or holds. */
class Receiver {
  readonly requests: Received[] = [];
  answer: (r: Received, n: number) => void = (r) => r.res.writeHead(204).end();
  private server: Server | undefined;
  url = '';

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), res };
        this.requests.push(r);
        this.answer(r, this.requests.length);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/handrail?tenant=t1`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

let dir: string;
let data: DataDir;
let box: SecretBox;
let time: ManualTime;
let receiver: Receiver;
let counters: Counters;
let logText: string;
let log: Logger;
let senders: NotificationSender[];

function logger(): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logText += chunk.toString();
      done();
    },
  });
  // The coordinator's own redaction settings (cli/logger.ts).
  return pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
}

function sender(config: Partial<typeof DEFAULT_SENDER> = {}): NotificationSender {
  const store = new NotificationStore(data.db);
  const s = new NotificationSender({
    db: data.db,
    store,
    box,
    audit: data.audit,
    counters,
    log,
    now: time.now,
    random: () => 0.5,
    post: fetchPoster,
    schedule: time.schedule,
    config: { ...DEFAULT_SENDER, timeoutMs: 5_000, ...config },
  });
  senders.push(s);
  return s;
}

async function subscribe(url = receiver.url, events: NotificationEvent[] = ['execution.finished']): Promise<{ id: string; secret: string }> {
  const subs = new Subscriptions(data.db, new NotificationStore(data.db), box, data.audit, log, time.now);
  const r = await subs.create({ url, scope: { kind: 'team', team: 'team-web' }, events, enabled: true, description: null }, ADMIN);
  return { id: r.subscription.id, secret: r.secret };
}

/** An execution of a team-web runbook that just finished, with its delivery queued in the same transaction. */
async function finishExecution(id: string, wake: () => void = () => undefined): Promise<number> {
  const outbox = new Outbox(new NotificationStore(data.db), 'https://handrail.example.com/', time.now, wake);
  const n = await data.db.write(async (tx) => {
    await tx.run("INSERT OR REPLACE INTO runbook_refs (id, owner, tags_json, updated_at) VALUES ('restart-web', 'team-web', '[]', 0)");
    await tx.run(
      `INSERT INTO executions (id, kind, runbook_id, runbook_digest, requested_by, options_json, targets, state, state_reason, created_at, started_at, finished_at)
       VALUES (?, 'runbook', 'restart-web', ?, 'alice', ?, 'role=web', 'failed', 'web-2: exit 1', ?, ?, ?)`,
      [id, 'ab'.repeat(32), JSON.stringify({ reason: 'deploy', password: '********' }), T0 - 60_000, T0 - 59_000, T0],
    );
    await tx.run("INSERT INTO execution_nodes (execution_id, agent_id, node_index, agent_name, state) VALUES (?, 'agt-1', 0, 'web-1', 'succeeded'), (?, 'agt-2', 1, 'web-2', 'failed')", [id, id]);
    return outbox.queue(tx, 'execution.finished', id);
  });
  outbox.committed();
  return n;
}

const delivery = async (): Promise<{ id: string; state: string; attempts: number; next_attempt_at: number; last_status: number | null; last_error: string | null }> => {
  const r = await data.db.get<{ id: string; state: string; attempts: number; next_attempt_at: number; last_status: number | null; last_error: string | null }>('SELECT id, state, attempts, next_attempt_at, last_status, last_error FROM notification_deliveries');
  if (!r) throw new Error('no delivery');
  return r;
};
const attempts = (): Promise<Array<{ attempt: number; status: number | null; error: string | null; outcome: string }>> => data.db.all('SELECT attempt, status, error, outcome FROM notification_attempts ORDER BY attempt');
const untilState = (state: string, attemptsMade: number): Promise<unknown> => waitFor(async () => {
  const d = await delivery();
  return d.state === state && d.attempts === attemptsMade ? d : undefined;
}, 10_000, `delivery ${state} after ${attemptsMade} attempts`);
const auditText = async (): Promise<string> => (await data.db.all<{ payload: Buffer }>('SELECT payload FROM audit_records ORDER BY seq')).map((r) => r.payload.toString('utf8')).join('\n');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-notify-'));
  time = new ManualTime();
  data = await openDataDir(join(dir, 'data'), time.now);
  box = await SecretBox.open(join(dir, 'data', 'keys', 'secrets.key'));
  receiver = new Receiver();
  await receiver.start();
  counters = new Counters();
  logText = '';
  log = logger();
  senders = [];
});

afterEach(async () => {
  for (const s of senders) await s.stop();
  await receiver.stop();
  await data.close();
  await rm(dir, { recursive: true, force: true });
});

describe('notification sender', () => {
  it('POSTs the signed payload: the pure verifier accepts it, and it links to the execution page', async () => {
    const { secret } = await subscribe();
    const s = sender();
    s.start();
    expect(await finishExecution('exe-one', () => s.wake())).toBe(1);
    await untilState('delivered', 1);
    const [r] = receiver.requests;
    if (!r) throw new Error('no request');
    const d = await delivery();
    expect(r.headers[WEBHOOK_HEADERS.event]).toBe('execution.finished');
    expect(r.headers[WEBHOOK_HEADERS.delivery]).toBe(d.id);
    expect(r.headers[WEBHOOK_HEADERS.timestamp]).toBe(String(T0 / 1000));
    expect(r.headers['content-type']).toBe('application/json');
    const verdict = verifyWebhook({ secret, timestamp: r.headers[WEBHOOK_HEADERS.timestamp] as string, deliveryId: d.id, body: r.body, signature: r.headers[WEBHOOK_HEADERS.signature] as string, nowMs: T0 });
    expect(verdict).toEqual({ ok: true });
    // Another secret, or one byte of the body changed, does not verify.
    expect(verifyWebhook({ secret: `${secret}x`, timestamp: String(T0 / 1000), deliveryId: d.id, body: r.body, signature: r.headers[WEBHOOK_HEADERS.signature] as string, nowMs: T0 }).ok).toBe(false);
    expect(verifyWebhook({ secret, timestamp: String(T0 / 1000), deliveryId: d.id, body: r.body.replace('failed', 'succeeded'), signature: r.headers[WEBHOOK_HEADERS.signature] as string, nowMs: T0 }).ok).toBe(false);
    const body = JSON.parse(r.body) as NotificationBody;
    expect(Object.keys(body)).toEqual(['event', 'deliveryId', 'sentAt', 'execution', 'url']);
    expect(body).toMatchObject({
      event: 'execution.finished',
      deliveryId: d.id,
      sentAt: new Date(T0).toISOString(),
      url: 'https://handrail.example.com/executions/exe-one',
      execution: {
        id: 'exe-one',
        runbook: { id: 'restart-web', digest: 'ab'.repeat(32), owner: 'team-web' },
        state: 'failed',
        reason: 'web-2: exit 1',
        requestedBy: 'alice',
        options: { reason: 'deploy', password: '********' },
        startedAt: new Date(T0 - 59_000).toISOString(),
        finishedAt: new Date(T0).toISOString(),
        nodes: { total: 2, byState: { failed: 1, succeeded: 1 } },
      },
    });
    expect(await attempts()).toEqual([{ attempt: 1, status: 204, error: null, outcome: 'delivered' }]);
    expect(counters.get('notification_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(logText).toContain('"event":"notification.delivered"');
    expect(logText).not.toContain(secret);
    expect(logText).not.toContain('tenant=t1'); // logs name the receiver by origin only
    expect(await auditText()).not.toContain(secret);
  });

  it('retries a 503 after the backoff, then records the success', async () => {
    await subscribe();
    receiver.answer = (r, n) => r.res.writeHead(n === 1 ? 503 : 200).end();
    const s = sender();
    s.start();
    await finishExecution('exe-503', () => s.wake());
    await untilState('pending', 1);
    const d = await delivery();
    // random 0.5 → three quarters of the first wait's ceiling (equal jitter).
    expect(d.next_attempt_at).toBe(T0 + DEFAULT_RETRY.baseDelayMs * 0.75);
    expect(d.last_status).toBe(503);
    time.advance(DEFAULT_RETRY.baseDelayMs * 0.75);
    await untilState('delivered', 2);
    expect(await attempts()).toEqual([
      { attempt: 1, status: 503, error: 'HTTP 503', outcome: 'retry' },
      { attempt: 2, status: 200, error: null, outcome: 'delivered' },
    ]);
    expect(receiver.requests[0]?.headers[WEBHOOK_HEADERS.delivery]).toBe(receiver.requests[1]?.headers[WEBHOOK_HEADERS.delivery]);
    expect(counters.get('notification_deliveries_total', { outcome: 'retried' })).toBe(1);
    expect(counters.get('notification_deliveries_total', { outcome: 'delivered' })).toBe(1);
  });

  it('honours Retry-After: the next attempt waits exactly what the receiver asked', async () => {
    await subscribe();
    receiver.answer = (r, n) => (n === 1 ? r.res.writeHead(429, { 'retry-after': '120' }).end() : r.res.writeHead(202).end());
    // No safety-net polling in this test: only the Retry-After wait may wake the loop.
    const s = sender({ pollMs: 3_600_000 });
    s.start();
    await finishExecution('exe-429', () => s.wake());
    await untilState('pending', 1);
    expect((await delivery()).next_attempt_at).toBe(T0 + 120_000);
    await waitFor(() => time.waits.includes(120_000), 10_000, 'the sender to sleep until the Retry-After time');
    time.advance(119_999); // no timer is due yet: nothing is sent
    expect(receiver.requests).toHaveLength(1);
    time.advance(1);
    await untilState('delivered', 2);
    expect(receiver.requests).toHaveLength(2);
    // The second attempt is signed at its own time.
    expect(receiver.requests[1]?.headers[WEBHOOK_HEADERS.timestamp]).toBe(String((T0 + 120_000) / 1000));
  });

  it('does not retry a 400: the delivery is given up at once, audited and counted', async () => {
    const { id } = await subscribe();
    receiver.answer = (r) => r.res.writeHead(400).end('bad');
    const s = sender();
    s.start();
    await finishExecution('exe-400', () => s.wake());
    await untilState('failed', 1);
    expect(await attempts()).toEqual([{ attempt: 1, status: 400, error: 'HTTP 400 is not retried', outcome: 'failed' }]);
    const audit = await auditText();
    expect(audit).toContain('"type":"notification.delivery_failed","code":"HR7104"');
    expect(audit).toContain(`"subscriptionId":"${id}"`);
    expect(audit).toContain(`"target":"${new URL(receiver.url).origin}"`);
    expect(counters.get('notification_deliveries_total', { outcome: 'failed' })).toBe(1);
    expect(logText).toContain('"event":"notification.gave_up"');
  });

  it('retries a network error (connection cut before an answer)', async () => {
    await subscribe();
    receiver.answer = (r, n) => (n === 1 ? r.res.socket?.destroy() : r.res.writeHead(200).end());
    const s = sender();
    s.start();
    await finishExecution('exe-net', () => s.wake());
    await untilState('pending', 1);
    const [first] = await attempts();
    expect(first).toMatchObject({ attempt: 1, status: null, outcome: 'retry' });
    expect(first?.error).toMatch(/socket|closed|ECONNRESET/i);
    time.advance(DEFAULT_RETRY.maxDelayMs);
    await untilState('delivered', 2);
  });

  it('gives up after the last attempt', async () => {
    await subscribe();
    receiver.answer = (r) => r.res.writeHead(500).end();
    const s = sender({ retry: { ...DEFAULT_RETRY, maxAttempts: 3 } });
    s.start();
    await finishExecution('exe-500', () => s.wake());
    for (const n of [1, 2]) {
      await untilState('pending', n);
      time.advance(DEFAULT_RETRY.maxDelayMs);
    }
    await untilState('failed', 3);
    expect((await delivery()).last_error).toBe('gave up after 3 attempts; last: HTTP 500');
    expect(receiver.requests).toHaveLength(3);
  });

  it('survives a restart: a delivery pending when the coordinator stopped goes out from the new process', async () => {
    await subscribe();
    receiver.answer = (r, n) => r.res.writeHead(n === 1 ? 503 : 200).end();
    const first = sender();
    first.start();
    await finishExecution('exe-restart', () => first.wake());
    await untilState('pending', 1);
    await first.stop();
    await data.close();
    logText = '';
    // A new process: the store reopened, a new sender, the clock past the retry time.
    data = await openDataDir(join(dir, 'data'), time.now);
    time.advance(DEFAULT_RETRY.maxDelayMs);
    sender().start();
    await untilState('delivered', 2);
    expect(logText).toContain('"event":"notification.resumed","pending":1');
  });

  it('sends what was queued but never attempted before a crash (the outbox row committed with the state change)', async () => {
    await subscribe();
    await finishExecution('exe-crash');
    expect((await delivery()).attempts).toBe(0);
    sender().start();
    await untilState('delivered', 1);
  });

  it('gives up at once, saying why, when the sealed secret does not open (another data dir key)', async () => {
    await subscribe();
    await finishExecution('exe-key');
    box = await SecretBox.open(join(dir, 'other.key'));
    sender().start();
    await untilState('failed', 1);
    expect((await delivery()).last_error).toBe("the subscription's sealed secret does not open with this data dir's keys/secrets.key: rotate its secret");
    expect(receiver.requests).toHaveLength(0);
  });

  it('a disabled subscription queues nothing; switched back on, it does again (each switch audited)', async () => {
    const { id } = await subscribe();
    const subs = new Subscriptions(data.db, new NotificationStore(data.db), box, data.audit, log, time.now);
    expect((await subs.setEnabled(id, false, ADMIN)).enabled).toBe(false);
    expect(await finishExecution('exe-off')).toBe(0);
    expect((await subs.setEnabled(id, true, ADMIN)).enabled).toBe(true);
    expect(await finishExecution('exe-on')).toBe(1);
    expect((await data.db.all<{ execution_id: string }>('SELECT execution_id FROM notification_deliveries')).map((r) => r.execution_id)).toEqual(['exe-on']);
    expect((await auditText()).match(/"type":"notification.subscription_changed"/g)).toHaveLength(2);
    await expect(subs.setEnabled('ntf-nothere', true, ADMIN)).rejects.toThrow('no notification subscription ntf-nothere');
  });

  it('a state change with no subscriber to its event runs no query; a subscription added, removed or rolled back is seen by the next one', async () => {
    // Nothing subscribed yet: the answer (and the cached "nobody listens") comes first.
    expect(await finishExecution('exe-none')).toBe(0);
    // Subscribed to another event only: still nothing for execution.finished.
    await subscribe(receiver.url, ['execution.started']);
    expect(await finishExecution('exe-other-event')).toBe(0);
    // A subscription whose transaction rolls back is never matched.
    const store = new NotificationStore(data.db);
    await expect(
      data.db.write(async (tx) => {
        await store.insertSubscription(tx, { id: 'ntf-rolledback', url: receiver.url, scope: { kind: 'all' }, events: ['execution.finished'], enabled: true, description: null, createdBy: 'admin', createdAt: T0, secretRotatedAt: null }, Buffer.alloc(1));
        // Read inside the uncommitted transaction: the cache may hold the uncommitted row now.
        expect(await store.matching(tx, 'execution.finished', 'exe-none')).toEqual(['ntf-rolledback']);
        throw new Error('the subscription was not written');
      }),
    ).rejects.toThrow('the subscription was not written');
    expect(await finishExecution('exe-after-rollback')).toBe(0);
    // Added for real (through another store on the same database): the very next change matches.
    const { id } = await subscribe();
    expect(await finishExecution('exe-subscribed')).toBe(1);
    // Removed: the next change matches nothing again.
    await new Subscriptions(data.db, new NotificationStore(data.db), box, data.audit, log, time.now).remove(id, ADMIN);
    expect(await finishExecution('exe-removed')).toBe(0);
  });

  it('a rolled-back state change queues nothing', async () => {
    await subscribe();
    const outbox = new Outbox(new NotificationStore(data.db), 'https://handrail.example.com', time.now, () => undefined);
    await expect(
      data.db.write(async (tx) => {
        await tx.run("INSERT INTO executions (id, kind, requested_by, state, created_at) VALUES ('exe-rb', 'adhoc', 'alice', 'failed', 1)");
        await outbox.queue(tx, 'execution.finished', 'exe-rb');
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    expect(await data.db.all('SELECT id FROM notification_deliveries')).toEqual([]);
  });

  it('caps requests in flight per receiver: a hanging one holds two slots, not all', async () => {
    await subscribe();
    const held: Received[] = [];
    receiver.answer = (r) => held.push(r);
    const s = sender({ perTargetConcurrency: 2 });
    s.start();
    for (const id of ['exe-h1', 'exe-h2', 'exe-h3']) await finishExecution(id, () => s.wake());
    await waitFor(() => held.length === 2, 10_000, 'two held requests');
    // The loop has looked again since (it sleeps after each look): the third is still not sent.
    const looks = time.waits.length;
    s.wake();
    await waitFor(() => time.waits.length > looks, 10_000, 'another look at the outbox');
    expect(held).toHaveLength(2);
    expect(s.inFlightCount).toBe(2);
    held[0]?.res.writeHead(200).end();
    await waitFor(() => held.length === 3, 10_000, 'the third request');
    for (const r of held.slice(1)) r.res.writeHead(200).end();
    await waitFor(async () => (await data.db.all("SELECT id FROM notification_deliveries WHERE state = 'delivered'")).length === 3, 10_000, 'all delivered');
  });

  it('removing a subscription cancels its pending deliveries; rotating signs the next attempt with the new secret', async () => {
    const { id, secret } = await subscribe();
    const subs = new Subscriptions(data.db, new NotificationStore(data.db), box, data.audit, log, time.now);
    receiver.answer = (r, n) => r.res.writeHead(n === 1 ? 503 : 200).end();
    const s = sender();
    s.start();
    await finishExecution('exe-rot', () => s.wake());
    await untilState('pending', 1);
    const rotated = await subs.rotate(id, ADMIN);
    expect(rotated.secret).not.toBe(secret);
    time.advance(DEFAULT_RETRY.maxDelayMs);
    await untilState('delivered', 2);
    const r = receiver.requests[1] as Received;
    const check = (k: string): boolean => verifyWebhook({ secret: k, timestamp: r.headers[WEBHOOK_HEADERS.timestamp] as string, deliveryId: r.headers[WEBHOOK_HEADERS.delivery] as string, body: r.body, signature: r.headers[WEBHOOK_HEADERS.signature] as string, nowMs: time.t }).ok;
    expect([check(rotated.secret), check(secret)]).toEqual([true, false]);

    receiver.answer = (x) => x.res.writeHead(503).end();
    await finishExecution('exe-rm', () => s.wake());
    await waitFor(async () => (await data.db.get<{ n: number }>("SELECT count(*) AS n FROM notification_attempts a JOIN notification_deliveries d ON d.id = a.delivery_id WHERE d.execution_id = 'exe-rm'"))?.n === 1, 10_000, 'one failed attempt');
    expect(await subs.remove(id, ADMIN)).toEqual({ canceledDeliveries: 1 });
    expect((await data.db.get<{ state: string }>("SELECT state FROM notification_deliveries WHERE execution_id = 'exe-rm'"))?.state).toBe('canceled');
    expect(await subs.list()).toEqual([]);
    const audit = await auditText();
    for (const type of ['notification.subscription_created', 'notification.secret_rotated', 'notification.subscription_removed']) expect(audit).toContain(`"type":"${type}"`);
    for (const k of [secret, rotated.secret]) {
      expect(audit).not.toContain(k);
      expect(logText).not.toContain(k);
    }
    // Stored sealed: the secret's bytes are nowhere in the store file's rows.
    const rows = await data.db.all<{ secret_sealed: Buffer }>('SELECT secret_sealed FROM notification_subscriptions');
    for (const row of rows) expect(row.secret_sealed.includes(Buffer.from(rotated.secret))).toBe(false);
  });
});
