/** Reconnect delays: exponential with full jitter, capped (pure; random injected). */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** Delay before attempt `attempt` (0-based): uniform in [ceiling/2, ceiling] so a fleet does not reconnect in lockstep. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, Math.max(0, attempt)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** A stream that held this long was healthy: the next loss starts the backoff over. */
export const HEALTHY_STREAM_MS = 5_000;

/**
 * The delay before the next dial after a stream or dial attempt failed, and the attempt count
 * to carry: `lastedMs` is how long the lost stream was up (0 if it never got a Welcome).
 */
export function reconnectDelay(attempt: number, lastedMs: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): { ms: number; nextAttempt: number } {
  const a = lastedMs > HEALTHY_STREAM_MS ? 0 : attempt;
  return { ms: backoffDelay(a, policy, random), nextAttempt: a + 1 };
}
