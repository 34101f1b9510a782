/**
 * The portal's routes over a real store (a temporary data dir) and the portal test runbooks,
 * with an injected clock and a recording stand-in for the engine: for `app.request()` tests of
 * logins, sessions, CSRF and pages, no sockets. Rows the engine would write (agents,
 * executions) are inserted directly.
 */
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { Hono } from 'hono';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';
import { Catalog } from '../../coordinator/runbooks/catalog.js';
import { AccessControl } from '../../coordinator/policy/access-control.js';
import { executionAccess } from '../../coordinator/engine/execution-access.js';
import type { TargetableRunbook } from '../../coordinator/policy/visibility.js';
import type { LoadedRunbook } from '../../coordinator/runbooks/catalog.js';
import { PasswordLogin } from '../../coordinator/auth/password-login.js';
import { LoginThrottle, type LoginThrottleRules } from '../../coordinator/auth/login-throttle.js';
import { portalRoutes, type PortalExecutions } from '../../web/pages/portal.js';
import type { PortalEnv } from '../../web/pages/portal-env.js';
import { reportRoutes } from '../../web/api/reports.js';
import { auditRoutes } from '../../web/api/audit.js';
import { AuditTrail } from '../../coordinator/audit/audit-trail.js';
import { initCa, loadCa } from '../../coordinator/pki/ca.js';
import { HandrailError } from '../../core/errors.js';
import { errorResponse } from '../../web/errors.js';
import { sessionOrBearer } from '../../web/auth/session-or-bearer.js';
import type { AuthVariables } from '../../web/auth/bearer.js';
import { ROOT, workspace } from './processes.js';

export const PORTAL_RUNBOOKS = join(ROOT, 'test', 'fixtures', 'portal');
export const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);
export const IDLE_MS = 30 * 60_000;
export const MAX_MS = 12 * 3_600_000;

export interface StartCall {
  runbookId: string;
  options: Record<string, string>;
  reason: string | undefined;
  user: string;
}

export class PortalHarness {
  clock = T0;
  /** When set, audit records take this time instead of `clock` (seeding a timeline while sessions stay fresh). */
  auditClock: number | undefined;
  readonly starts: StartCall[] = [];
  readonly cancels: string[] = [];
  readonly decisions: Array<{ id: string; user: string; decision: string; comment: string }> = [];
  /** What the next start throws, once. */
  failNextStart: Error | undefined;
  readonly app: Hono<PortalEnv>;
  /** A small API stand-in behind sessionOrBearer: GET/POST /api/v1/whoami. */
  readonly api: Hono<{ Variables: AuthVariables }>;
  /** The audit trail the page and the API read (a real CA in the temp dir's certs/). */
  readonly auditTrail: AuditTrail;

  private constructor(
    readonly dir: string,
    readonly data: DataDir,
    readonly catalog: Catalog,
    trustProxy: boolean,
    throttle: LoginThrottleRules | undefined,
    caPem: string,
  ) {
    const log = pino({ level: 'silent' });
    const now = (): number => this.clock;
    const executions: PortalExecutions = {
      start: async (req) => {
        if (this.failNextStart) {
          const e = this.failNextStart;
          this.failNextStart = undefined;
          throw e;
        }
        this.starts.push({ runbookId: req.runbookId, options: req.options, reason: req.reason, user: req.user.name });
        const id = `exe-test${this.starts.length}`;
        await this.insertExecution({ id, runbookId: req.runbookId, requestedBy: req.user.name, options: req.options, state: 'running' });
        return { executionId: id, state: 'running' };
      },
      cancel: async (id: string) => {
        this.cancels.push(id);
        return true;
      },
      decide: async (id, user, decision, comment) => {
        this.decisions.push({ id, user: user.name, decision, comment });
        return { state: decision === 'approve' ? 'running' : 'canceled', remaining: 0 };
      },
    };
    const logins = new PasswordLogin({
      db: data.db,
      audit: data.audit,
      users: data.users,
      sessions: data.sessions,
      limits: { idleMs: IDLE_MS, absoluteMs: MAX_MS },
      log,
      ...(throttle ? { throttle: new LoginThrottle(throttle) } : {}),
    });
    const access = new AccessControl(() => catalog.policyList());
    // As the coordinator wires it (coordinator/coordinator.ts).
    const targetable = (l: LoadedRunbook): TargetableRunbook => ({ ref: { id: l.runbook.metadata.id, tags: l.runbook.metadata.tags, owner: l.runbook.metadata.owner }, selector: l.runbook.spec.selector });
    const visibility = executionAccess(data.db, () => catalog.policyList(), {
      get: (id) => {
        const l = catalog.get(id);
        return l ? targetable(l) : undefined;
      },
      list: () => catalog.list().map(targetable),
    });
    this.auditTrail = new AuditTrail({ db: data.db, audit: data.audit, caPem, now });
    this.app = new Hono<PortalEnv>();
    this.app.route(
      '/',
      portalRoutes({ db: data.db, users: data.users, sessions: data.sessions, logins, catalog, authz: access, access: visibility, auditTrail: this.auditTrail, executions, registry: data.registry, isOnline: () => true, now, trust: { trustProxy }, log }),
    );
    this.api = new Hono<{ Variables: AuthVariables }>();
    this.api.use('/api/v1/*', sessionOrBearer({ sessions: data.sessions, users: data.users, now, trust: { trustProxy } }));
    this.api.get('/api/v1/whoami', (c) => c.json({ user: c.get('user').name }));
    this.api.post('/api/v1/whoami', (c) => c.json({ user: c.get('user').name }));
    // The real report routes, as web/app.ts mounts them.
    this.api.route('/api/v1/reports', reportRoutes(data.db, visibility, catalog, now));
    this.api.route('/api/v1/audit', auditRoutes(this.auditTrail, visibility));
    // Refusals as before (401); Handrail errors (bad input, not found, forbidden) as the app answers them.
    this.api.onError((e, c) => (e instanceof HandrailError && e.kind !== 'unauthenticated' ? errorResponse(c, e) : c.json({ error: e.message }, 401)));
  }

