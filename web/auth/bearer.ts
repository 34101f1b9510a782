/** API authentication: `Authorization: Bearer hru_…` API tokens, resolved to a user. */
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { User, UserStore } from '../../coordinator/auth/user-store.js';
import { unauthenticated } from '../../core/errors.js';

export type AuthVariables = { user: User };

/** Called when a request presents a token that does not authenticate. */
export type AuthFailureHook = (remote: string, reason: string) => void;

export function remoteAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function bearerAuth(users: UserStore, now: () => number, onFailure?: AuthFailureHook): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthenticated('missing API token: send "Authorization: Bearer <token>" (get one with `handrail user token NAME`)');
    const user = await users.authenticateToken(m[1] as string, now());
    if (!user) {
      onFailure?.(remoteAddress(c), 'invalid, expired or revoked API token');
      throw unauthenticated('API token is invalid, expired or revoked');
    }
    c.set('user', user);
    await next();
  };
}
