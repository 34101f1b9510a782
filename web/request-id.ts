/**
 * Every API request gets an id: sent back as `X-Request-Id` and in error bodies, and written into
 * the audit records the request causes (a refused run's `policy.decided`), so that a refusal a
 * caller saw can be matched to its record. Always generated here: an id the caller chose could
 * make one request's record look like another's.
 */
import type { MiddlewareHandler } from 'hono';
import { newId } from '../core/ids.js';

export type RequestIdVariables = { requestId: string };

export const REQUEST_ID_HEADER = 'X-Request-Id';

export function requestId(generate: () => string = () => newId('req')): MiddlewareHandler<{ Variables: RequestIdVariables }> {
  return async (c, next) => {
    const id = generate();
    c.set('requestId', id);
    c.header(REQUEST_ID_HEADER, id);
    await next();
  };
}
