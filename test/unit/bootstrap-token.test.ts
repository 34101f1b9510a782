import { describe, expect, it } from 'vitest';
import { checkBootstrapToken, generateTokenSecret, globMatch, hashToken, looksLikeToken, type BootstrapTokenRow } from '../../coordinator/registry/bootstrap-token.js';

const base: BootstrapTokenRow = { id: 'tok-1', expiresAt: 2000, usesAllowed: 2, uses: 0, revokedAt: null, labels: {}, namePattern: null };

describe('bootstrap tokens', () => {
  it.each([
    ['unknown', undefined, 'web-1', 1000, 'unknown'],
    ['revoked', { ...base, revokedAt: 500 }, 'web-1', 1000, 'revoked'],
    ['expired', base, 'web-1', 2000, 'expired'],
    ['used up', { ...base, uses: 2 }, 'web-1', 1000, 'used_up'],
    ['name not allowed', { ...base, namePattern: 'db-*' }, 'web-1', 1000, 'name_not_allowed'],
  ] as const)('refuses a token that is %s', (_n, row, name, now, reason) => {
    const v = checkBootstrapToken(row, name, now);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toBe(reason);
  });

  it('admits a current token with uses left and a matching name', () => {
    expect(checkBootstrapToken({ ...base, uses: 1, namePattern: 'web-?' }, 'web-1', 1999)).toEqual({ ok: true });
  });

  it('makes 256-bit secrets and stores only their hash', () => {
    const t = generateTokenSecret();
    expect(looksLikeToken(t)).toBe(true);
    expect(hashToken(t)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken(t)).not.toContain(t.slice(4));
    expect(generateTokenSecret()).not.toBe(t);
  });

  it.each(['', 'hrt_short', 'hrt_' + 'a'.repeat(42) + '!', 'xyz_' + 'a'.repeat(43), 'hrt_' + 'a'.repeat(400)])('treats %j as malformed', (t) => {
    expect(looksLikeToken(t)).toBe(false);
  });

  it.each([
    ['web-*', 'web-1', true],
    ['web-*', 'db-1', false],
    ['web-?', 'web-12', false],
    ['a.b', 'axb', false],
    ['*', 'anything', true],
  ])('glob %s vs %s is %s', (p, t, r) => {
    expect(globMatch(p, t)).toBe(r);
  });
});

import { RateLimiter } from '../../core/rate-limiter.js';

describe('rate limiter', () => {
  it('allows a burst, then refills at its rate, per key', () => {
    const r = new RateLimiter(3, 1);
    expect([r.take('a', 0), r.take('a', 0), r.take('a', 0), r.take('a', 0)]).toEqual([true, true, true, false]);
    expect(r.take('b', 0)).toBe(true);
    expect(r.take('a', 999)).toBe(false);
    expect(r.take('a', 1000)).toBe(true);
  });
});
