/**
 * The coordinator's HTTP layer (Hono): the REST API under /api/v1 and Prometheus metrics.
 * One error handler maps every error kind to a status (web/errors.ts).
 */
import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Database } from '../coordinator/store/database.js';
import type { AgentRegistry } from '../coordinator/registry/agent-registry.js';
import type { User, UserStore } from '../coordinator/auth/user-store.js';
import type { Catalog, ReloadReport } from '../coordinator/runbooks/catalog.js';
import { runbookRoutes } from './api/runbooks.js';
import { approvalRoutes } from './api/approvals.js';
import type { AdhocRunner } from '../coordinator/engine/adhoc.js';
import type { ExecutionEvents } from '../coordinator/engine/execution-events.js';
import type { Counters } from '../coordinator/metrics/counters.js';
import { bearerAuth, type AuthFailureHook, type AuthVariables } from './auth/bearer.js';
import type { Authorizer } from './auth/authorizer.js';
import { errorResponse } from './errors.js';
import { requestId, type RequestIdVariables } from './request-id.js';
import { agentRoutes } from './api/agents.js';
import { adhocRoutes } from './api/adhoc.js';
import { executionRoutes, type ExecutionControl } from './api/executions.js';
import type { OutputFeed } from './api/execution-events.js';

export interface WebDeps {
  readonly db: Database;
  readonly registry: AgentRegistry;
  readonly users: UserStore;
  readonly adhoc: AdhocRunner;
  readonly executions: ExecutionControl;
  readonly catalog: Catalog;
  readonly reloadCatalog: (user: User) => Promise<ReloadReport>;
  readonly executionEvents: ExecutionEvents;
  readonly output: OutputFeed;
  readonly counters: Counters;
  readonly authz: Authorizer;
  readonly isOnline: (agentId: string) => boolean;
  readonly gauges: () => Record<string, number>;
  readonly now: () => number;
  readonly onAuthFailure?: AuthFailureHook;
  readonly log: Logger;
}

export function createApp(d: WebDeps): Hono<{ Variables: AuthVariables & RequestIdVariables }> {
  const app = new Hono<{ Variables: AuthVariables & RequestIdVariables }>();
  app.use('*', requestId());
  app.onError((e, c) => errorResponse(c, e));
  app.notFound((c) => c.json({ error: { kind: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));
  app.get('/api/v1/health', (c) => c.json({ ok: true }));
  app.get('/metrics', (c) => c.text(d.counters.prometheus(d.gauges())));
  const api = new Hono<{ Variables: AuthVariables & RequestIdVariables }>();
  api.use('*', bearerAuth(d.users, d.now, d.onAuthFailure));
  api.get('/whoami', (c) => c.json({ user: c.get('user') }));
  api.route('/agents', agentRoutes(d.registry, d.isOnline));
  api.route('/adhoc', adhocRoutes(d.adhoc, d.authz));
  api.route('/runbooks', runbookRoutes(d.catalog, d.authz, d.reloadCatalog));
  api.route('/approvals', approvalRoutes(d.db));
  api.route(
    '/executions',
    executionRoutes(d.db, d.executions, { events: d.executionEvents, output: d.output }, (user, e) => {
      if (e.requestedBy === user.name) return true;
      if (e.kind !== 'runbook' || e.runbookId === null) return d.authz.decide(user, 'admin').allowed;
      const rb = d.catalog.get(e.runbookId)?.runbook.metadata;
      return d.authz.decide(user, 'view', rb ? { id: rb.id, tags: rb.tags, owner: rb.owner } : { id: e.runbookId, tags: [], owner: '' }).allowed;
    }, d.log),
  );
  app.route('/api/v1', api);
  return app;
}