  /** `extraRunbooks`: YAML documents loaded beside the portal test runbooks (a copy of them). */
  static async create(o: { trustProxy?: boolean; throttle?: LoginThrottleRules; extraRunbooks?: string } = {}): Promise<PortalHarness> {
    const dir = await workspace('hr-portal-');
    // Audit records take their time from the harness clock (T0 until the harness exists).
    const holder: { h?: PortalHarness } = {};
    const data = await openDataDir(join(dir, 'data'), () => holder.h?.auditClock ?? holder.h?.clock ?? T0);
    let runbooks = PORTAL_RUNBOOKS;
    if (o.extraRunbooks !== undefined) {
      runbooks = join(dir, 'runbooks');
      await cp(PORTAL_RUNBOOKS, runbooks, { recursive: true });
      await writeFile(join(runbooks, 'extra.yaml'), o.extraRunbooks);
    }
    const catalog = new Catalog(runbooks);
    await catalog.reload();
    const caPem = await sharedCaPem();
    holder.h = new PortalHarness(dir, data, catalog, o.trustProxy ?? false, o.throttle, caPem);
    return holder.h;
  }

  async addUser(name: string, groups: readonly string[], password: string): Promise<void> {
    await this.data.users.add(name, groups, { kind: 'cli', id: 'test' }, this.clock);
    await this.data.users.setPassword(name, password, { kind: 'cli', id: 'test' });
  }

  async insertAgent(id: string, name: string, labels: Record<string, string>): Promise<void> {
    await this.data.db.run(
      `INSERT INTO agents (id, name, labels_json, pinned_labels_json, facts_json, enrolled_at, cert_serial, cert_not_after) VALUES (?, ?, ?, '{}', '{}', ?, ?, ?)`,
      [id, name, JSON.stringify(labels), this.clock, `SER${id}`, this.clock + 86_400_000],
    );
  }

  /** `approval`: the execution waits for it (state awaiting_approval, gate -1). */
  /** `tookMs`: it finished that long after it started (both at the harness clock otherwise). */
  async insertExecution(e: { id: string; runbookId: string; requestedBy: string; options: Record<string, string>; state: string; reason?: string; approval?: { required: number; from: string[] }; tookMs?: number }): Promise<void> {
    await this.data.db.run(
      `INSERT INTO executions (id, kind, runbook_id, runbook_digest, requested_by, options_json, targets, state, reason, approval_json, gate, created_at, started_at, finished_at) VALUES (?, 'runbook', ?, ?, ?, ?, 'role=web', ?, ?, ?, ?, ?, ?, ?)`,
      [e.id, e.runbookId, 'ab'.repeat(32), e.requestedBy, JSON.stringify(e.options), e.approval ? 'awaiting_approval' : e.state, e.reason ?? null, e.approval ? JSON.stringify({ ...e.approval, message: 'approval to run it' }) : null, e.approval ? -1 : null, this.clock, this.clock, e.tookMs === undefined ? null : this.clock + e.tookMs],
    );
  }

  async insertDecision(executionId: string, approver: string, decision: 'approve' | 'deny', comment: string): Promise<void> {
    await this.data.db.run('INSERT INTO approvals (execution_id, gate, approver, decision, comment, decided_at) VALUES (?, -1, ?, ?, ?, ?)', [executionId, approver, decision, comment, this.clock]);
  }

  /** Audit records of one type, as their data members. */
  async audited(type: string): Promise<Array<Record<string, unknown>>> {
    const rows = await this.data.db.all<{ payload: Buffer }>('SELECT payload FROM audit_records ORDER BY seq');
    return rows
      .map((r) => JSON.parse(r.payload.toString('utf8')) as { type: string; data: Record<string, unknown> })
      .filter((r) => r.type === type)
      .map((r) => r.data);
  }

  async close(): Promise<void> {
    await this.data.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

let caOnce: Promise<string> | undefined;
/** One CA certificate for every harness of a test file (made once: RSA keys take a moment). */
function sharedCaPem(): Promise<string> {
  caOnce ??= (async () => {
    const dir = await workspace('hr-portal-ca-');
    await initCa({ certsDir: dir });
    const pem = (await loadCa(dir)).caCertPem;
    await rm(dir, { recursive: true, force: true });
    return pem;
  })();
  return caOnce;
}

/** A cookie jar of one: the `Set-Cookie` headers of a response as `name=value` pairs. */
export function cookiesOf(res: Response): Map<string, { value: string; attrs: string }> {
  const out = new Map<string, { value: string; attrs: string }>();
  for (const line of res.headers.getSetCookie()) {
    const [pair = '', ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    out.set(pair.slice(0, eq).trim(), { value: pair.slice(eq + 1).trim(), attrs: attrs.map((a) => a.trim()).join('; ') });
  }
  return out;
}

/** The value of a hidden `_csrf` field in a page. */
export function csrfIn(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error(`no _csrf field in:\n${html.slice(0, 2000)}`);
  return m[1] as string;
}

export function form(fields: Record<string, string>): { body: string; headers: Record<string, string> } {
  return { body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}
