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
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new HTTPException(413, { message: `request body is larger than the limit of ${maxBytes} bytes` });
    },
  });
  // A GET or HEAD request has no body here (the Node adapter never hands one on), and asking the
  // adapter's request for its body builds a whole fetch Request (headers, AbortController) that
  // nothing else on a read needs.
  return (c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limit(c, next));
}
