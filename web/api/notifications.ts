/**
 * /api/v1/notifications — outbound notification subscriptions (admin): list, create, remove,
 * switch on or off, rotate a secret, and one subscription's recent deliveries with every attempt. A secret is in a
 * response twice only: when the subscription is created and when its secret is rotated.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Subscriptions, WithSecret } from '../../coordinator/notify/subscriptions.js';
import { DEFAULT_EVENTS } from '../../coordinator/notify/subscriptions.js';
import { NOTIFICATION_EVENTS, type AttemptRecord, type DeliveryRecord, type SubscriptionRecord, type SubscriptionScope } from '../../coordinator/store/notifications.js';
import { MAX_URL_LENGTH } from '../../coordinator/notify/receiver-url.js';
import { invalidArgument, permissionDenied } from '../../core/errors.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { Catalog } from '../../coordinator/runbooks/catalog.js';
import type { User } from '../../coordinator/auth/user-store.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, handrailId, json, NOTHING, optionalBody, queryInt, requiredBody, RUNBOOK_ID, strictObject, TEAM } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';
import { nearest } from '../../core/document-schema.js';
import { echo } from '../../core/echo.js';

/** What the admin API needs of the subscriptions (coordinator/notify/subscriptions.ts). */
export type NotificationAdmin = Pick<Subscriptions, 'list' | 'create' | 'remove' | 'rotate' | 'deliveries' | 'setEnabled'>;

export interface SubscriptionView {
  id: string;
  url: string;
  scope: 'all' | 'runbook' | 'team';
  runbook: string | null;
  team: string | null;
  events: Array<(typeof NOTIFICATION_EVENTS)[number]>;
  enabled: boolean;
  description: string | null;
  createdBy: string;
  createdAt: string;
  secretRotatedAt: string | null;
}

const SubscriptionSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    scope: z.enum(['all', 'runbook', 'team']),
    runbook: z.string().nullable().openapi({ description: 'the runbook id, for scope runbook' }),
    team: z.string().nullable().openapi({ description: "the runbooks' owner team, for scope team" }),
    events: z.array(z.enum(NOTIFICATION_EVENTS)),
    enabled: z.boolean(),
    description: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
    secretRotatedAt: z.string().nullable(),
  })
  .openapi('NotificationSubscription');

export type SubscriptionSchemaMatches = Expect<Same<z.infer<typeof SubscriptionSchema>, SubscriptionView>>;

export interface AttemptView {
  attempt: number;
  startedAt: string;
  durationMs: number;
  status: number | null;
  error: string | null;
  outcome: 'delivered' | 'retry' | 'failed';
}

export interface DeliveryView {
  id: string;
  event: string;
  executionId: string;
  state: 'pending' | 'delivered' | 'failed' | 'canceled';
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  finishedAt: string | null;
  attemptLog: AttemptView[];
}

const DeliverySchema = z
  .object({
    id: z.string(),
    event: z.string(),
    executionId: z.string(),
    state: z.enum(['pending', 'delivered', 'failed', 'canceled']),
    attempts: z.number(),
    createdAt: z.string(),
    nextAttemptAt: z.string().nullable().openapi({ description: 'while pending' }),
    lastStatus: z.number().nullable(),
    lastError: z.string().nullable(),
    finishedAt: z.string().nullable(),
    attemptLog: z.array(
      z.object({ attempt: z.number(), startedAt: z.string(), durationMs: z.number(), status: z.number().nullable(), error: z.string().nullable(), outcome: z.enum(['delivered', 'retry', 'failed']) }),
    ),
  })
  .openapi('NotificationDelivery');

export type DeliverySchemaMatches = Expect<Same<z.infer<typeof DeliverySchema>, DeliveryView>>;

export const CreateSubscriptionBody = strictObject({
  url: z.string().min(1).max(MAX_URL_LENGTH).openapi({ description: 'the receiver: an http:// or https:// URL (no user name or password)' }),
  runbook: RUNBOOK_ID.optional().openapi({ description: 'only executions of this runbook' }),
  team: TEAM.optional().openapi({ description: 'only executions of runbooks this team owns' }),
  events: z.array(z.enum(NOTIFICATION_EVENTS)).min(1).max(NOTIFICATION_EVENTS.length).optional().openapi({ description: `default ${DEFAULT_EVENTS.join(', ')}` }),
  enabled: z.boolean().optional().openapi({ description: 'default true' }),
  description: z.string().max(200).optional(),
}).openapi('NewNotificationSubscription');

