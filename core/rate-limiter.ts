/** A token bucket per key (e.g. per remote address), with the clock injected. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string, nowMs: number): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.prune(nowMs);
      b = { tokens: this.capacity, at: nowMs };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.capacity, b.tokens + ((nowMs - b.at) / 1000) * this.refillPerSecond);
    b.at = nowMs;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private prune(nowMs: number): void {
    const full = this.capacity / this.refillPerSecond;
    for (const [k, b] of this.buckets) if ((nowMs - b.at) / 1000 >= full) this.buckets.delete(k);
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}
