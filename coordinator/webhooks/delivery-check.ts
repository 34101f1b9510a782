/**
 * Is this inbound webhook request from the hook's sender, and fresh? Pure: headers, raw body,
 * the hook's secrets and the time in; a decision out. The signature is checked first (nothing
 * an unauthenticated sender claims is trusted), then the timestamp against a window around the
 * injected clock. Whether the delivery id was seen before is the store's question (replays).
 *
 * Headers: `x-handrail-signature: sha256=<hex>`, `x-handrail-timestamp: <unix seconds>`,
 * `x-handrail-delivery: <1-128 of [A-Za-z0-9._:-]>`; the scheme is core/webhook-signature.ts.
 */
import { SIGNATURE_PREFIX, signatureMatches } from '../../core/webhook-signature.js';

export const SIGNATURE_HEADER = 'x-handrail-signature';
export const TIMESTAMP_HEADER = 'x-handrail-timestamp';
export const DELIVERY_HEADER = 'x-handrail-delivery';

/** How far a request's timestamp may be from the coordinator's clock, either way. */
export const DEFAULT_WINDOW_MS = 5 * 60_000;

export type DeliveryRefusal = 'missing_headers' | 'malformed_headers' | 'bad_signature' | 'stale_timestamp';

export interface DeliveryHeaders {
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
  readonly delivery: string | undefined;
}

export interface HookSecrets {
  readonly current: string;
  /** The secret before the last rotation, accepted until `until` (ms). */
  readonly previous: { readonly secret: string; readonly until: number } | null;
}

export type DeliveryCheck =
  | { readonly ok: true; readonly deliveryId: string; readonly timestampMs: number; readonly secret: 'current' | 'previous' }
  | { readonly ok: false; readonly reason: DeliveryRefusal; readonly message: string; readonly deliveryId: string | null };

const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TIMESTAMP = /^[0-9]{1,12}$/;
const SIGNATURE = /^sha256=[0-9a-fA-F]{64}$/;

export function checkDelivery(input: { readonly headers: DeliveryHeaders; readonly body: Uint8Array; readonly secrets: HookSecrets; readonly nowMs: number; readonly windowMs?: number }): DeliveryCheck {
  const { signature, timestamp, delivery } = input.headers;
  const missing = [signature === undefined ? SIGNATURE_HEADER : null, timestamp === undefined ? TIMESTAMP_HEADER : null, delivery === undefined ? DELIVERY_HEADER : null].filter((h): h is string => h !== null);
  if (missing.length > 0) return refuse('missing_headers', `missing header${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`, null);
  if (delivery === undefined || !DELIVERY_ID.test(delivery)) return refuse('malformed_headers', `${DELIVERY_HEADER} must be 1 to 128 of A-Z a-z 0-9 . _ : -`, null);
  if (timestamp === undefined || !TIMESTAMP.test(timestamp)) return refuse('malformed_headers', `${TIMESTAMP_HEADER} must be unix seconds (digits only)`, delivery);
  if (signature === undefined || !SIGNATURE.test(signature)) return refuse('malformed_headers', `${SIGNATURE_HEADER} must be ${SIGNATURE_PREFIX}<64 hex digits>`, delivery);
  const hex = signature.slice(SIGNATURE_PREFIX.length);
  let which: 'current' | 'previous' | null = null;
  if (signatureMatches(input.secrets.current, timestamp, delivery, input.body, hex)) which = 'current';
  else if (input.secrets.previous && input.nowMs < input.secrets.previous.until && signatureMatches(input.secrets.previous.secret, timestamp, delivery, input.body, hex)) which = 'previous';
  if (which === null) return refuse('bad_signature', 'the signature does not match the body, timestamp and delivery id under this hook\'s secret', delivery);
  const timestampMs = Number(timestamp) * 1000;
  const windowMs = input.windowMs ?? DEFAULT_WINDOW_MS;
  if (Math.abs(input.nowMs - timestampMs) > windowMs) {
    return refuse('stale_timestamp', `${TIMESTAMP_HEADER} ${timestamp} is more than ${Math.round(windowMs / 1000)} s from the coordinator's clock (${Math.floor(input.nowMs / 1000)})`, delivery);
  }
  return { ok: true, deliveryId: delivery, timestampMs, secret: which };
}

function refuse(reason: DeliveryRefusal, message: string, deliveryId: string | null): DeliveryCheck {
  return { ok: false, reason, message, deliveryId };
}
