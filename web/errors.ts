/** The one mapping from Handrail error kinds to HTTP responses for the web layer. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import { HandrailError, type ErrorKind } from '../core/errors.js';

const TO_HTTP: Record<ErrorKind, ContentfulStatusCode> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  failed_precondition: 409,
  resource_exhausted: 429,
  unavailable: 503,
  cancelled: 409,
  deadline_exceeded: 504,
  internal: 500,
};

export interface ErrorBody {
  /** `requestId`: the id the request's audit records carry (web/request-id.ts). */
  error: { kind: ErrorKind; message: string; hint?: string; details?: unknown; requestId?: string };
}

export function errorResponse(c: Context, e: unknown): Response {
  const id: unknown = c.get('requestId');
  const rid = typeof id === 'string' ? { requestId: id } : {};
  if (e instanceof HandrailError) {
    const body: ErrorBody = { error: { kind: e.kind, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...rid } };
    return c.json(body, TO_HTTP[e.kind]);
  }
  if (e instanceof HTTPException) {
    return c.json({ error: { kind: e.status === 401 ? 'unauthenticated' : 'invalid_argument', message: e.message, ...rid } }, e.status as ContentfulStatusCode);
  }
  return c.json({ error: { kind: 'internal', message: 'internal error', ...rid } }, 500);
}
