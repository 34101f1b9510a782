import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkDelivery, type DeliveryHeaders, type HookSecrets } from '../../coordinator/webhooks/delivery-check.js';
import { signWebhook, signedBytes } from '../../core/webhook-signature.js';

const NOW = Date.UTC(2026, 11, 3, 9, 0, 0);
const TS = String(NOW / 1000);
const BODY = Buffer.from('{"status":"firing"}');
const CURRENT = 'hrw_current-secret-current-secret';
const PREVIOUS = 'hrw_previous-secret-previous-secret';
const SECRETS: HookSecrets = { current: CURRENT, previous: { secret: PREVIOUS, until: NOW + 1000 } };

const signed = (secret: string, o: { ts?: string; delivery?: string; body?: Buffer } = {}): DeliveryHeaders => ({
  signature: signWebhook(secret, o.ts ?? TS, o.delivery ?? 'd-1', o.body ?? BODY),
  timestamp: o.ts ?? TS,
  delivery: o.delivery ?? 'd-1',
});

describe('webhook delivery check', () => {
  it('signs v1:<ts>:<delivery>: + the raw body bytes with HMAC-SHA256 (as openssl -hmac does)', () => {
    expect(signedBytes('1700000000', 'abc', Buffer.from('{}')).toString()).toBe('v1:1700000000:abc:{}');
    const h = signed(CURRENT);
    expect(h.signature).toBe(`sha256=${createHmac('sha256', CURRENT).update(`v1:${TS}:d-1:`).update(BODY).digest('hex')}`);
  });

  it.each<[string, DeliveryHeaders, HookSecrets, number, string | { secret: 'current' | 'previous' }]>([
    ['the current secret', signed(CURRENT), SECRETS, NOW, { secret: 'current' }],
    ['the previous secret within its grace', signed(PREVIOUS), SECRETS, NOW, { secret: 'previous' }],
    ['upper-case hex', { ...signed(CURRENT), signature: `sha256=${signed(CURRENT).signature!.slice(7).toUpperCase()}` }, SECRETS, NOW, { secret: 'current' }],
    ['a timestamp 5 min ahead', signed(CURRENT, { ts: String(NOW / 1000 + 300) }), SECRETS, NOW, { secret: 'current' }],
    ['a timestamp 5 min behind', signed(CURRENT, { ts: String(NOW / 1000 - 300) }), SECRETS, NOW, { secret: 'current' }],
    ['a 128-character delivery id', signed(CURRENT, { delivery: 'a.b_c:d-'.repeat(16) }), SECRETS, NOW, { secret: 'current' }],
    ['the previous secret after its grace', signed(PREVIOUS), SECRETS, NOW + 1000, 'bad_signature'],
    ['no previous secret', signed(PREVIOUS), { current: CURRENT, previous: null }, NOW, 'bad_signature'],
    ['another secret', signed('hrw_someone-else'), SECRETS, NOW, 'bad_signature'],
    ['a changed body', { ...signed(CURRENT, { body: Buffer.from('{"status":"resolved"}') }) }, SECRETS, NOW, 'bad_signature'],
    ['a changed timestamp', { ...signed(CURRENT), timestamp: String(NOW / 1000 + 1) }, SECRETS, NOW, 'bad_signature'],
    ['a changed delivery id', { ...signed(CURRENT), delivery: 'd-2' }, SECRETS, NOW, 'bad_signature'],
    ['a stale signature with a stale timestamp', signed(CURRENT, { ts: String(NOW / 1000 - 301) }), SECRETS, NOW, 'stale_timestamp'],
    ['a timestamp too far ahead', signed(CURRENT, { ts: String(NOW / 1000 + 301) }), SECRETS, NOW, 'stale_timestamp'],
    ['a stale timestamp with a bad signature (signature first)', { ...signed('hrw_x', { ts: '1' }) }, SECRETS, NOW, 'bad_signature'],
    ['no signature', { ...signed(CURRENT), signature: undefined }, SECRETS, NOW, 'missing_headers'],
    ['no timestamp', { ...signed(CURRENT), timestamp: undefined }, SECRETS, NOW, 'missing_headers'],
    ['no delivery id', { ...signed(CURRENT), delivery: undefined }, SECRETS, NOW, 'missing_headers'],
    ['a signature without its scheme', { ...signed(CURRENT), signature: signed(CURRENT).signature!.slice(7) }, SECRETS, NOW, 'malformed_headers'],
    ['a sha1 signature', { ...signed(CURRENT), signature: `sha1=${'0'.repeat(40)}` }, SECRETS, NOW, 'malformed_headers'],
    ['a short signature', { ...signed(CURRENT), signature: 'sha256=abcd' }, SECRETS, NOW, 'malformed_headers'],
    ['two signatures joined', { ...signed(CURRENT), signature: `${signed(CURRENT).signature}, ${signed(CURRENT).signature}` }, SECRETS, NOW, 'malformed_headers'],
    ['a timestamp in milliseconds', signed(CURRENT, { ts: String(NOW) + '0' }), SECRETS, NOW, 'malformed_headers'],
    ['a timestamp with a sign', { ...signed(CURRENT), timestamp: `+${TS}` }, SECRETS, NOW, 'malformed_headers'],
    ['a delivery id with a space', signed(CURRENT, { delivery: 'a b' }), SECRETS, NOW, 'malformed_headers'],
    ['a delivery id of 129 characters', signed(CURRENT, { delivery: 'x'.repeat(129) }), SECRETS, NOW, 'malformed_headers'],
    ['an empty delivery id', { ...signed(CURRENT), delivery: '' }, SECRETS, NOW, 'malformed_headers'],
  ])('%s', (_name, headers, secrets, nowMs, expected) => {
    const r = checkDelivery({ headers, body: BODY, secrets, nowMs });
    if (typeof expected === 'string') {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toBe(expected);
    } else {
      expect(r).toMatchObject({ ok: true, secret: expected.secret });
    }
  });

  it('never repeats a secret in its messages', () => {
    for (const headers of [signed('hrw_wrong'), { ...signed(CURRENT), timestamp: '1' }, signed(CURRENT, { ts: '1' })]) {
      const r = checkDelivery({ headers, body: BODY, secrets: SECRETS, nowMs: NOW });
      expect(JSON.stringify(r)).not.toMatch(/current-secret|previous-secret/);
    }
  });
});
