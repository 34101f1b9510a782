/**
 * Cross-site request forgery protection for the portal's forms, two independent checks:
 *
 *  1. Where the request comes from: a browser says it in `Sec-Fetch-Site` and `Origin`. A
 *     state-changing request must be same-origin by both headers when they are present
 *     (`same-site` is refused too: a sibling subdomain is another site's code).
 *  2. A synchronizer token tied to the session: every form carries `_csrf`, an HMAC of the
 *     session's cookie secret, so it is different per session, needs no storage, and cannot be
 *     read or guessed by another site. Before login (the login form itself) the token is a
 *     random value that must equal a short-lived cookie (double submit).
 *
 * Pure helpers here; the middleware turns a failure into a refusal the pages render.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { requestOrigin, type ClientTrust } from './client-request.js';

export const CSRF_FIELD = '_csrf';

export function csrfTokenFor(sessionSecret: string): string {
  return createHmac('sha256', sessionSecret).update('handrail portal csrf v1').digest('base64url');
}

export function newLoginNonce(): string {
  return randomBytes(24).toString('base64url');
}

export function tokensEqual(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export type OriginVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Check 1 over the request's headers (pure but for reading them). */
export function checkSameOrigin(c: Context, t: ClientTrust): OriginVerdict {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return { ok: false, reason: `Sec-Fetch-Site is ${site.slice(0, 20)}` };
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    const expected = requestOrigin(c, t);
    if (origin.toLowerCase() !== expected) return { ok: false, reason: `Origin ${origin.slice(0, 100)} is not ${expected}` };
  }
  return { ok: true };
}

export class CsrfRefusal extends Error {
  constructor(readonly reason: string) {
    super(`cross-site request refused: ${reason}`);
    this.name = 'CsrfRefusal';
  }
}

/** Both checks for a form post; throws CsrfRefusal. `expected` is the session's (or login nonce's) token. */
export async function verifyFormPost(c: Context, t: ClientTrust, expected: string | undefined): Promise<Record<string, string>> {
  const origin = checkSameOrigin(c, t);
  if (!origin.ok) throw new CsrfRefusal(origin.reason);
  const form = await formFields(c);
  if (!tokensEqual(form[CSRF_FIELD], expected)) throw new CsrfRefusal(form[CSRF_FIELD] === undefined ? 'the form has no CSRF token' : 'the CSRF token does not match this session');
  return form;
}

/** A url-encoded or multipart form's text fields (files ignored; a repeated field keeps its last value). */
export async function formFields(c: Context): Promise<Record<string, string>> {
  const type = c.req.header('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded') && !type.startsWith('multipart/form-data')) return {};
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) {
    const last = Array.isArray(v) ? v.at(-1) : v;
    if (typeof last === 'string') out[k] = last;
  }
  return out;
}
