/**
 * The coordinator's HTTP layer (Hono): the REST API under /api/v1, the portal's pages
 * (web/pages/portal.ts), Prometheus metrics and health probes, the agent installer's downloads
 * under /install, and the public webhook endpoint /hooks/{id} (HMAC-signed instead of a bearer token).
 *
 * Every route is declared with its request schemas (@hono/zod-openapi): a request with an
 * unknown field, a wrong type or a value out of range is refused with 400 naming the field,
 * before any handler runs, and the OpenAPI 3.1 document at /api/v1/openapi.json is generated
 * from those same schemas. Bodies are bounded (413). One error handler maps every error kind to
 * a status and the one error body (web/errors.ts); nothing a caller sends reaches a 5xx.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Logger } from 'pino';
import { HTTPException } from 'hono/http-exception';
import type { Database } from '../coordinator/store/database.js';
import type { AgentRegistry } from '../coordinator/registry/agent-registry.js';
import type { User, UserStore } from '../coordinator/auth/user-store.js';
import type { Catalog, ReloadReport } from '../coordinator/runbooks/catalog.js';
import type { AdhocRunner } from '../coordinator/engine/adhoc.js';
import type { ExecutionAccess } from '../coordinator/engine/execution-access.js';
import type { Counters } from '../coordinator/metrics/counters.js';
import type { Readiness } from '../coordinator/health/readiness.js';
import { HandrailError, RefusedError } from '../core/errors.js';
import type { RefusalRecord } from '../coordinator/audit/refusal-log.js';
import { runbookRoutes } from './api/runbooks.js';
import { approvalRoutes } from './api/approvals.js';
import type { AuthFailureHook } from './auth/bearer.js';
import type { Authorizer } from './auth/authorizer.js';
import { errorBody, errorResponse } from './errors.js';
import { requestId } from './request-id.js';
import { accessLog } from './access-log.js';
import { agentRoutes } from './api/agents.js';
import { adhocRoutes } from './api/adhoc.js';
import { executionRoutes, type ExecutionControl } from './api/executions.js';
import type { FeedSource } from './api/execution-events.js';
import { apiRouter, type ApiEnv } from './api/router.js';
import { notificationRoutes, scopeCatalogOf, type NotificationAdmin } from './api/notifications.js';
import { DEFAULT_MAX_BODY_BYTES, limitBody } from './body-limit.js';
import { errorResponses, json, NOTHING } from './validation/schemas.js';
import { validationHook } from './validation/hook.js';
import { installRoutes } from './install/routes.js';
import { installCommandRoutes, type InstallCommandDeps } from './api/install-command.js';
import { webhookRoutes, type WebhookControl } from './api/webhooks.js';
import { mountHookRoutes, type WebhookReceiver } from './hooks/receive.js';

export interface WebLimits {
  /** Largest request body taken (413 above). */
  readonly maxBodyBytes: number;
  /** The coordinator's cap on stored output per stream (an ad-hoc request may not ask for more). */
  readonly maxOutputBytes: number;
}
import type { SessionStore } from '../coordinator/auth/session-store.js';
import type { PasswordLogin } from '../coordinator/auth/password-login.js';
import type { ClientTrust } from './auth/client-request.js';
import { sessionOrBearer } from './auth/session-or-bearer.js';
import { reportRoutes } from './api/reports.js';
import { auditRoutes } from './api/audit.js';
import type { AuditTrail } from '../coordinator/audit/audit-trail.js';
import { portalRoutes } from './pages/portal.js';

