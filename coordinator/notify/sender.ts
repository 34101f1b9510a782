/**
 * The sender loop: takes due deliveries from the outbox, signs and POSTs each, and records every
 * attempt. Decisions (retry, when, give up) are retry-policy.ts's; this module does the I/O.
 *
 * It never blocks the engine: the engine only queues rows. At most `maxConcurrency` requests are
 * in flight, and at most `perTargetConcurrency` to one receiver (origin), so one slow receiver
 * cannot hold every slot. Deliveries are at-least-once: one in flight when the coordinator stops
 * is sent again after a restart (receivers deduplicate by x-handrail-delivery). The clock, the
 * timer, randomness and the HTTP client are injected.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { Counters } from '../metrics/counters.js';
import type { SecretBox } from '../pki/secret-box.js';
import type { DueDelivery, NotificationStore } from '../store/notifications.js';
import { decide, DEFAULT_RETRY, type AttemptResult, type Decision, type RetryConfig } from './retry-policy.js';
import { notificationBody, type QueuedPayload } from './payload.js';
import { receiverTarget } from './receiver-url.js';
import { openSecret } from './subscriptions.js';
import { signWebhook, WEBHOOK_HEADERS } from '../../core/webhook-signature.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

export interface PostRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly signal: AbortSignal;
}

/** One HTTP POST: resolves with the response's status (and Retry-After); rejects on a network error or abort. */
export type Poster = (req: PostRequest) => Promise<{ readonly status: number; readonly retryAfter: string | null }>;

/** Runs `fn` after `ms`; returns a function that cancels it. */
export type Schedule = (fn: () => void, ms: number) => () => void;

export interface SenderConfig {
  readonly retry: RetryConfig;
  /** One attempt's limit: connect, send, and the response's headers. */
  readonly timeoutMs: number;
  readonly maxConcurrency: number;
  readonly perTargetConcurrency: number;
  /** The longest the loop sleeps without looking at the outbox (a safety net for missed wake-ups). */
  readonly pollMs: number;
}

export const DEFAULT_SENDER: SenderConfig = { retry: DEFAULT_RETRY, timeoutMs: 10_000, maxConcurrency: 16, perTargetConcurrency: 2, pollMs: 30_000 };

export interface SenderDeps {
  readonly db: Database;
  readonly store: NotificationStore;
  readonly box: SecretBox;
  readonly audit: AuditLog;
  readonly counters: Counters;
  readonly log: Logger;
  readonly now: () => number;
  readonly random: () => number;
  readonly post: Poster;
  readonly schedule: Schedule;
  readonly config: SenderConfig;
}

/** The real client: fetch, redirects not followed, the response body discarded unread. */
export const fetchPoster: Poster = async (req) => {
  const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, redirect: 'manual', signal: req.signal });
  await res.body?.cancel().catch(() => undefined);
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
};

export const timerSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/** A network error as one short line (undici hides the useful part in `cause`). */
export function describeFailure(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || (e.cause instanceof Error && e.cause.name === 'TimeoutError'))) return `timed out after ${timeoutMs} ms`;
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return (code && !message.includes(code) ? `${code}: ${message}` : message).slice(0, 300);
}

export class NotificationSender {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly perTarget = new Map<string, number>();
  private readonly stopping = new AbortController();
  private cancelTimer: (() => void) | undefined;
  private scanning = false;
  /** The look at the outbox under way (stop() waits for it before the store closes). */
  private scanned: Promise<void> = Promise.resolve();
  private scanAgain = false;
  private stopped = false;

  constructor(private readonly d: SenderDeps) {}

  /** Looks for due deliveries now (after a restart: those left pending). */
  start(): void {
    this.d.store
      .pendingCount()
      .then((n) => {
        if (n > 0) this.d.log.info({ event: 'notification.resumed', pending: n }, `${n} notification deliveries pending`);
      })
      .catch((e: unknown) => this.d.log.error({ event: 'notification.scan_failed', err: e }, 'reading the notification outbox failed'));
    this.wake();
  }

