/** Receiver URLs as subscriptions accept them, and the part of one that logs and records may show (pure). */
import { invalidArgument } from '../../core/errors.js';
import { echo } from '../../core/echo.js';

export const MAX_URL_LENGTH = 2048;

/** Returns the URL as it will be called; throws invalid_argument saying what is wrong. */
export function checkReceiverUrl(text: string): string {
  if (text.length > MAX_URL_LENGTH) throw invalidArgument(`the receiver URL is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidArgument(`the receiver URL ${echo(text)} is not a URL`, 'give an absolute http:// or https:// URL, e.g. https://hooks.example.com/handrail');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidArgument(`the receiver URL must be http:// or https://, not ${echo(url.protocol)}`);
  if (url.hostname === '') throw invalidArgument('the receiver URL has no host');
  // Credentials in a URL end up in proxies' and receivers' logs; the signature authenticates us.
  if (url.username !== '' || url.password !== '') throw invalidArgument('the receiver URL must not carry a user name or password', 'the receiver authenticates Handrail by the x-handrail-signature header');
  if (url.hash !== '') throw invalidArgument('the receiver URL must not have a #fragment');
  return url.toString();
}

/**
 * What logs and audit records name a receiver by: its origin (scheme://host[:port]). A webhook
 * URL's path and query often are a credential of their own (chat webhooks), so they stay in the store.
 */
export function receiverTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid-url';
  }
}
