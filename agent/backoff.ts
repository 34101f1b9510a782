/** Reconnect delays: exponential with full jitter, capped (pure; random injected). */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  /**
   * For `recoveryWindowMs` after a healthy stream was lost, retries are at most this far apart:
   * a coordinator restart is short, and a fleet that backed off to the full ceiling meanwhile
   * would come back up to `maxMs` after the coordinator did. The coordinator paces what
   * arrives (it admits connections in turn), and a refused dial to a down host is cheap.
   */
  readonly recoveryMaxMs?: number;
  readonly recoveryWindowMs?: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, recoveryMaxMs: 4_000, recoveryWindowMs: 120_000 };

/** Delay before attempt `attempt` (0-based): uniform in [ceiling/2, ceiling] so a fleet does not reconnect in lockstep. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, Math.max(0, attempt)));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** A stream that held this long was healthy: the next loss starts the backoff over. */
export const HEALTHY_STREAM_MS = 5_000;

/**
 * The delay before the next dial after a stream or dial attempt failed, and the attempt count
 * to carry: `lastedMs` is how long the lost stream was up (0 if it never got a Welcome), and
 * `sinceHealthyLossMs` how long ago the last healthy stream was lost (see recoveryMaxMs).
 */
export function reconnectDelay(
  attempt: number,
  lastedMs: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
  sinceHealthyLossMs = Number.POSITIVE_INFINITY,
): { ms: number; nextAttempt: number } {
  const a = lastedMs > HEALTHY_STREAM_MS ? 0 : attempt;
  const recovering = lastedMs > HEALTHY_STREAM_MS || sinceHealthyLossMs < (policy.recoveryWindowMs ?? 0);
  const effective = recovering && policy.recoveryMaxMs !== undefined ? { ...policy, maxMs: Math.min(policy.maxMs, policy.recoveryMaxMs) } : policy;
  return { ms: backoffDelay(a, effective, random), nextAttempt: a + 1 };
}
