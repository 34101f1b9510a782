/**
 * Request bodies are bounded: a body over the limit is refused with 413 and the one error body
 * before it is parsed (by Content-Length, or while it streams in without one).
 */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';

/** Large enough for any runbook form or ad-hoc script an agent would take (its messages are 1 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new HTTPException(413, { message: `request body is larger than the limit of ${maxBytes} bytes` });
    },
  });
}
