/**
 * Webhooks API (admin): define a hook bound to a runbook and a service user, list, remove, and
 * rotate its secret. The secret is in the answer to create and rotate only; it is never listed.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { User } from '../../coordinator/auth/user-store.js';
import type { DefineWebhook, WebhookView } from '../../coordinator/webhooks/webhook-admin.js';
import type { Json } from '../../coordinator/audit/secrets.js';
import { permissionDenied } from '../../core/errors.js';
import type { Authorizer } from '../auth/authorizer.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, handrailId, json, NOTHING, optionalBody, requiredBody, RUNBOOK_ID, safeRecord, strictObject, USER_NAME } from '../validation/schemas.js';

export interface WebhookControl {
  define(input: DefineWebhook, user: User): Promise<{ hook: WebhookView; secret: string }>;
  list(): Promise<WebhookView[]>;
  remove(id: string, user: User): Promise<void>;
  rotate(id: string, user: User, keepPrevious: boolean): Promise<{ hook: WebhookView; secret: string }>;
}

const PathSchema = z.string().max(256).openapi({ example: '$.alerts[0].labels.instance' });
const MappingSchema = strictObject({
  options: safeRecord(z.string().max(63), z.union([strictObject({ path: PathSchema, default: z.string().max(4096).optional() }), strictObject({ value: z.string().max(4096) })]), 64, 'an option name')
    .openapi({ description: 'runbook option name → {path, default?} (a JSON path into the payload) or {value} (fixed)' }),
  target: strictObject({ label: z.string().max(63), path: PathSchema }).optional().openapi({ description: 'narrow the targets to label=<value at path>' }),
}).openapi('WebhookMapping');

export const DefineWebhookBody = strictObject({
  runbook: RUNBOOK_ID,
  runAs: USER_NAME.openapi({ description: 'the service user the runbook runs as; policy decides what it may run' }),
  mapping: MappingSchema,
  description: z.string().max(200).optional(),
}).openapi('DefineWebhook');

const WebhookSchema = z
  .object({
    id: z.string(),
    runbookId: z.string(),
    runAs: z.string(),
    mapping: z.unknown(),
    description: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    rotatedAt: z.string().nullable(),
    previousSecretValidUntil: z.string().nullable(),
  })
  .openapi('Webhook');

const WithSecret = z
  .object({ webhook: WebhookSchema, secret: z.string().openapi({ description: 'shown once: sign deliveries with it (HMAC-SHA256)' }), url: z.string().openapi({ description: 'where to deliver (path)' }) })
  .openapi('WebhookWithSecret');

const RotateBody = strictObject({ keepPrevious: z.boolean().optional().openapi({ description: 'false: refuse the old secret at once (it leaked); default true: accept it for 24 h more' }) }).openapi('RotateWebhookSecret');

const HookIdParam = z.object({ id: handrailId('whk', 'a webhook id').openapi({ param: { name: 'id', in: 'path' } }) });

const tags = ['webhooks'];
const listRoute = createRoute({ method: 'get', path: '/', tags, summary: 'Inbound webhooks (admin)', request: { query: NOTHING }, responses: { 200: json(z.object({ webhooks: z.array(WebhookSchema) }).openapi('WebhookList'), 'the hooks'), ...errorResponses(403) } });
const createHookRoute = createRoute({ method: 'post', path: '/', tags, summary: 'Define a webhook (admin); the answer holds its secret, once', request: { query: NOTHING, body: requiredBody(DefineWebhookBody) }, responses: { 201: json(WithSecret, 'defined'), ...errorResponses(403, 404, 413, 415) } });
const removeRoute = createRoute({ method: 'delete', path: '/{id}', tags, summary: 'Remove a webhook (admin)', request: { params: HookIdParam, query: NOTHING }, responses: { 200: json(z.object({ removed: z.string() }), 'removed'), ...errorResponses(403, 404) } });
const rotateRoute = createRoute({
  method: 'post',
  path: '/{id}/rotate-secret',
  tags,
  summary: 'Give a webhook a new secret (admin); the old one is accepted for 24 h more unless keepPrevious is false',
  request: { params: HookIdParam, query: NOTHING, body: optionalBody(RotateBody) },
  responses: { 200: json(WithSecret, 'the new secret, once'), ...errorResponses(403, 404, 413, 415) },
});

const out = (h: WebhookView): z.infer<typeof WebhookSchema> => ({ ...h, mapping: h.mapping as Json });

export function webhookRoutes(hooks: WebhookControl, authz: Authorizer): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  const admin = (user: User, what: string): void => {
    const d = authz.decide(user, 'admin');
    if (!d.allowed) throw permissionDenied(`${what} is an admin action: ${d.reason}`);
  };
  app.openapi(listRoute, async (c) => {
    admin(c.get('user'), 'listing webhooks');
    return c.json({ webhooks: (await hooks.list()).map(out) }, 200);
  });
  app.openapi(createHookRoute, async (c) => {
    const user = c.get('user');
    admin(user, 'defining a webhook');
    const b = c.req.valid('json');
    const r = await hooks.define({ runbookId: b.runbook, runAs: b.runAs, mapping: b.mapping, description: b.description ?? null }, user);
    return c.json({ webhook: out(r.hook), secret: r.secret, url: `/hooks/${r.hook.id}` }, 201);
  });
  app.openapi(removeRoute, async (c) => {
    const user = c.get('user');
    admin(user, 'removing a webhook');
    const { id } = c.req.valid('param');
    await hooks.remove(id, user);
    return c.json({ removed: id }, 200);
  });
  app.openapi(rotateRoute, async (c) => {
    const user = c.get('user');
    admin(user, 'rotating a webhook secret');
    const { id } = c.req.valid('param');
    const { keepPrevious } = c.req.valid('json');
    const r = await hooks.rotate(id, user, keepPrevious ?? true);
    return c.json({ webhook: out(r.hook), secret: r.secret, url: `/hooks/${r.hook.id}` }, 200);
  });
  return app;
}
