/**
 * What the portal's pages are given (PortalDeps) and what each request carries (PortalEnv).
 * Everything the pages read or do goes through the coordinator's own pieces: the catalog, the
 * policy authorizer the API uses, the read-side execution queries, and the same execution
 * control the API calls. The pages hold no SQL.
 */
import type { Logger } from 'pino';
import type { Database } from '../../coordinator/store/database.js';
import type { User, UserStore } from '../../coordinator/auth/user-store.js';
import type { SessionStore } from '../../coordinator/auth/session-store.js';
import type { PasswordLogin } from '../../coordinator/auth/password-login.js';
import type { Catalog } from '../../coordinator/runbooks/catalog.js';
import type { AgentRegistry } from '../../coordinator/registry/agent-registry.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import type { AuditTrail } from '../../coordinator/audit/audit-trail.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { ClientTrust } from '../auth/client-request.js';
import type { SessionVariables } from '../auth/session.js';
import type { Viewer } from './layout/layout.js';
import type { InstallCommandDeps } from '../api/install-command.js';
import type { NotificationAdmin } from '../api/notifications.js';
import type { WebhookControl } from '../api/webhooks.js';

/** The engine calls the pages make: the API's ExecutionControl, or any object of the same shape. */
export interface PortalExecutions {
  start(req: { runbookId: string; options: Record<string, string>; targets: string | undefined; reason: string | undefined; user: User; requestId: string }): Promise<{ executionId: string; state: string }>;
  cancel(executionId: string, user: User): Promise<boolean>;
  decide(executionId: string, user: User, decision: 'approve' | 'deny', comment: string): Promise<{ state: string; remaining: number }>;
}

export interface PortalDeps {
  /**
   * A read-only connection to the store, for the read-side query modules only
   * (coordinator/store/execution-queries.ts, toil-queries.ts, the registry's listAgentRecords):
   * the pages show what has committed. On the writer's connection a page would show the rows of
   * a transaction still in progress, which may yet roll back, and would wait behind each of its
   * statements. Every change a page makes goes through `executions` (or another service) and has
   * committed before it answers, so the page it redirects to sees it here.
   */
  readonly reader: Database;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly logins: PasswordLogin;
  readonly catalog: Catalog;
  readonly authz: Authorizer;
  /** Who may see which executions and agents: the same rules as the API's. */
  readonly access: ExecutionAccess;
  /** The audit trail (the /audit page): records under the reader's scope, exports, verifications. */
  readonly auditTrail: AuditTrail;
  readonly executions: PortalExecutions;
  /** Revocations (hosts page); the pages read agents through `reader`. */
  readonly registry: AgentRegistry;
  readonly isOnline: (agentId: string) => boolean;
  readonly now: () => number;
  readonly trust: ClientTrust;
  readonly log: Logger;
  /** Agent installation (the hosts page's install form); absent: the page says there is none. */
  readonly install?: InstallCommandDeps | undefined;
  /** Outbound notification subscriptions (admin pages). */
  readonly notifications: NotificationAdmin;
  /** Inbound webhooks (admin pages). */
  readonly webhooks: WebhookControl;
}

export type PortalVariables = SessionVariables & {
  /** Set by web/request-id.ts when the portal runs inside the app; absent in a bare portal. */
  requestId?: string;
  /** The posted form's fields, once the CSRF check has passed. */
  form: Record<string, string>;
  /** Whether policy gives the user the admin action (set with the session, for the navigation). */
  isAdmin?: boolean;
};

export type PortalEnv = { Variables: PortalVariables };

export function viewerOf(v: { readonly user: User; readonly csrfToken: string; readonly isAdmin?: boolean | undefined }): Viewer {
  return { name: v.user.name, csrfToken: v.csrfToken, admin: v.isAdmin === true };
}
