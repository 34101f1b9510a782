import { describe, expect, it } from 'vitest';
import { backoffMs, decide, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, type AttemptResult, type Decision } from '../../coordinator/notify/retry-policy.js';

const NOW = Date.UTC(2026, 11, 3, 9, 0, 0);
const config = { maxAttempts: 5, maxAgeMs: 3_600_000, baseDelayMs: 1_000, maxDelayMs: 600_000 };
const response = (status: number, retryAfter: string | null = null): AttemptResult => ({ kind: 'response', status, retryAfter });
const at = (ms: number, reason: string): Decision => ({ kind: 'retry', at: NOW + ms, reason });

describe('notification retry policy', () => {
  it.each<[string, AttemptResult, number, Decision]>([
    ['200 is delivered', response(200), 1, { kind: 'delivered' }],
    ['204 is delivered', response(204), 3, { kind: 'delivered' }],
    ['503 waits the first backoff (random 0.5: 3/4 of 1 s)', response(503), 1, at(750, 'HTTP 503')],
    ['500 on the third attempt waits 3/4 of 4 s', response(500), 3, at(3_000, 'HTTP 500')],
    ['408 is retried', response(408), 1, at(750, 'HTTP 408')],
    ['429 with Retry-After seconds waits exactly that', response(429, '120'), 1, at(120_000, 'HTTP 429')],
    ['503 with a Retry-After date waits until then', response(503, new Date(NOW + 90_000).toUTCString()), 1, at(90_000, 'HTTP 503')],
    ['a Retry-After date in the past means now', response(503, new Date(NOW - 5_000).toUTCString()), 1, at(0, 'HTTP 503')],
    ['an unreadable Retry-After falls back to the backoff', response(503, 'soon'), 1, at(750, 'HTTP 503')],
    ['a huge Retry-After is capped at the longest wait', response(429, '86400'), 1, at(600_000, 'HTTP 429')],
    ['a network error is retried', { kind: 'error', error: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9' }, 2, at(1_500, 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9')],
    ['a timeout is retried', { kind: 'error', error: 'timed out after 10000 ms' }, 1, at(750, 'timed out after 10000 ms')],
    ['400 is permanent', response(400), 1, { kind: 'failed', reason: 'HTTP 400 is not retried' }],
    ['401, 403, 404 and 410 are permanent', response(410), 1, { kind: 'failed', reason: 'HTTP 410 is not retried' }],
    ['a redirect is not followed', response(301), 1, { kind: 'failed', reason: 'HTTP 301 is not retried (redirects are not followed)' }],
    ['the last attempt gives up', response(503), 5, { kind: 'failed', reason: 'gave up after 5 attempts; last: HTTP 503' }],
  ])('%s', (_name, result, attempt, expected) => {
    expect(decide({ result, attempt, queuedAt: NOW, now: NOW, random: 0.5, config })).toEqual(expected);
  });

  it('gives up when the next attempt would fall past the maximum age', () => {
    expect(decide({ result: response(503, '600'), attempt: 2, queuedAt: NOW - 3_300_000, now: NOW, random: 0.5, config })).toEqual({
      kind: 'failed',
      reason: 'gave up: the next attempt would be later than 60 min after the event; last: HTTP 503',
    });
  });

  it('backoff doubles, is jittered between half and all of its ceiling, and is capped', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 0, config))).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 0.999999, config))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(backoffMs(40, 1, config)).toBe(600_000);
    expect(backoffMs(40, 0, config)).toBe(300_000);
  });

  it('the default schedule keeps trying for hours, within a day', () => {
    const total = Array.from({ length: DEFAULT_RETRY.maxAttempts - 1 }, (_, i) => backoffMs(i + 1, 1, DEFAULT_RETRY)).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(3_600_000);
    expect(total).toBeLessThan(DEFAULT_RETRY.maxAgeMs);
  });

  it.each([[200, false], [302, false], [400, false], [404, false], [408, true], [429, true], [500, true], [599, true]])('status %d retryable: %s', (status, expected) => {
    expect(isRetryableStatus(status)).toBe(expected);
  });

  it.each<[string | null, number | null]>([[null, null], ['0', 0], [' 7 ', 7_000], ['-1', null], ['1.5', null], ['', null], ['Wed, 03 Dec 2026 09:01:00 GMT', 60_000]])('Retry-After %j is %j ms', (v, ms) => {
    expect(parseRetryAfter(v, NOW)).toBe(ms);
  });
});