const WithSecretSchema = z
  .object({ subscription: SubscriptionSchema, secret: z.string().openapi({ description: 'the HMAC secret, shown only now: the receiver verifies x-handrail-signature with it' }) })
  .openapi('NotificationSubscriptionWithSecret');

const ID = z.object({ id: handrailId('ntf', 'a notification subscription id').openapi({ param: { name: 'id', in: 'path' } }) });
const tags = ['notifications'];
const listRoute = createRoute({ method: 'get', path: '/', tags, summary: 'Notification subscriptions (admin)', request: { query: NOTHING }, responses: { 200: json(z.object({ subscriptions: z.array(SubscriptionSchema) }).openapi('NotificationSubscriptionList'), 'the subscriptions'), ...errorResponses(403) } });
const createRoute_ = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Subscribe a receiver URL to execution events (admin)',
  description: 'Scope: `runbook`, or `team`, or neither for every execution. The response carries the generated secret, once.',
  request: { query: NOTHING, body: requiredBody(CreateSubscriptionBody) },
  responses: { 201: json(WithSecretSchema, 'created'), ...errorResponses(403, 413, 415) },
});
const removeRoute = createRoute({
  method: 'delete',
  path: '/{id}',
  tags,
  summary: 'Remove a subscription; its pending deliveries are canceled (admin)',
  request: { params: ID, query: NOTHING },
  responses: { 200: json(z.object({ id: z.string(), canceledDeliveries: z.number() }).openapi('NotificationSubscriptionRemoved'), 'removed'), ...errorResponses(403, 404) },
});
const rotateRoute = createRoute({
  method: 'post',
  path: '/{id}/rotate-secret',
  tags,
  summary: 'Replace the secret at once; the new one is returned, once (admin)',
  request: { params: ID, query: NOTHING, body: optionalBody(NOTHING) },
  responses: { 200: json(WithSecretSchema, 'rotated'), ...errorResponses(403, 404, 413, 415) },
});
const changeRoute = createRoute({
  method: 'patch',
  path: '/{id}',
  tags,
  summary: 'Switch a subscription on or off (admin)',
  description: 'While off, events queue no deliveries for it; deliveries already queued still go out.',
  request: { params: ID, query: NOTHING, body: requiredBody(strictObject({ enabled: z.boolean() }).openapi('NotificationSubscriptionChange')) },
  responses: { 200: json(SubscriptionSchema, 'the subscription'), ...errorResponses(403, 404, 413, 415) },
});
const deliveriesRoute = createRoute({
  method: 'get',
  path: '/{id}/deliveries',
  tags,
  summary: "A subscription's recent deliveries, newest first, with every attempt (admin)",
  request: { params: ID, query: strictObject({ limit: queryInt(1, 500).optional().openapi({ description: 'default 50' }) }) },
  responses: { 200: json(z.object({ deliveries: z.array(DeliverySchema) }).openapi('NotificationDeliveryList'), 'the deliveries'), ...errorResponses(403, 404) },
});

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function subscriptionView(s: SubscriptionRecord): SubscriptionView {
  return {
    id: s.id,
    url: s.url,
    scope: s.scope.kind,
    runbook: s.scope.kind === 'runbook' ? s.scope.runbookId : null,
    team: s.scope.kind === 'team' ? s.scope.team : null,
    events: [...s.events],
    enabled: s.enabled,
    description: s.description,
    createdBy: s.createdBy,
    createdAt: new Date(s.createdAt).toISOString(),
    secretRotatedAt: iso(s.secretRotatedAt),
  };
}

export function deliveryView(d: DeliveryRecord & { readonly attemptLog: readonly AttemptRecord[] }): DeliveryView {
  return {
    id: d.id,
    event: d.event,
    executionId: d.executionId,
    state: d.state,
    attempts: d.attempts,
    createdAt: new Date(d.createdAt).toISOString(),
    nextAttemptAt: d.state === 'pending' ? new Date(d.nextAttemptAt).toISOString() : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    finishedAt: iso(d.finishedAt),
    attemptLog: d.attemptLog.map((a) => ({ attempt: a.attempt, startedAt: new Date(a.startedAt).toISOString(), durationMs: a.durationMs, status: a.status, error: a.error, outcome: a.outcome })),
  };
}

