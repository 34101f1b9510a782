/**
 * Request bodies are bounded: a body over the limit is refused with 413 and the one error body
 * before it is parsed (by Content-Length, or while it streams in without one).
 *
 * Served by @hono/node-server, the body is read here straight from Node's request stream, and
 * its bytes are handed to Hono's body cache (what `c.req.json()`, `text()` and `arrayBuffer()`
 * read) and to the adapter (`rawBody`, what `c.req.raw` would read). Asking the adapter for the
 * body instead builds a whole fetch Request around a web stream over the Node stream (headers,
 * AbortController, stream controller, a reader per chunk): on a small JSON post that was more
 * work than validating it. Without a Node request (`app.request()` in tests) Hono's own limit
 * applies.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';

/** Large enough for any runbook form or ad-hoc script an agent would take (its messages are 1 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

type NodeRequest = (IncomingMessage | Http2ServerRequest) & { rawBody?: Buffer };

/** The Node request under a Hono context, when @hono/node-server serves it. */
function nodeRequest(c: Context): NodeRequest | undefined {
  const env: unknown = c.env;
  if (typeof env !== 'object' || env === null || !('incoming' in env)) return undefined;
  const incoming = (env as { incoming?: unknown }).incoming;
  return typeof incoming === 'object' && incoming !== null && typeof (incoming as NodeRequest).on === 'function' ? (incoming as NodeRequest) : undefined;
}

export function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = (): HTTPException => new HTTPException(413, { message: `request body is larger than the limit of ${maxBytes} bytes` });
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  // UTF-8 as fetch's Request.text() decodes it (a leading BOM dropped, bad sequences replaced).
  const utf8 = new TextDecoder();
  // A GET or HEAD request has no body here (the Node adapter never hands one on), and asking the
  // adapter's request for its body builds a whole fetch Request (headers, AbortController) that
  // nothing else on a read needs.
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const incoming = nodeRequest(c);
    if (!incoming || incoming.rawBody !== undefined || incoming.readableEnded) return limit(c, next);
    const declared = incoming.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
    const body = await readAll(incoming, maxBytes, tooLarge);
    incoming.rawBody = body;
    const cache = c.req.bodyCache as Record<string, Promise<unknown>>;
    // The exact bytes first: a kind neither holds (blob, formData) is made from the first one cached.
    cache.arrayBuffer = Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    cache.text = Promise.resolve(utf8.decode(body));
    await next();
    return undefined;
  };
}

/** The whole body of a Node request, refused past `max` bytes (the rest is left unread). */
function readAll(incoming: NodeRequest, max: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        done();
        incoming.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (e: Error): void => {
      done();
      reject(new HTTPException(400, { message: 'the request body could not be read', cause: e }));
    };
    const onClose = (): void => {
      if (incoming.readableEnded) return;
      done();
      reject(new HTTPException(400, { message: 'the request body ended before its end' }));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}
