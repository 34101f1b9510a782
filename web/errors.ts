/**
 * The one mapping from Handrail error kinds to HTTP responses for the web layer, and the one
 * error body: `{"error": {kind, message, hint?, details?, requestId?}}`. Hono's own
 * HTTPExceptions (malformed JSON, 413, 415) get the same body.
 */
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

/** The kind an HTTP status stands for, when Hono (not Handrail) decided it. */
export function kindForStatus(status: number): ErrorKind {
  switch (status) {
    case 401:
      return 'unauthenticated';
    case 403:
      return 'permission_denied';
    case 404:
      return 'not_found';
    case 408:
      return 'deadline_exceeded';
    case 413:
    case 431:
      return 'resource_exhausted';
    default:
      return status >= 500 ? 'internal' : 'invalid_argument';
  }
}

/** Messages for the statuses Hono raises itself, in Handrail's words. */
const HONO_MESSAGES: Record<number, string> = {
  400: 'request body must be JSON',
  413: 'request body too large',
  415: 'request body must be JSON (Content-Type: application/json)',
};

export function errorBody(kind: ErrorKind, message: string, extra: { hint?: string | undefined; details?: unknown; requestId?: string | undefined } = {}): ErrorBody {
  return {
    error: {
      kind,
      message,
      ...(extra.hint ? { hint: extra.hint } : {}),
      ...(extra.details !== undefined ? { details: extra.details } : {}),
      ...(extra.requestId ? { requestId: extra.requestId } : {}),
    },
  };
}

export function errorResponse(c: Context, e: unknown): Response {
  const id: unknown = c.get('requestId');
  const requestId = typeof id === 'string' ? id : undefined;
  if (e instanceof HandrailError) {
    return c.json(errorBody(e.kind, e.message, { hint: e.hint, details: e.details, requestId }), TO_HTTP[e.kind]);
  }
  if (e instanceof HTTPException) {
    const status = e.status as ContentfulStatusCode;
    const kind = kindForStatus(status);
    const message = e.message && !/^(Malformed JSON|Unsupported Media Type|Payload Too Large)/.test(e.message) ? e.message : (HONO_MESSAGES[status] ?? e.message);
    // The rest of an oversized body is not read: the connection ends with this answer, so that
    // a client does not send its next request after those bytes.
    if (status === 413) c.header('Connection', 'close');
    return c.json(errorBody(kind, message, { requestId }), status);
  }
  return c.json(errorBody('internal', 'internal error', { requestId }), 500);
}
