/**
 * What the web layer knows about the client of a request: its address, whether it reached us
 * over TLS, and the origin its pages were served from. Behind a reverse proxy that terminates
 * TLS (`trustProxy`), the proxy's X-Forwarded-Proto / -Host / -For headers say so; without that
 * setting they are ignored, since any client could send them.
 */
import type { Context } from 'hono';
import { remoteAddress } from './bearer.js';

export interface ClientTrust {
  /** Believe X-Forwarded-* headers (only behind a proxy that sets them and strips clients' own). */
  readonly trustProxy: boolean;
}

const first = (v: string | undefined): string | undefined => v?.split(',')[0]?.trim() || undefined;

/** The client's address; behind a trusted proxy, the last hop the proxy added to X-Forwarded-For. */
export function clientAddress(c: Context, t: ClientTrust): string {
  if (t.trustProxy) {
    const hops = (c.req.header('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    const last = hops.at(-1);
    if (last) return last.slice(0, 100);
  }
  return remoteAddress(c);
}

/** Whether the browser talks to us over TLS (directly, or to a trusted proxy in front). */
export function isHttps(c: Context, t: ClientTrust): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  return t.trustProxy && first(c.req.header('x-forwarded-proto'))?.toLowerCase() === 'https';
}

/** `scheme://host[:port]` of this request as the browser sees it: what a same-origin Origin header says. */
export function requestOrigin(c: Context, t: ClientTrust): string {
  const url = new URL(c.req.url);
  const host = (t.trustProxy ? first(c.req.header('x-forwarded-host')) : undefined) ?? c.req.header('host') ?? url.host;
  return `${isHttps(c, t) ? 'https' : 'http'}://${host.toLowerCase()}`;
}
