/**
 * Login throttling (pure, clock passed in): failed password logins are counted per user name
 * and per client address in a sliding window; once either count reaches its limit, further
 * attempts for that name or from that address are refused unchecked until the oldest failure
 * leaves the window. A success clears the user's count (not the address's: one good password
 * must not reset a spray from the same address).
 *
 * The per-user limit lets someone lock a user out for one window by failing on purpose; that
 * is the usual price of stopping a password guesser who rotates addresses, and the window is short.
 */

export interface ThrottleRule {
  readonly maxFailures: number;
  readonly windowMs: number;
}

export interface LoginThrottleRules {
  readonly perUser: ThrottleRule;
  readonly perAddress: ThrottleRule;
}

/** 5 failures per user name and 20 per address within 15 minutes. */
export const DEFAULT_LOGIN_THROTTLE: LoginThrottleRules = {
  perUser: { maxFailures: 5, windowMs: 15 * 60_000 },
  perAddress: { maxFailures: 20, windowMs: 15 * 60_000 },
};

export type ThrottleVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number; readonly by: 'user' | 'address' };

export class LoginThrottle {
  /** Key → failure times, oldest first, at most the rule's limit long. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly rules: LoginThrottleRules = DEFAULT_LOGIN_THROTTLE,
    private readonly maxKeys = 50_000,
  ) {}

  check(userName: string, address: string, now: number): ThrottleVerdict {
    const u = this.blockedFor(userKey(userName), this.rules.perUser, now);
    const a = this.blockedFor(addressKey(address), this.rules.perAddress, now);
    if (u === 0 && a === 0) return { allowed: true };
    return u >= a ? { allowed: false, retryAfterMs: u, by: 'user' } : { allowed: false, retryAfterMs: a, by: 'address' };
  }

  recordFailure(userName: string, address: string, now: number): void {
    this.add(userKey(userName), this.rules.perUser, now);
    this.add(addressKey(address), this.rules.perAddress, now);
  }

  recordSuccess(userName: string): void {
    this.failures.delete(userKey(userName));
  }

  /** 0 when not blocked, else how long until the oldest counted failure leaves the window. */
  private blockedFor(key: string, rule: ThrottleRule, now: number): number {
    const list = this.live(key, rule, now);
    if (list.length < rule.maxFailures) return 0;
    return Math.max(1, (list[0] as number) + rule.windowMs - now);
  }

  private live(key: string, rule: ThrottleRule, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => t > now - rule.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }

  private add(key: string, rule: ThrottleRule, now: number): void {
    if (!this.failures.has(key) && this.failures.size >= this.maxKeys) this.prune(now);
    const list = [...this.live(key, rule, now), now].slice(-rule.maxFailures);
    this.failures.set(key, list);
  }

  private prune(now: number): void {
    const longest = Math.max(this.rules.perUser.windowMs, this.rules.perAddress.windowMs);
    for (const [k, list] of this.failures) if ((list.at(-1) ?? 0) <= now - longest) this.failures.delete(k);
    // Still full: forget the oldest keys rather than grow without bound.
    for (const k of this.failures.keys()) {
      if (this.failures.size < this.maxKeys) break;
      this.failures.delete(k);
    }
  }
}

const userKey = (name: string): string => `u:${name.toLowerCase().slice(0, 64)}`;
const addressKey = (address: string): string => `a:${address}`;
