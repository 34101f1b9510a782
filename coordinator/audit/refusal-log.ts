/**
 * Audit records of refused requests (`request.refused`), bounded: a flood of refusals by one
 * user must not grow the audit log without bound. Like `agent.connection_refused` and
 * `login.failed`, records are rate-limited (core/rate-limiter.ts), here per user, action and
 * rule; the refusals not recorded are counted and the next record of the same key carries the
 * count (`suppressed`).
 *
 * A refusal's answer never waits for its record: a 404 that hides an execution must take as
 * long as the 404 of an unknown id, which writes nothing.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { AuditLog } from './audit-log.js';
import { AuditEvents } from './events.js';
import type { Refusal } from '../../core/errors.js';
import { RateLimiter } from '../../core/rate-limiter.js';

/** A refusal with who asked, and the id of the API request (X-Request-Id). */
export interface RefusalRecord extends Refusal {
  readonly requestId: string | null;
  readonly user: string;
}

export interface RefusalLogOptions {
  /** Records per user, action and rule taken at once. @default 5 */
  readonly burst?: number;
  /** Records per user, action and rule a minute after the burst. @default 5 */
  readonly perMinute?: number;
}

/** Keys whose suppressed counts are kept; past it the oldest counts are dropped (bounded memory). */
const MAX_SUPPRESSED_KEYS = 10_000;

/** Pure bookkeeping: whether a refusal of `key` is recorded now, and how many were not since the last record. */
export class RefusalThrottle {
  private readonly limiter: RateLimiter;
  private readonly suppressed = new Map<string, number>();

  constructor(o: RefusalLogOptions = {}) {
    const burst = o.burst ?? 5;
    this.limiter = new RateLimiter(burst, (o.perMinute ?? 5) / 60);
  }

  /** `record`: write a record now, carrying `suppressed`; otherwise the refusal is counted. */
  admit(key: string, nowMs: number): { record: true; suppressed: number } | { record: false } {
    if (this.limiter.take(key, nowMs)) {
      const suppressed = this.suppressed.get(key) ?? 0;
      this.suppressed.delete(key);
      return { record: true, suppressed };
    }
    if (!this.suppressed.has(key) && this.suppressed.size >= MAX_SUPPRESSED_KEYS) {
      const oldest = this.suppressed.keys().next();
      if (!oldest.done) this.suppressed.delete(oldest.value);
    }
    this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
    return { record: false };
  }
}

/** Record writes that run after the refusal was answered; settled() waits for those under way. */
export class PendingWrites {
  private readonly pending = new Set<Promise<void>>();

  track(write: Promise<void>): void {
    const p: Promise<void> = write.finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}

const refusalKey = (user: string, action: string, rule: string): string => JSON.stringify([user, action, rule]);

export class RefusalLog {
  private readonly throttle: RefusalThrottle;
  private readonly pending = new PendingWrites();

  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly now: () => number,
    options: RefusalLogOptions = {},
  ) {
    this.throttle = new RefusalThrottle(options);
  }

  /**
   * For refusals recorded as another event (a refused run's `policy.decided`, written by the
   * engine): whether to write one now under the same rate, and how many it left out.
   */
  admit(user: string, action: string, rule: string): { record: true; suppressed: number } | { record: false } {
    return this.throttle.admit(refusalKey(user, action, rule), this.now());
  }

  /**
   * Records a refusal (or counts it, when its key is over the rate), in the background: a
   * failed write is logged; settled() waits for the writes under way.
   */
  record(r: RefusalRecord): void {
    this.pending.track(this.write(r));
  }

  /** Resolves when every record under way is written (before the store closes). */
  async settled(): Promise<void> {
    await this.pending.settled();
  }

  private async write(r: RefusalRecord): Promise<void> {
    const admitted = this.throttle.admit(refusalKey(r.user, r.action, r.rule), this.now());
    const fields = { event: 'request.refused', requestId: r.requestId, user: r.user, action: r.action, targetId: r.targetId, runbookId: r.runbookId, rule: r.rule };
    if (!admitted.record) {
      this.log.info({ ...fields, audited: false }, 'request refused (over the audit rate: counted into the next record)');
      return;
    }
    try {
      await this.db.batch((tx) =>
        this.audit.append(tx, {
          type: AuditEvents.requestRefused,
          actor: { kind: 'user', id: r.user },
          data: { requestId: r.requestId, user: r.user, action: r.action, targetId: r.targetId, runbookId: r.runbookId, rule: r.rule, reason: r.reason, suppressed: admitted.suppressed },
        }),
      );
      this.log.info({ ...fields, audited: true, suppressed: admitted.suppressed }, 'request refused');
    } catch (e) {
      this.log.error({ ...fields, event: 'audit.append_failed', err: e }, 'auditing a refused request failed');
    }
  }
}
