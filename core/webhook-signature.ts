/**
 * The HMAC signature of Handrail webhooks, both ways: outbound notifications sign with it and
 * inbound webhooks (and receivers, in any language) verify with it. Pure: values in, values out.
 *
 *   x-handrail-timestamp: unix seconds
 *   x-handrail-delivery:  the delivery's id
 *   x-handrail-signature: sha256=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + delivery + ":" + body)>
 *
 * The timestamp and the delivery id are signed with the body so that a captured request cannot
 * be replayed later (the verifier bounds the timestamp's age) nor under another delivery id.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_SCHEME = 'v1';
export const SIGNATURE_PREFIX = 'sha256=';
/** How far a verifier lets the signed timestamp be from its own clock, by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export const WEBHOOK_HEADERS = {
  event: 'x-handrail-event',
  delivery: 'x-handrail-delivery',
  timestamp: 'x-handrail-timestamp',
  signature: 'x-handrail-signature',
} as const;

/** The exact bytes that are signed (the timestamp as sent: unix seconds). */
export function signedBytes(timestamp: number | string, deliveryId: string, body: string | Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${SIGNATURE_SCHEME}:${timestamp}:${deliveryId}:`, 'utf8'), typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/** Lower-case hex HMAC-SHA256 of signedBytes(); the secret's UTF-8 bytes are the key (as `openssl dgst -hmac "$SECRET"`). */
export function signatureHex(secret: string, timestamp: number | string, deliveryId: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(signedBytes(timestamp, deliveryId, body)).digest('hex');
}

/** The x-handrail-signature header value: `sha256=<hex>`. */
export function signWebhook(secret: string, timestamp: number | string, deliveryId: string, body: string | Uint8Array): string {
  return SIGNATURE_PREFIX + signatureHex(secret, timestamp, deliveryId, body);
}

/** Whether `presentedHex` (64 hex digits, either case) is the signature under `secret`; compared in constant time. */
export function signatureMatches(secret: string, timestamp: number | string, deliveryId: string, body: string | Uint8Array, presentedHex: string): boolean {
  const expected = Buffer.from(signatureHex(secret, timestamp, deliveryId, body), 'hex');
  const presented = Buffer.from(presentedHex, 'hex');
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

export interface VerifyInput {
  readonly secret: string;
  /** The x-handrail-timestamp header as received. */
  readonly timestamp: string | undefined;
  readonly deliveryId: string | undefined;
  readonly body: string | Uint8Array;
  readonly signature: string | undefined;
  /** The verifier's clock, in milliseconds. */
  readonly nowMs: number;
  readonly toleranceSeconds?: number;
}

export type VerifyResult = { readonly ok: true } | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'stale' | 'mismatch'; readonly message: string };

/** Checks a received request; the comparison takes the same time whatever the signature. */
export function verifyWebhook(v: VerifyInput): VerifyResult {
  if (!v.timestamp || !v.deliveryId || !v.signature) return { ok: false, reason: 'missing', message: `needs the ${WEBHOOK_HEADERS.timestamp}, ${WEBHOOK_HEADERS.delivery} and ${WEBHOOK_HEADERS.signature} headers` };
  if (!/^[0-9]{1,12}$/.test(v.timestamp)) return { ok: false, reason: 'malformed', message: `${WEBHOOK_HEADERS.timestamp} must be unix seconds` };
  if (!v.signature.startsWith(SIGNATURE_PREFIX) || !/^[0-9a-f]{64}$/.test(v.signature.slice(SIGNATURE_PREFIX.length))) {
    return { ok: false, reason: 'malformed', message: `${WEBHOOK_HEADERS.signature} must be ${SIGNATURE_PREFIX} and 64 hex digits` };
  }
  const ts = Number(v.timestamp);
  const tolerance = v.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(v.nowMs / 1000 - ts) > tolerance) return { ok: false, reason: 'stale', message: `the timestamp is more than ${tolerance} s from now` };
  const expected = Buffer.from(signWebhook(v.secret, ts, v.deliveryId, v.body), 'utf8');
  const given = Buffer.from(v.signature, 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'mismatch', message: 'the signature does not match' };
  return { ok: true };
}
