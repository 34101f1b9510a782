/**
 * The one HMAC-SHA256 signing scheme of Handrail's webhooks, inbound (coordinator/webhooks) and
 * outbound (notifications): `sha256=<hex>` of HMAC-SHA256(secret, `v1:<timestamp>:<delivery>:` +
 * the raw body bytes). The timestamp (unix seconds) and the delivery id are inside the MAC, so a
 * captured request cannot be replayed under another time or id. The key is the secret's UTF-8
 * bytes, so `openssl dgst -sha256 -hmac "$SECRET"` computes the same signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_VERSION = 'v1';
export const SIGNATURE_PREFIX = 'sha256=';

/** The exact bytes that are signed. */
export function signedBytes(timestamp: string, deliveryId: string, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${SIGNATURE_VERSION}:${timestamp}:${deliveryId}:`, 'utf8'), body]);
}

/** Lower-case hex HMAC-SHA256 of the signed bytes. */
export function signatureHex(secret: string, timestamp: string, deliveryId: string, body: Uint8Array): string {
  return createHmac('sha256', secret).update(signedBytes(timestamp, deliveryId, body)).digest('hex');
}

/** The `x-handrail-signature` header value. */
export function signatureHeader(secret: string, timestamp: string, deliveryId: string, body: Uint8Array): string {
  return `${SIGNATURE_PREFIX}${signatureHex(secret, timestamp, deliveryId, body)}`;
}

/** Whether `presentedHex` (64 lower- or upper-case hex digits) is the signature under `secret`; compared in constant time. */
export function signatureMatches(secret: string, timestamp: string, deliveryId: string, body: Uint8Array, presentedHex: string): boolean {
  const expected = Buffer.from(signatureHex(secret, timestamp, deliveryId, body), 'hex');
  const presented = Buffer.from(presentedHex, 'hex');
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}
