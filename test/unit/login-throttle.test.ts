import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../coordinator/auth/login-throttle.js';

const rules = { perUser: { maxFailures: 3, windowMs: 60_000 }, perAddress: { maxFailures: 5, windowMs: 120_000 } };

describe('login throttle', () => {
  it('blocks a user name after its limit, until the oldest failure leaves the window', () => {
    const t = new LoginThrottle(rules);
    for (const at of [0, 10_000, 20_000]) {
      expect(t.check('alice', 'a1', at).allowed).toBe(true);
      t.recordFailure('alice', `addr-${at}`, at);
    }
    expect(t.check('alice', 'a9', 20_001)).toEqual({ allowed: false, retryAfterMs: 39_999, by: 'user' });
    expect(t.check('ALICE', 'a9', 20_001).allowed).toBe(false);
    expect(t.check('bob', 'a9', 20_001).allowed).toBe(true);
    expect(t.check('alice', 'a9', 60_000).allowed).toBe(true);
  });

  it('blocks an address after its limit, whatever the names', () => {
    const t = new LoginThrottle(rules);
    for (let i = 0; i < 5; i++) t.recordFailure(`user${i}`, '10.0.0.1', i);
    expect(t.check('someone', '10.0.0.1', 10)).toEqual({ allowed: false, retryAfterMs: 119_990, by: 'address' });
    expect(t.check('someone', '10.0.0.2', 10).allowed).toBe(true);
  });

  it('a success clears the user’s count but not the address’s', () => {
    const t = new LoginThrottle(rules);
    for (let i = 0; i < 2; i++) t.recordFailure('alice', '10.0.0.1', i);
    t.recordSuccess('alice');
    t.recordFailure('alice', '10.0.0.1', 5);
    t.recordFailure('alice', '10.0.0.1', 6);
    expect(t.check('alice', '10.0.0.9', 7).allowed).toBe(true);
    t.recordFailure('bob', '10.0.0.1', 8);
    expect(t.check('carol', '10.0.0.1', 9).allowed).toBe(false);
  });

  it('stays bounded in memory', () => {
    const t = new LoginThrottle(rules, 100);
    for (let i = 0; i < 1_000; i++) t.recordFailure(`u${i}`, `a${i}`, 1_000_000 + i);
    expect(t.check('u999', 'x', 1_000_999).allowed).toBe(true);
    expect((t as unknown as { failures: Map<string, number[]> }).failures.size).toBeLessThanOrEqual(100);
  });
});