  /** Something may be due: look now. Cheap to call often. */
  wake(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.scanAgain = true;
      return;
    }
    this.scanning = true;
    this.scanned = this.scan()
      .catch((e: unknown) => this.d.log.error({ event: 'notification.scan_failed', err: e }, 'reading the notification outbox failed'))
      .finally(() => {
        this.scanning = false;
        if (this.scanAgain && !this.stopped) {
          this.scanAgain = false;
          this.wake();
        }
      });
  }

  /** Deliveries being sent right now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Aborts requests in flight (they stay pending, sent again after a restart) and stops the loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.stopping.abort();
    await this.scanned;
    await Promise.all([...this.inFlight.values()]);
  }

  private async scan(): Promise<void> {
    const { d } = this;
    const free = d.config.maxConcurrency - this.inFlight.size;
    if (free > 0) {
      const due = await d.store.due(d.now(), free, new Set(this.inFlight.keys()));
      for (const row of due) {
        if (this.stopped || this.inFlight.size >= d.config.maxConcurrency) break;
        const target = receiverTarget(row.url);
        const busy = this.perTarget.get(target) ?? 0;
        // Picked up again when one of this receiver's requests ends (send() wakes the loop).
        if (busy >= d.config.perTargetConcurrency) continue;
        this.perTarget.set(target, busy + 1);
        const p = this.send(row, target).finally(() => {
          this.inFlight.delete(row.id);
          const n = (this.perTarget.get(target) ?? 1) - 1;
          if (n <= 0) this.perTarget.delete(target);
          else this.perTarget.set(target, n);
          this.wake();
        });
        this.inFlight.set(row.id, p);
      }
    }
    if (this.stopped) return;
    const next = await d.store.nextDueAt();
    if (this.stopped) return;
    const now = d.now();
    // Due now but held back (limits): the end of a request wakes the loop, no timer needed.
    const wait = next === null || next <= now ? d.config.pollMs : Math.min(next - now, d.config.pollMs);
    this.cancelTimer?.();
    this.cancelTimer = d.schedule(() => this.wake(), wait);
  }

  private async send(row: DueDelivery, target: string): Promise<void> {
    const { d } = this;
    const attempt = row.attempts + 1;
    const startedAt = d.now();
    const t0 = performance.now();
    let result: AttemptResult;
    let secret: string;
    try {
      secret = openSecret(d.box, row.subscriptionId, row.secretSealed);
    } catch {
      // Not something a later attempt fixes: the sealing key is not the one the secret was sealed with.
      return this.record(row, target, attempt, startedAt, 0, null, { kind: 'failed', reason: 'the subscription\'s sealed secret does not open with this data dir\'s keys/secrets.key: rotate its secret' });
    }
    try {
      const body = notificationBody(JSON.parse(row.payloadJson) as QueuedPayload, row.id, startedAt);
      const timestamp = Math.floor(startedAt / 1000);
      const headers = {
        'content-type': 'application/json',
        'user-agent': `Handrail-Notifications/${HANDRAIL_VERSION}`,
        [WEBHOOK_HEADERS.event]: row.event,
        [WEBHOOK_HEADERS.delivery]: row.id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signWebhook(secret, timestamp, row.id, body),
      };
      const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(d.config.timeoutMs)]);
      const r = await d.post({ url: row.url, headers, body, signal });
      result = { kind: 'response', status: r.status, retryAfter: r.retryAfter };
    } catch (e) {
      // Stopping: not an attempt. The delivery stays as it was and goes out after the restart.
      if (this.stopping.signal.aborted) return;
      result = { kind: 'error', error: describeFailure(e, d.config.timeoutMs) };
    }
    const durationMs = Math.round(performance.now() - t0);
    const decision = decide({ result, attempt, queuedAt: row.createdAt, now: d.now(), random: d.random(), config: d.config.retry });
    await this.record(row, target, attempt, startedAt, durationMs, result.kind === 'response' ? result.status : null, decision);
  }

  /** Stores the attempt and where the delivery stands (audited when given up), then counts and logs it. */
  private async record(row: DueDelivery, target: string, attempt: number, startedAt: number, durationMs: number, status: number | null, decision: Decision): Promise<void> {
    const { d } = this;
    const now = d.now();
    const error = decision.kind === 'delivered' ? null : decision.reason;
    const outcome = decision.kind === 'delivered' ? 'delivered' : decision.kind;
    const ids = { deliveryId: row.id, subscriptionId: row.subscriptionId, executionId: row.executionId, notification: row.event, target, attempt };
    try {
      const moved = await d.db.batch(async (tx) => {
        const ok = await d.store.recordAttempt(tx, row.id, { attempt, startedAt, durationMs, status, error, outcome }, {
          state: decision.kind === 'retry' ? 'pending' : decision.kind,
          nextAttemptAt: decision.kind === 'retry' ? decision.at : now,
          finishedAt: decision.kind === 'retry' ? null : now,
        });
        if (ok && decision.kind === 'failed') {
          await d.audit.append(tx, {
            type: AuditEvents.notificationGaveUp,
            actor: { kind: 'system', id: 'coordinator' },
            data: { deliveryId: row.id, subscriptionId: row.subscriptionId, executionId: row.executionId, event: row.event, target, attempts: attempt, reason: decision.reason },
          });
        }
        return ok;
      });
      if (!moved) return; // removed meanwhile: it stays canceled
    } catch (e) {
      d.log.error({ event: 'notification.record_failed', ...ids, err: e }, 'recording a notification attempt failed');
      return;
    }
    d.counters.inc('notification_deliveries_total', { outcome: decision.kind === 'retry' ? 'retried' : decision.kind });
    if (decision.kind === 'delivered') d.log.info({ event: 'notification.delivered', ...ids, status, durationMs }, 'notification delivered');
    else if (decision.kind === 'retry') d.log.warn({ event: 'notification.retry', ...ids, status, error, nextAttemptAt: new Date(decision.at).toISOString() }, 'notification attempt failed; retrying later');
    else d.log.warn({ event: 'notification.gave_up', ...ids, status, error }, 'notification given up');
  }
}