export interface WebDeps {
  /**
   * A read-only connection to the store, for every read the API and the portal make of it
   * (executions, their history, output, approvals, reports, the pages that show them): it sees
   * only what has committed. A read on the writer's connection would see the rows of a
   * transaction still in progress, which may yet roll back, and would wait behind each of its
   * statements. Writes go through the services (executions, registry, notifications, webhooks…),
   * which answer once they have committed; a later read here sees them.
   */
  readonly reader: Database;
  /** Revocations; agents are read through `reader`. */
  readonly registry: AgentRegistry;
  readonly users: UserStore;
  readonly adhoc: AdhocRunner;
  readonly executions: ExecutionControl;
  readonly catalog: Catalog;
  readonly reloadCatalog: (user: User) => Promise<ReloadReport>;
  /** Executions' lossless event streams (coordinator/engine/execution-feed.ts). */
  readonly feed: FeedSource;
  /** Who may see which executions and agents. */
  readonly access: ExecutionAccess;
  /** The audit trail for readers (GET /api/v1/audit/…, the portal's /audit page). */
  readonly auditTrail: AuditTrail;
  readonly counters: Counters;
  /** Outbound notification subscriptions (admin). */
  readonly notifications: NotificationAdmin;
  readonly authz: Authorizer;
  /** Defining webhooks (admin API) and receiving their deliveries (POST /hooks/{id}). */
  readonly webhooks: WebhookControl;
  readonly hookReceiver: WebhookReceiver;
  readonly isOnline: (agentId: string) => boolean;
  readonly now: () => number;
  readonly onAuthFailure?: AuthFailureHook;
  /** A request refused for authorization reasons, to audit; the answer does not wait for it. */
  readonly onRefused?: (r: RefusalRecord) => void;
  readonly log: Logger;
  readonly limits?: Partial<WebLimits>;
  /** Portal logins (web/pages/): sessions, password login, and what to believe of a proxy in front. */
  readonly sessions: SessionStore;
  readonly logins: PasswordLogin;
  readonly trust: ClientTrust;
  /** Agent installation: GET /install/… and POST /api/v1/agents/install-command (absent: neither). */
  readonly install?: InstallCommandDeps;
  /** For /readyz: store writable, gateway listening, runbooks loaded. */
  readonly readiness: () => Promise<Readiness>;
}

/** Where the OpenAPI document is served (without a token: it describes the API, not its data). */
export const OPENAPI_PATH = '/api/v1/openapi.json';

const Alive = z.object({ alive: z.literal(true), uptimeSeconds: z.number() }).openapi('Alive');
const ReadinessBody = z
  .object({
    ready: z.boolean(),
    phase: z.enum(['starting', 'serving', 'draining', 'stopped']),
    checks: z.array(z.object({ name: z.enum(['store', 'gateway', 'runbooks']), ok: z.boolean(), detail: z.string() })),
  })
  .openapi('Readiness');

const WhoAmI = z.object({ user: z.object({ name: z.string(), groups: z.array(z.string()) }) }).openapi('WhoAmI');

