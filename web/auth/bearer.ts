/** API authentication: `Authorization: Bearer hru_…` API tokens, resolved to a user. */
import type { MiddlewareHandler } from 'hono';
import type { User, UserStore } from '../../coordinator/auth/user-store.js';
import { unauthenticated } from '../../core/errors.js';

export type AuthVariables = { user: User };

export function bearerAuth(users: UserStore, now: () => number): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw unauthenticated('missing API token: send "Authorization: Bearer <token>" (get one with `handrail user token NAME`)');
    const user = await users.authenticateToken(m[1] as string, now());
    if (!user) throw unauthenticated('API token is invalid, expired or revoked');
    c.set('user', user);
    await next();
  };
}
