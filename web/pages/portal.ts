/**
 * The self-service portal: server-rendered pages (hono/jsx) for the people who run runbooks,
 * one folder per page group, on the same policy, engine and store as the REST API. Each group's
 * `app.request()` tests sit beside it (catalog/catalog.test.ts, over test/helpers/portal-app.ts);
 * the browser tests are in test/integration/portal-browser.test.ts.
 *
 *   login/      GET/POST /login, POST /logout
 *   catalog/    GET / and /runbooks: what this user may run
 *   runbook/    GET /runbooks/:id, POST /runbooks/:id/run: the option form and Run
 *   execution/  GET /executions/:id, POST /executions/:id/cancel: status, output, live view
 *   history/    GET /executions
 *   approvals/  GET /approvals, POST /approvals/:id: the inbox, approve or deny
 *   hosts/      GET /hosts; for admins revoke (/hosts/:id/revoke) and the install form (/hosts/install)
 *   admin/      /admin/notifications, /admin/webhooks: admins only (404 for everyone else)
 *   toil/       GET /toil: the toil report (hours saved per team), an SVG chart and its table
 *   audit/      GET /audit, /audit/:seq, /audit/export, POST /audit/verify: the audit trail
 *   layout/     the page frame and small shared pieces
 *
 * Sessions and CSRF live in web/auth/ (session.ts, csrf.ts, their tests beside them); the
 * stylesheet and the one script in web/static/. Every page sets a strict
 * Content-Security-Policy, so the script is a file of our own and nothing inline runs.
 */
import { Hono } from 'hono';
import { staticRoutes } from '../static/assets.js';
import { loginRoutes } from './login/login.js';
import { catalogRoutes } from './catalog/catalog.js';
import { runbookRoutes } from './runbook/runbook.js';
import { executionRoutes } from './execution/execution.js';
import { historyRoutes } from './history/history.js';
import { hostRoutes } from './hosts/hosts.js';
import { toilRoutes } from './toil/toil.js';
import { auditRoutes } from './audit/audit.js';
import { approvalRoutes } from './approvals/approvals.js';
import { notificationPageRoutes } from './admin/notifications.js';
import { webhookPageRoutes } from './admin/webhooks.js';
import { portalErrorHandler } from './page-errors.js';
import type { PortalDeps, PortalEnv } from './portal-env.js';

export type { PortalDeps, PortalExecutions } from './portal-env.js';

/** The portal's routes, to be mounted at `/` (`app.route('/', portalRoutes(deps))`). */
export function portalRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  app.onError(portalErrorHandler(d.log));
  app.route('/', staticRoutes<PortalEnv>());
  app.route('/', loginRoutes(d));
  app.route('/', catalogRoutes(d));
  app.route('/', runbookRoutes(d));
  app.route('/', historyRoutes(d));
  app.route('/', executionRoutes(d));
  app.route('/', approvalRoutes(d));
  app.route('/', hostRoutes(d));
  app.route('/', toilRoutes(d));
  app.route('/', auditRoutes(d));
  app.route('/', notificationPageRoutes(d));
  app.route('/', webhookPageRoutes(d));
  return app;
}
