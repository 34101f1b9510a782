/**
 * The public webhook endpoint, POST /hooks/{id}: no bearer token — the HMAC signature over the
 * body, timestamp and delivery id is the authentication (coordinator/webhooks/delivery-check.ts).
 * The body is read raw (the signature covers its exact bytes) and bounded at 256 KiB, without
 * reading the rest of a larger one. Each refusal has its own status and the one error body,
 * with `details.reason` naming it for the sender's logs.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorKind } from '../../core/errors.js';
import type { InboundDelivery, ReceiveResult, RefusalReason } from '../../coordinator/webhooks/webhook-service.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../coordinator/webhooks/delivery-check.js';
import { remoteAddress } from '../auth/bearer.js';
import { errorBody } from '../errors.js';
import type { ApiEnv } from '../api/router.js';
import { errorResponses, json } from '../validation/schemas.js';

export const MAX_HOOK_BODY_BYTES = 256 * 1024;

export interface WebhookReceiver {
  receive(delivery: InboundDelivery): Promise<ReceiveResult>;
}

const REFUSAL_STATUS: Record<RefusalReason, { status: ContentfulStatusCode; kind: ErrorKind }> = {
  unknown_hook: { status: 404, kind: 'not_found' },
  too_large: { status: 413, kind: 'resource_exhausted' },
  missing_headers: { status: 401, kind: 'unauthenticated' },
  malformed_headers: { status: 401, kind: 'unauthenticated' },
  bad_signature: { status: 401, kind: 'unauthenticated' },
  stale_timestamp: { status: 401, kind: 'unauthenticated' },
  replay: { status: 409, kind: 'already_exists' },
  not_json: { status: 400, kind: 'invalid_argument' },
  unmapped: { status: 400, kind: 'invalid_argument' },
  invalid: { status: 400, kind: 'invalid_argument' },
  denied: { status: 403, kind: 'permission_denied' },
  hook_broken: { status: 409, kind: 'failed_precondition' },
};

/** The body's bytes, or null as soon as it is known to be larger than `max`. */
async function readBounded(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > max) return null;
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

export function mountHookRoutes(app: OpenAPIHono<ApiEnv>, receiver: WebhookReceiver, maxBodyBytes = MAX_HOOK_BODY_BYTES): void {
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: '/hooks/{id}',
    tags: ['webhooks'],
    summary: 'Deliver a webhook (HMAC-signed; no API token)',
    description: `Starts the hook's runbook as its service user. Sign with HMAC-SHA256 over \`v1:<timestamp>:<delivery>:\` + the raw body; send ${SIGNATURE_HEADER}: sha256=<hex>, ${TIMESTAMP_HEADER} (unix seconds, within 5 minutes), ${DELIVERY_HEADER} (unique per delivery). At most ${maxBodyBytes} bytes.`,
    security: [],
    request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'whk-0123456789abcdef' }) }) },
    responses: {
      202: json(z.object({ executionId: z.string(), state: z.string() }).openapi('WebhookAccepted'), 'accepted: the execution started (or waits for approval)'),
      ...errorResponses(403, 404, 409, 413),
    },
  });
  app.post('/hooks/:id', async (c) => {
    const hookId = c.req.param('id');
    const body = await readBounded(c.req.raw, maxBodyBytes);
    const r = await receiver.receive({
      hookId,
      headers: { signature: c.req.header(SIGNATURE_HEADER), timestamp: c.req.header(TIMESTAMP_HEADER), delivery: c.req.header(DELIVERY_HEADER) },
      body,
      remote: remoteAddress(c),
      requestId: c.get('requestId'),
    });
    if (r.ok) return c.json({ executionId: r.executionId, state: r.state }, 202);
    const { status, kind } = REFUSAL_STATUS[r.reason];
    // The rest of an oversized body is not read: the connection ends with this answer.
    if (status === 413) c.header('Connection', 'close');
    const message = r.reason === 'too_large' ? `request body is larger than the limit of ${maxBodyBytes} bytes` : r.message;
    return c.json(errorBody(kind, message, { details: { reason: r.reason }, requestId: c.get('requestId') }), status);
  });
}
