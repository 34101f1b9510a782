/**
 * Middleware every portal page shares: response headers (a strict Content-Security-Policy:
 * only our own stylesheet and script, no framing, forms only to us; no caching of pages
 * that show a user's data), the session, and the checks on a posted form (size, origin, CSRF token).
 */
import type { Env, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HandrailError, notFound } from '../../core/errors.js';
import { verifyFormPost } from '../auth/csrf.js';
import { sessionAuth } from '../auth/session.js';
import type { PortalDeps, PortalEnv } from './portal-env.js';

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Largest form body a page accepts. */
export const MAX_FORM_BYTES = 256 * 1024;

export const pageHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  const h = c.res.headers;
  h.set('content-security-policy', CONTENT_SECURITY_POLICY);
  h.set('x-content-type-options', 'nosniff');
  h.set('x-frame-options', 'DENY');
  h.set('referrer-policy', 'same-origin');
  h.set('cache-control', 'no-store');
};

/** Several middleware as one, run in order (a response from one ends the chain, as in Hono itself). */
export function chain<E extends Env>(...handlers: MiddlewareHandler<E>[]): MiddlewareHandler<E> {
  return async (c, next) => {
    const dispatch = async (i: number): Promise<void> => {
      const h = handlers[i];
      if (!h) return next();
      const res = await h(c, () => dispatch(i + 1));
      if (res instanceof Response && !c.finalized) c.res = res;
    };
    await dispatch(0);
  };
}

/** `page`: headers and a live session. `post`: the same plus the form checks; the form is then `c.get('form')`. */
export function pageMiddleware(d: PortalDeps): { readonly page: MiddlewareHandler<PortalEnv>; readonly post: MiddlewareHandler<PortalEnv> } {
  // The session sets only its own variables; the portal's env is a superset.
  const session = sessionAuth({ sessions: d.sessions, users: d.users, now: d.now, trust: d.trust }) as unknown as MiddlewareHandler<PortalEnv>;
  const limit = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new HandrailError('invalid_argument', `the form is larger than ${MAX_FORM_BYTES / 1024} KiB`);
    },
  }) as MiddlewareHandler<PortalEnv>;
  const csrf: MiddlewareHandler<PortalEnv> = async (c, next) => {
    c.set('form', await verifyFormPost(c, d.trust, c.get('csrfToken')));
    await next();
  };
  const admin: MiddlewareHandler<PortalEnv> = async (c, next) => {
    c.set('isAdmin', d.authz.decide(c.get('user'), 'admin').allowed);
    await next();
  };
  const headers = pageHeaders as MiddlewareHandler<PortalEnv>;
  return { page: chain(headers, session, admin), post: chain(headers, limit, session, admin, csrf) };
}

/** After `page` or `post` on an admin route: it does not exist for anyone else (404, as for anything policy hides). */
export const adminOnly: MiddlewareHandler<PortalEnv> = async (c, next) => {
  if (c.get('isAdmin') !== true) throw notFound('no such page');
  await next();
};
