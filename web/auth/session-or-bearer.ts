/**
 * API authentication for both kinds of client: an `Authorization: Bearer` API token (CLI,
 * integrations), or the portal's session cookie — the latter for safe methods (GET, HEAD)
 * only, so that the portal's pages can read the API (the live event stream, raw output) while
 * no state-changing API call can ride on a cookie a browser sends by itself. A request with an
 * Authorization header is judged by it alone.
 *
 * Wiring: replaces `bearerAuth` on the /api/v1 sub-app (web/app.ts).
 */
import type { MiddlewareHandler } from 'hono';
import { unauthenticated } from '../../core/errors.js';
import { bearerAuth, type AuthFailureHook, type AuthVariables } from './bearer.js';
import { currentSession, type SessionDeps } from './session.js';

const SAFE_METHODS = new Set(['GET', 'HEAD']);

export function sessionOrBearer(d: SessionDeps, onFailure?: AuthFailureHook): MiddlewareHandler<{ Variables: AuthVariables }> {
  const bearer = bearerAuth(d.users, d.now, onFailure);
  return async (c, next) => {
    if (c.req.header('authorization') !== undefined || !SAFE_METHODS.has(c.req.method)) return bearer(c, next);
    const found = await currentSession(c, d);
    if (!found) throw unauthenticated('log in to the portal, or send "Authorization: Bearer <token>" (get one with `handrail user token NAME`)');
    c.set('user', found.user);
    await next();
    return undefined;
  };
}