export function createApp(d: WebDeps): OpenAPIHono<ApiEnv> {
  const limits: WebLimits = { maxBodyBytes: d.limits?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, maxOutputBytes: d.limits?.maxOutputBytes ?? 4 * 1024 * 1024 };
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: validationHook });
  app.use('*', requestId());
  app.use('*', accessLog(d.log));
  app.use('/api/*', limitBody(limits.maxBodyBytes));
  app.onError((e, c) => {
    // Audited here, once for every route; the answer is what it would be without the record.
    if (e instanceof RefusedError && d.onRefused) {
      const user: unknown = c.get('user');
      const name = typeof user === 'object' && user !== null && 'name' in user && typeof user.name === 'string' ? user.name : 'unknown';
      d.onRefused({ ...e.refusal, requestId: c.get('requestId'), user: name });
    }
    if (!(e instanceof HandrailError) && !(e instanceof HTTPException)) d.log.error({ event: 'http.internal_error', requestId: c.get('requestId'), method: c.req.method, path: c.req.path.slice(0, 200), err: e }, 'request failed');
    return errorResponse(c, e);
  });
  app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${c.req.path.slice(0, 200)}`, { requestId: c.get('requestId') }), 404));
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiToken', { type: 'http', scheme: 'bearer', description: 'an API token from `handrail user token NAME`' });

  // Public: registered before the API's authentication, which would otherwise run first.
  app.openapi(
    createRoute({ method: 'get', path: '/api/v1/health', tags: ['meta'], summary: 'Liveness', security: [], request: { query: NOTHING }, responses: { 200: json(z.object({ ok: z.literal(true) }), 'up'), ...errorResponses() } }),
    (c) => c.json({ ok: true as const }, 200),
  );
  app.openapi(
    createRoute({ method: 'get', path: '/healthz', tags: ['meta'], summary: 'Liveness: the process answers', security: [], request: { query: NOTHING }, responses: { 200: json(Alive, 'alive'), ...errorResponses() } }),
    (c) => c.json({ alive: true as const, uptimeSeconds: Math.round(process.uptime()) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/readyz',
      tags: ['meta'],
      summary: 'Readiness: store writable, agent gateway listening, runbooks loaded (503 with the failing checks otherwise)',
      security: [],
      request: { query: NOTHING },
      responses: { 200: json(ReadinessBody, 'ready'), 503: json(ReadinessBody, 'not ready: see checks'), ...errorResponses() },
    }),
    async (c) => {
      const r = await d.readiness();
      const body = { ready: r.ready, phase: r.phase, checks: r.checks.map((x) => ({ ...x })) };
      return r.ready ? c.json(body, 200) : c.json(body, 503);
    },
  );
  app.openapi(
    createRoute({ method: 'get', path: '/metrics', tags: ['meta'], summary: 'Prometheus metrics', security: [], request: { query: NOTHING }, responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: z.string() } } }, ...errorResponses() } }),
    async (c) => c.text(await d.counters.exposition(), 200, { 'content-type': d.counters.contentType }),
  );
  // Public too: a host installing the agent has no token (web/install/routes.ts says why that is safe).
  if (d.install) app.route('/install', installRoutes(d.install.kit, d.install.unavailable));
  // Public too: the HMAC signature is the authentication, and the body has its own, smaller limit.
  mountHookRoutes(app, d.hookReceiver);
  app.doc31(OPENAPI_PATH, {
    openapi: '3.1.0',
    info: {
      title: 'Handrail coordinator API',
      version: 'v1',
      description:
        'Runbook automation: runbooks, executions, approvals, agents, notifications, webhooks. Every request body and query is validated strictly (unknown fields are refused, 400 names the field); errors share one body.',
    },
    security: [{ apiToken: [] }],
  });

  const api = apiRouter();
  // API tokens; the portal's session cookie too, for GET and HEAD only (web/auth/session-or-bearer.ts).
  api.use('*', sessionOrBearer({ sessions: d.sessions, users: d.users, now: d.now, trust: d.trust }, d.onAuthFailure));
  api.openapi(
    createRoute({ method: 'get', path: '/whoami', tags: ['meta'], summary: 'The token\'s user', request: { query: NOTHING }, responses: { 200: json(WhoAmI, 'you'), ...errorResponses() } }),
    (c) => {
      const u = c.get('user');
      return c.json({ user: { name: u.name, groups: [...u.groups] } }, 200);
    },
  );
  api.route('/agents', agentRoutes(d.registry, d.reader, d.isOnline, d.access, d.authz, d.now));
  if (d.install) api.route('/agents', installCommandRoutes(d.install, d.authz));
  api.route('/adhoc', adhocRoutes(d.adhoc, d.authz, limits));
  api.route('/runbooks', runbookRoutes(d.catalog, d.authz, d.reloadCatalog));
  api.route('/approvals', approvalRoutes(d.reader, d.access));
  api.route('/executions', executionRoutes(d.reader, d.executions, d.feed, d.access, d.log));
  api.route(
    '/notifications',
    notificationRoutes(d.notifications, d.authz, scopeCatalogOf(d.catalog)),
  );
  api.route('/webhooks', webhookRoutes(d.webhooks, d.authz));
  api.route('/reports', reportRoutes(d.reader, d.access, d.catalog, d.now));
  api.route('/audit', auditRoutes(d.auditTrail, d.access));
  app.route('/api/v1', api);
  app.route('/', portalRoutes(d));
  return app;
}
