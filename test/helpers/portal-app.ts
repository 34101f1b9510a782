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
import { expect } from 'vitest';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';
import { Database, type Queryable, type Tx } from '../../coordinator/store/database.js';
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
import { openTransaction, type OpenTransaction } from './open-transaction.js';
import { agentRoutes } from '../../web/api/agents.js';
import { executionRoutes, type ExecutionControl } from '../../web/api/executions.js';
import type { FeedSource } from '../../web/api/execution-events.js';
import { SecretBox } from '../../coordinator/pki/secret-box.js';
import { NotificationStore } from '../../coordinator/store/notifications.js';
import { Subscriptions } from '../../coordinator/notify/subscriptions.js';
import { WebhookStore } from '../../coordinator/store/webhooks.js';
import { WebhookAdmin } from '../../coordinator/webhooks/webhook-admin.js';
import { makeInstallKit } from '../../coordinator/install/install-kit.js';
import type { InstallCommandDeps } from '../../web/api/install-command.js';
import type { WebhookControl } from '../../web/api/webhooks.js';

/** How the harness serves the agent installer: none at all, a kit without HTTPS, or a full kit behind an https public URL. */
export type InstallSetup = 'none' | 'no-bundle' | 'http' | 'https';

export const PORTAL_RUNBOOKS = join(ROOT, 'test', 'fixtures', 'portal');
/** Where the tests' requests say they come from (plain HTTP: no `__Host-` cookies). */
export const ORIGIN = 'http://localhost';
/** Markup that would run if a page echoed it unescaped. */
export const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`;
export const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);
export const IDLE_MS = 30 * 60_000;
export const MAX_MS = 12 * 3_600_000;

export interface StartCall {
  runbookId: string;
  options: Record<string, string>;
  reason: string | undefined;
  user: string;
}

/** No live events here: the execution routes' event stream is not what these tests are about. */
const NO_FEED: FeedSource = { follow: () => ({ [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true as const, value: undefined }) }) }) };

/** A browser logged in to the portal: its session cookie, the CSRF token its pages carry, and requests that send both. */
export interface PortalSession {
  readonly cookie: string;
  readonly csrf: string;
  get(path: string): Promise<{ status: number; html: string }>;
  /** A same-origin form post with the session's token; `csrf: null` leaves the token out, `origin` claims another. */
  post(path: string, fields: Record<string, string>, o?: { csrf?: string | null; origin?: string }): Promise<Response>;
}

export interface HarnessOptions {
  trustProxy?: boolean;
  throttle?: LoginThrottleRules;
  /** YAML documents loaded beside the portal test runbooks (a copy of them). */
  extraRunbooks?: string;
  install?: InstallSetup;
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
  /** The notification subscriptions service the admin pages use. */
  readonly subscriptions: Subscriptions;
  /** A small API stand-in behind sessionOrBearer: GET/POST /api/v1/whoami. */
  readonly api: Hono<{ Variables: AuthVariables }>;
  /** The audit trail the page and the API read (a real CA in the temp dir's certs/). */
  readonly auditTrail: AuditTrail;
  /** Ends each transaction openTransaction() left open (rolled back). */
  private readonly openTransactions = new Set<() => Promise<void>>();

  private constructor(
    readonly dir: string,
    readonly data: DataDir,
    /** A read-only connection, for the pages' and the API's reads (as server/server.ts wires them). */
    readonly reader: Database,
    readonly catalog: Catalog,
    trustProxy: boolean,
    throttle: LoginThrottleRules | undefined,
    secrets: SecretBox,
    installSetup: InstallSetup,
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
    const visibility = executionAccess(reader, () => catalog.policyList(), {
      get: (id) => {
        const l = catalog.get(id);
        return l ? targetable(l) : undefined;
      },
      list: () => catalog.list().map(targetable),
    });
    // The real admin services over this store, as coordinator/coordinator.ts and server/server.ts wire them.
    const notifications = new Subscriptions(data.db, new NotificationStore(data.db), secrets, data.audit, log, now, new NotificationStore(reader));
    this.subscriptions = notifications;
    const hookAdmin = new WebhookAdmin({ store: new WebhookStore(data.db, secrets), reads: new WebhookStore(reader, secrets), audit: data.audit, runbooks: (id) => catalog.get(id)?.runbook.spec.options, userExists: async (name) => (await data.users.get(name)) !== undefined, now });
    const webhooks: WebhookControl = {
      define: (input, user) => hookAdmin.define(input, { kind: 'user', id: user.name }),
      list: () => hookAdmin.list(),
      remove: (id, user) => hookAdmin.remove(id, { kind: 'user', id: user.name }),
      rotate: (id, user, keepPrevious) => hookAdmin.rotate(id, { kind: 'user', id: user.name }, keepPrevious),
    };
    const kit = makeInstallKit({ version: '0.0.0-test', bundle: Buffer.from('// agent bundle'), scriptTemplate: '#!/bin/sh\n', caPem: '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n' });
    const install: InstallCommandDeps | undefined =
      installSetup === 'none'
        ? undefined
        : {
            kit: installSetup === 'no-bundle' ? undefined : kit,
            unavailable: 'this coordinator has no agent bundle to serve (ENOENT in dist/agent-bundle): build it with `npm run build`',
            grpcPort: 7443,
            ...(installSetup === 'https' ? { publicUrl: 'https://handrail.example:8443' } : {}),
            createToken: (input, t) => data.tokens.create(input, t),
            now,
          };
    this.auditTrail = new AuditTrail({ db: data.db, reader, audit: data.audit, caPem: () => caPem, now });
    this.app = new Hono<PortalEnv>();
    this.app.route(
      '/',
      portalRoutes({
        reader, users: data.users, sessions: data.sessions, logins, catalog, authz: access, access: visibility, executions, registry: data.registry, isOnline: () => true, now, trust: { trustProxy }, log,
        notifications, webhooks, install, auditTrail: this.auditTrail,
      }),
    );
    this.api = new Hono<{ Variables: AuthVariables }>();
    this.api.use('/api/v1/*', sessionOrBearer({ sessions: data.sessions, users: data.users, now, trust: { trustProxy } }));
    this.api.get('/api/v1/whoami', (c) => c.json({ user: c.get('user').name }));
    this.api.post('/api/v1/whoami', (c) => c.json({ user: c.get('user').name }));
    // The real report, agent and execution routes, as web/app.ts mounts them (the engine calls stand in).
    this.api.route('/api/v1/reports', reportRoutes(reader, visibility, catalog, now));
    this.api.route('/api/v1/agents', agentRoutes(data.registry, reader, () => true, visibility, access, now));
    this.api.route(
      '/api/v1/executions',
      executionRoutes(reader, { ...executions, start: async () => Promise.reject(new Error('not in this harness')), watchFinished: () => ({ finished: Promise.resolve(), cancel: () => undefined }) } as ExecutionControl, NO_FEED, visibility, log),
    );
    this.api.route('/api/v1/audit', auditRoutes(this.auditTrail, visibility));
    // Refusals as before (401); Handrail errors (bad input, not found, forbidden) as the app answers them.
    this.api.onError((e, c) => (e instanceof HandrailError && e.kind !== 'unauthenticated' ? errorResponse(c, e) : c.json({ error: e.message }, 401)));
  }

  static async create(o: HarnessOptions = {}): Promise<PortalHarness> {
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
    const secrets = await SecretBox.open(join(dir, 'data', 'keys', 'secrets.key'));
    const caPem = await sharedCaPem();
    holder.h = new PortalHarness(dir, data, await Database.open(data.db.path, { readonly: true }), catalog, o.trustProxy ?? false, o.throttle, secrets, o.install ?? 'https', caPem);
    return holder.h;
  }

  async addUser(name: string, groups: readonly string[], password: string): Promise<void> {
    await this.data.users.add(name, groups, { kind: 'cli', id: 'test' }, this.clock);
    await this.data.users.setPassword(name, password, { kind: 'cli', id: 'test' });
  }

  /** Logs in through the login form as a browser does; the password is `<user>-password` unless given. */
  async login(user: string, password = `${user}-password`): Promise<PortalSession> {
    const page = await this.app.request(`${ORIGIN}/login`);
    const nonce = cookiesOf(page).get('hr_login')?.value as string;
    const f = form({ _csrf: csrfIn(await page.text()), user, password, next: '/' });
    const res = await this.app.request(`${ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: `hr_login=${nonce}`, origin: ORIGIN, 'sec-fetch-site': 'same-origin' } });
    expect(res.status, `login as ${user}: ${await res.clone().text()}`).toBe(303);
    const cookie = `hr_session=${cookiesOf(res).get('hr_session')?.value}`;
    const get = async (path: string): Promise<{ status: number; html: string }> => {
      const r = await this.app.request(`${ORIGIN}${path}`, { headers: { cookie } });
      return { status: r.status, html: await r.text() };
    };
    const csrf = csrfIn((await get('/runbooks')).html);
    return {
      cookie,
      csrf,
      get,
      post: async (path, fields, o = {}) => {
        const token = o.csrf === undefined ? csrf : o.csrf;
        const p = form({ ...(token === null ? {} : { _csrf: token }), ...fields });
        return this.app.request(`${ORIGIN}${path}`, { method: 'POST', body: p.body, headers: { ...p.headers, cookie, origin: o.origin ?? ORIGIN, 'sec-fetch-site': 'same-origin' } });
      },
    };
  }

  /** The notification subscriptions as stored (removed ones left out). */
  notificationsList(): ReturnType<Subscriptions['list']> {
    return this.subscriptions.list();
  }

  /** `on`: a transaction to write it in (default: a transaction of its own, committed). */
  async insertAgent(id: string, name: string, labels: Record<string, string>, on: Queryable = this.data.db): Promise<void> {
    await on.run(
      `INSERT INTO agents (id, name, labels_json, pinned_labels_json, facts_json, enrolled_at, cert_serial, cert_not_after) VALUES (?, ?, ?, '{}', '{}', ?, ?, ?)`,
      [id, name, JSON.stringify(labels), this.clock, `SER${id}`, this.clock + 86_400_000],
    );
  }

  /** `approval`: the execution waits for it (state awaiting_approval, gate -1). */
  /** `tookMs`: it finished that long after it started (both at the harness clock otherwise). */
  /** `stateReason`: why it ended as it did (the engine's words, apart from the requester's `reason`). */
  /** `team`: the runbook's owner when requested (default: its owner in the catalog, as the engine records it). */
  /** `on`: a transaction to write it in (default: a transaction of its own, committed). */
  async insertExecution(e: { id: string; runbookId: string; requestedBy: string; options: Record<string, string>; state: string; reason?: string; approval?: { required: number; from: string[] }; tookMs?: number; team?: string; at?: number; stateReason?: string }, on: Queryable = this.data.db): Promise<void> {
    const team = e.team ?? this.catalog.get(e.runbookId)?.runbook.metadata.owner ?? null;
    const at = e.at ?? this.clock;
    await on.run(
      `INSERT INTO executions (id, kind, runbook_id, runbook_digest, requested_by, options_json, targets, state, reason, approval_json, gate, created_at, started_at, finished_at, owner_team) VALUES (?, 'runbook', ?, ?, ?, ?, 'role=web', ?, ?, ?, ?, ?, ?, ?, ?)`,
      [e.id, e.runbookId, 'ab'.repeat(32), e.requestedBy, JSON.stringify(e.options), e.approval ? 'awaiting_approval' : e.state, e.reason ?? null, e.approval ? JSON.stringify({ ...e.approval, message: 'approval to run it' }) : null, e.approval ? -1 : null, at, at, e.tookMs === undefined ? null : at + e.tookMs, team],
    );
    if (e.stateReason !== undefined) await on.run('UPDATE executions SET state_reason = ? WHERE id = ?', [e.stateReason, e.id]);
    if (team !== null) await on.run('INSERT OR IGNORE INTO runbook_teams (team, runbook_id) VALUES (?, ?)', [team, e.runbookId]);
  }

  /** A write transaction that has run `fn` and stays open until `end` (open-transaction.ts); one left open is rolled back by close(). */
  async openTransaction(fn: (tx: Tx) => Promise<void>): Promise<OpenTransaction> {
    const open = await openTransaction(this.data.db, fn);
    this.openTransactions.add(() => open.end('rollback'));
    return open;
  }

  async insertDecision(executionId: string, approver: string, decision: 'approve' | 'deny', comment: string): Promise<void> {
    await this.data.db.run('INSERT INTO approvals (execution_id, gate, approver, decision, comment, decided_at) VALUES (?, -1, ?, ?, ?, ?)', [executionId, approver, decision, comment, this.clock]);
  }

  /** A node of an execution in the given state (no steps). */
  async insertNode(executionId: string, index: number, agentId: string, agentName: string, state: string): Promise<void> {
    await this.data.db.run('INSERT INTO execution_nodes (execution_id, agent_id, node_index, agent_name, state) VALUES (?, ?, ?, ?, ?)', [executionId, agentId, index, agentName, state]);
  }

  /** A step run of a node's first step, dispatched at `dispatchedAt`. */
  async insertStepRun(r: { id: string; executionId: string; agentId: string; attempt: number; name: string; state: string; dispatchedAt: number }): Promise<void> {
    await this.data.db.run('INSERT INTO step_runs (id, execution_id, agent_id, step_index, attempt, name, state, dispatched_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)', [r.id, r.executionId, r.agentId, r.attempt, r.name, r.state, r.dispatchedAt]);
  }

  /**
   * Record `copyOf`'s row written again as record `seq`, in `on` (a transaction: the audit log
   * queues its rows until just before COMMIT, so a test holding one open writes them itself).
   */
  async copyAuditRecord(on: Queryable, copyOf: number, seq: number): Promise<void> {
    await on.run('INSERT INTO audit_records (seq, payload, hash, key_id, signature) SELECT ?, payload, hash, key_id, signature FROM audit_records WHERE seq = ?', [seq, copyOf]);
  }

  /** Empties the audit log, so that a test's records start at seq 1. */
  async clearAuditLog(): Promise<void> {
    await this.data.db.run('DELETE FROM audit_records');
    this.data.audit.forgetHead();
  }

  /** Rewrites a stored record's signed payload (text replaced), as an attacker with the database would. */
  async tamperAuditPayload(seq: number, from: string, to: string): Promise<void> {
    const row = await this.data.db.get<{ payload: Buffer }>('SELECT payload FROM audit_records WHERE seq = ?', [seq]);
    if (!row) throw new Error(`no audit record ${seq}`);
    const text = row.payload.toString('utf8');
    if (!text.includes(from)) throw new Error(`audit record ${seq} does not hold ${from}`);
    await this.data.db.run('UPDATE audit_records SET payload = ? WHERE seq = ?', [Buffer.from(text.replace(from, to)), seq]);
  }

  /** The web_sessions rows as stored, every column. */
  async webSessionRows(): Promise<Array<Record<string, unknown>>> {
    return this.data.db.all<Record<string, unknown>>('SELECT * FROM web_sessions');
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
    for (const end of this.openTransactions) await end();
    await this.reader.close();
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

/**
 * The people and hosts most page tests start from (passwords `<name>-password`): alice
 * (support-a: team A's runbooks), carol (team-b), root (admins), nina (in no group); agents
 * web-1 and web-2 (role=web) and db-1 (role=db).
 */
export async function teamsPortal(o: HarnessOptions = {}): Promise<PortalHarness> {
  const h = await PortalHarness.create(o);
  for (const [name, groups] of [['alice', ['support-a']], ['carol', ['team-b']], ['root', ['admins']], ['nina', []]] as const) await h.addUser(name, groups, `${name}-password`);
  await h.insertAgent('agt-web1', 'web-1', { role: 'web' });
  await h.insertAgent('agt-web2', 'web-2', { role: 'web' });
  await h.insertAgent('agt-db1', 'db-1', { role: 'db' });
  return h;
}

/** The HTML of one option's field in a runbook form (a crude slice, enough for assertions). */
export function fieldHtml(html: string, option: string): string {
  const start = html.indexOf(`data-option="${option}"`);
  expect(start, `field ${option}`).toBeGreaterThan(0);
  const next = html.indexOf('data-option=', start + 10);
  return html.slice(start, next > 0 ? next : html.indexOf('</fieldset>', start));
}
