/**
 * Portal sessions in cookies: `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` with the
 * `__Host-` name prefix when the browser reaches us over TLS (directly or through a trusted
 * proxy). The cookie holds the session secret; the store keeps its hash
 * (coordinator/auth/session-store.ts), decides expiry (idle and absolute) and revocation.
 *
 * `sessionAuth` resolves the cookie to a user for the pages; a page without a live session
 * sends the browser to the login page and back.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { User, UserStore } from '../../coordinator/auth/user-store.js';
import type { SessionStore, WebSession } from '../../coordinator/auth/session-store.js';
import { isHttps, type ClientTrust } from './client-request.js';
import { csrfTokenFor } from './csrf.js';

export type SessionVariables = { user: User; session: WebSession; csrfToken: string };

const PLAIN_NAME = 'hr_session';
const TLS_NAME = '__Host-hr_session';

export function sessionCookieName(secure: boolean): string {
  return secure ? TLS_NAME : PLAIN_NAME;
}

export function setSessionCookie(c: Context, t: ClientTrust, secret: string, session: WebSession, now: number): void {
  const secure = isHttps(c, t);
  setCookie(c, sessionCookieName(secure), secret, {
    httpOnly: true,
    sameSite: 'Lax',
    path: '/',
    secure,
    // The browser drops it at the absolute expiry; idle expiry is the store's to decide.
    maxAge: Math.max(1, Math.floor((session.expiresAt - now) / 1000)),
  });
}

export function clearSessionCookie(c: Context, t: ClientTrust): void {
  const secure = isHttps(c, t);
  deleteCookie(c, sessionCookieName(secure), { path: '/', secure, httpOnly: true, sameSite: 'Lax' });
}

export interface SessionDeps {
  readonly sessions: SessionStore;
  readonly users: UserStore;
  readonly now: () => number;
  readonly trust: ClientTrust;
}

/** The live session and its (enabled) user for this request's cookie, or undefined. */
export async function currentSession(c: Context, d: SessionDeps): Promise<{ user: User; session: WebSession; secret: string } | undefined> {
  const secret = getCookie(c, sessionCookieName(isHttps(c, d.trust)));
  if (!secret) return undefined;
  const session = await d.sessions.resolve(secret, d.now());
  if (!session) return undefined;
  const user = await d.users.get(session.userName);
  if (!user || user.disabled) return undefined;
  return { user, session, secret };
}

/** Where the login page sends the browser back to: only a path on this site. */
export function safeNext(next: string | undefined): string {
  if (!next || next.length > 2000 || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\u0000-\u001f\u007f]/.test(next)) return '/';
  return next;
}

export function loginRedirect(c: Context): Response {
  const url = new URL(c.req.url);
  const next = c.req.method === 'GET' ? `${url.pathname}${url.search}` : '/';
  return c.redirect(next === '/' ? '/login' : `/login?next=${encodeURIComponent(next)}`, 303);
}

/** Pages: a live session or the login page. Sets `user`, `session` and the form token `csrfToken`. */
export function sessionAuth(d: SessionDeps): MiddlewareHandler<{ Variables: SessionVariables }> {
  return async (c, next) => {
    const found = await currentSession(c, d);
    if (!found) {
      // A stale cookie is dropped, so the browser stops sending it.
      if (getCookie(c, sessionCookieName(isHttps(c, d.trust)))) clearSessionCookie(c, d.trust);
      return loginRedirect(c);
    }
    c.set('user', found.user);
    c.set('session', found.session);
    c.set('csrfToken', csrfTokenFor(found.secret));
    await next();
    return undefined;
  };
}