const withSecret = (w: WithSecret): { subscription: SubscriptionView; secret: string } => ({ subscription: subscriptionView(w.subscription), secret: w.secret });

/** The loaded runbooks' ids and owners: a scope must name one that exists (a typo would never fire). */
export interface ScopeCatalog {
  runbookIds(): readonly string[];
  teams(): readonly string[];
}

/** The loaded runbooks and their owner teams, as a subscription's scope is checked against. */
export function scopeCatalogOf(catalog: Pick<Catalog, 'list'>): ScopeCatalog {
  return {
    runbookIds: () => catalog.list().map((l) => l.runbook.metadata.id),
    teams: () => [...new Set(catalog.list().map((l) => l.runbook.metadata.owner))],
  };
}

function checkScope(scope: SubscriptionScope, catalog: ScopeCatalog): void {
  const near = (word: string, known: readonly string[]): string => {
    const n = nearest(word, known);
    return n ? ` (did you mean "${n}"?)` : '';
  };
  if (scope.kind === 'runbook' && !catalog.runbookIds().includes(scope.runbookId)) {
    throw invalidArgument(`no runbook ${echo(scope.runbookId)} is loaded${near(scope.runbookId, catalog.runbookIds())}`, 'see `handrail runbooks ls`');
  }
  if (scope.kind === 'team' && !catalog.teams().includes(scope.team)) {
    throw invalidArgument(`no loaded runbook is owned by team ${echo(scope.team)}${near(scope.team, catalog.teams())}`, "a team is a runbook's metadata.owner");
  }
}

/** Creates a subscription from a validated body (the API route and the admin page both come here). */
export async function subscribe(admin: NotificationAdmin, catalog: ScopeCatalog, user: User, b: z.infer<typeof CreateSubscriptionBody>): Promise<WithSecret> {
  if (b.runbook !== undefined && b.team !== undefined) throw invalidArgument('invalid request: give "runbook" or "team", not both (neither: every execution)');
  const scope: SubscriptionScope = b.runbook !== undefined ? { kind: 'runbook', runbookId: b.runbook } : b.team !== undefined ? { kind: 'team', team: b.team } : { kind: 'all' };
  checkScope(scope, catalog);
  return admin.create({ url: b.url, scope, events: b.events ?? DEFAULT_EVENTS, enabled: b.enabled ?? true, description: b.description ?? null }, { kind: 'user', id: user.name });
}

export function notificationRoutes(admin: NotificationAdmin, authz: Authorizer, catalog: ScopeCatalog): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  const mustAdmin = (user: User): void => {
    const d = authz.decide(user, 'admin');
    if (!d.allowed) throw permissionDenied(`notification subscriptions are an admin action: ${d.reason}`);
  };
  const actor = (user: User): { kind: 'user'; id: string } => ({ kind: 'user', id: user.name });
  app.openapi(listRoute, async (c) => {
    mustAdmin(c.get('user'));
    return c.json({ subscriptions: (await admin.list()).map(subscriptionView) }, 200);
  });
  app.openapi(createRoute_, async (c) => {
    const user = c.get('user');
    mustAdmin(user);
    return c.json(withSecret(await subscribe(admin, catalog, user, c.req.valid('json'))), 201);
  });
  app.openapi(removeRoute, async (c) => {
    const user = c.get('user');
    mustAdmin(user);
    const { id } = c.req.valid('param');
    const r = await admin.remove(id, actor(user));
    return c.json({ id, canceledDeliveries: r.canceledDeliveries }, 200);
  });
  app.openapi(changeRoute, async (c) => {
    const user = c.get('user');
    mustAdmin(user);
    const { id } = c.req.valid('param');
    const { enabled } = c.req.valid('json');
    return c.json(subscriptionView(await admin.setEnabled(id, enabled, actor(user))), 200);
  });
  app.openapi(rotateRoute, async (c) => {
    const user = c.get('user');
    mustAdmin(user);
    const { id } = c.req.valid('param');
    return c.json(withSecret(await admin.rotate(id, actor(user))), 200);
  });
  app.openapi(deliveriesRoute, async (c) => {
    mustAdmin(c.get('user'));
    const { id } = c.req.valid('param');
    const { limit } = c.req.valid('query');
    return c.json({ deliveries: (await admin.deliveries(id, limit ?? 50)).map(deliveryView) }, 200);
  });
  return app;
}
