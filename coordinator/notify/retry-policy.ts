/**
 * What happens after one delivery attempt: delivered, tried again later (when), or given up.
 * Pure: the sender (sender.ts) feeds it the attempt's outcome, the clock and a random number.
 *
 * Retried: network errors, timeouts, 408, 429 and 5xx. Permanent: every other status outside
 * 2xx (a 3xx too: redirects are not followed, a moved receiver must be reconfigured). Waits grow
 * exponentially with jitter, or follow the receiver's Retry-After; a delivery is given up after
 * `maxAttempts` attempts or once its next attempt would fall past `maxAgeMs` after it was queued.
 */

export interface RetryConfig {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** No attempt is made later than this after the delivery was queued. */
  readonly maxAgeMs: number;
  /** The wait after the first failed attempt, before jitter. */
  readonly baseDelayMs: number;
  /** The longest wait between two attempts (a Retry-After too). */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryConfig = { maxAttempts: 12, maxAgeMs: 24 * 3_600_000, baseDelayMs: 10_000, maxDelayMs: 3_600_000 };

export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number; readonly retryAfter: string | null }
  | { readonly kind: 'error'; readonly error: string };

export type Decision =
  | { readonly kind: 'delivered' }
  | { readonly kind: 'retry'; readonly at: number; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

export interface DecideInput {
  readonly result: AttemptResult;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly queuedAt: number;
  readonly now: number;
  /** In [0, 1). */
  readonly random: number;
  readonly config: RetryConfig;
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Retry-After as seconds or as an HTTP date, in milliseconds from `now`; null when absent or
 * unreadable (then the backoff applies). A date in the past means "now".
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^[0-9]{1,10}$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Exponential backoff with "equal jitter": half the wait is fixed, half random, so waits never collapse to zero. */
export function backoffMs(attempt: number, random: number, config: RetryConfig): number {
  const ceiling = Math.min(config.maxDelayMs, config.baseDelayMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

export function decide(i: DecideInput): Decision {
  const { result, config } = i;
  let why: string;
  let waitMs: number;
  if (result.kind === 'response') {
    if (result.status >= 200 && result.status <= 299) return { kind: 'delivered' };
    if (!isRetryableStatus(result.status)) return { kind: 'failed', reason: `HTTP ${result.status} is not retried${result.status >= 300 && result.status <= 399 ? ' (redirects are not followed)' : ''}` };
    why = `HTTP ${result.status}`;
    const asked = parseRetryAfter(result.retryAfter, i.now);
    waitMs = asked === null ? backoffMs(i.attempt, i.random, config) : Math.min(asked, config.maxDelayMs);
  } else {
    why = result.error;
    waitMs = backoffMs(i.attempt, i.random, config);
  }
  if (i.attempt >= config.maxAttempts) return { kind: 'failed', reason: `gave up after ${i.attempt} attempts; last: ${why}` };
  const at = i.now + waitMs;
  if (at > i.queuedAt + config.maxAgeMs) return { kind: 'failed', reason: `gave up: the next attempt would be later than ${Math.round(config.maxAgeMs / 60_000)} min after the event; last: ${why}` };
  return { kind: 'retry', at, reason: why };
}
