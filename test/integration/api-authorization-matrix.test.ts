/**
 * Every route of the REST API against every kind of caller, against a real coordinator with two
 * real agents (one web, one db): who gets the 2xx, and for everyone else the exact refusal —
 * 401 unauthenticated, 403 permission denied, 404 for what the caller may not even view. The
 * routes come from the published OpenAPI document, so a route added without a row here fails.
 *
 * Path parameters name real objects (a web and a db execution, agents, an admin's webhook and
 * notification subscription, audit records), so "may not view" is tested on things that exist.
 * A route that consumes its object (approve, deny, cancel, remove, rotate) gets a fresh object
 * for each call that should succeed; the refused callers share one, which must be unchanged
 * after all of them. Refusals share the one error body, and a refusal about a hidden object is
 * byte for byte the refusal about a missing one (the ids and request id aside).
 *
 * Where the answer today discloses what the caller may not view, the row says so in
 * `disclosure`: the cell holds today's answer, and the test checks that it still differs from
 * the answer for a missing object, so fixing it makes this file point at the row to update.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

const RUNBOOKS = `apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-echo, title: Echo on web hosts, owner: team-web, tags: [web] }
spec:
  options:
    - { name: message, type: string, required: false }
  targets: { selector: role=web }
  steps:
    - { name: echo, run: [echo, "\${option.message}"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-guarded, title: Guarded web change, owner: team-web, tags: [web] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=web }
  approval: { required: 1, from: [group:web-leads] }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-long, title: Long web job, owner: team-web, tags: [web] }
spec:
  targets: { selector: role=web }
  steps:
    - { name: wait, run: [sleep, "60"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: web-idle, title: Never run here (notification scope), owner: team-web, tags: [web] }
spec:
  targets: { selector: role=web }
  steps:
    - { name: noop, run: ["true"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-echo, title: Echo on db hosts, owner: team-db, tags: [db] }
spec:
  targets: { selector: role=db }
  steps:
    - { name: echo, run: [echo, db] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-guarded, title: Guarded db change (any second person), owner: team-db, tags: [db] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=db }
  approval: { required: 1 }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-long, title: Long db job, owner: team-db, tags: [db] }
spec:
  targets: { selector: role=db }
  steps:
    - { name: wait, run: [sleep, "60"] }
`;

// The security rules are runbooks/policy.yaml's: view everything, run, cancel and approve nothing.
const POLICY = `apiVersion: handrail/v1
kind: Policy
metadata: { name: matrix }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
    - { name: web-support, effect: allow, actions: [run, view, cancel], subjects: [group:web], runbooks: { tags: [web] }, targets: role=web }
    - { name: web-leads, effect: allow, actions: [approve, view], subjects: [group:web-leads], runbooks: { tags: [web] } }
    - { name: db-team, effect: allow, actions: [run, view, cancel], subjects: [group:db], runbooks: { tags: [db] }, targets: role=db }
    - { name: security-views-everything, effect: allow, actions: [view], subjects: [group:security] }
    - { name: security-runs-nothing, effect: deny, actions: [run, cancel, approve], subjects: [group:security] }
`;

/** The columns of the matrix, in this order. */
const ROLES = ['anonymous', 'forged', 'revoked', 'webSupport', 'webLead', 'dbTeam', 'security', 'noRule', 'admin'] as const;
type Role = (typeof ROLES)[number];

interface Call {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  text: string;
  type: string | null;
  requestId: string | null;
  /** Headers but the date, the request id and the length (ids differ in length). */
  headers: string[];
}

interface Row {
  /** `METHOD /path` exactly as the OpenAPI document declares it. */
  route: string;
  /** What the request names. */
  on: string;
  /** The expected status for each role, in ROLES order. */
  cells: readonly number[];
  /** The object the refused callers share (an id, or '' when the route names none). */
  target: () => Promise<string> | string;
  /** A fresh object for each caller expected to succeed (routes that consume their object). */
  fresh?: () => Promise<string>;
  request: (id: string) => Call;
  /** An id of the same kind that names nothing: hidden must answer as missing. */
  unknownId?: () => string;
  /** The refusal does not depend on the object (admin-only routes refuse before looking it up). */
  objectBlind?: boolean;
  /** After every refused call: the shared object is as it was. */
  unchanged?: (id: string) => Promise<void>;
  /** After each successful call: it took effect. */
  effect?: (id: string, a: Answer, role: Role) => Promise<void>;
  /** After the row: leaves nothing running that it did not start for a caller. */
  cleanup?: (id: string) => Promise<void>;
  /** For list routes: which of the named objects each allowed role sees. */
  sees?: { pick: (body: unknown) => string[]; expect: Partial<Record<Role, string[]>> };
  /** Cells whose answer today discloses what the role may not view (see the file's comment). */
  disclosure?: { roles: readonly Role[]; why: string };
}

/** Ids and tokens made in beforeAll; the rows read them when they run. */
interface World {
  tokens: Record<Exclude<Role, 'anonymous'>, string>;
  agents: { web: string; db: string };
  webDone: ExecutionResult;
  dbDone: ExecutionResult;
  webPending: string;
  dbPending: string;
  webRunning: string;
  dbRunning: string;
  webRecord: number;
  dbRecord: number;
  userRecord: number;
  subscription: string;
  hook: { id: string; secret: string };
}

const world = {} as World;
let fleet: Fleet;

const send = async (role: Role, call: Call): Promise<Answer> => {
  const auth: Record<string, string> = role === 'anonymous' ? {} : { authorization: `Bearer ${world.tokens[role]}` };
  const res = await fetch(`${fleet.coordinator!.url}${call.path}`, {
    method: call.method,
    headers: { ...auth, ...(call.body === undefined ? {} : { 'content-type': 'application/json' }), ...(call.headers ?? {}) },
    ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
  });
  const text = await res.text();
  const headers = [...res.headers.entries()].filter(([k]) => !['date', 'x-request-id', 'content-length'].includes(k)).map(([k, v]) => `${k}: ${v}`);
  return { status: res.status, text, type: res.headers.get('content-type'), requestId: res.headers.get('x-request-id'), headers };
};
const admin = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
  const a = await send('admin', { method, path, ...(body === undefined ? {} : { body }) });
  expect(a.status, `${method} ${path}: ${a.text}`).toBeLessThan(300);
  return JSON.parse(a.text) as T;
};
const startAs = async (role: Role, runbook: string, options: Record<string, string> = {}): Promise<string> => {
  const a = await send(role, { method: 'POST', path: '/api/v1/executions', body: { runbook, options } });
  expect(a.status, a.text).toBe(201);
  return (JSON.parse(a.text) as { executionId: string }).executionId;
};
const execution = (id: string): Promise<ExecutionResult & { approvals: unknown[]; canceledBy: string | null }> => admin('GET', `/api/v1/executions/${id}`);
const stateOf = async (id: string): Promise<string> => (await execution(id)).state;
/** Waits for a running execution's step to be on its agent (a cancel then has a process to stop). */
const running = async (id: string): Promise<string> => {
  await waitFor(async () => (await execution(id)).steps.some((s) => s.state === 'running'), undefined, `execution ${id} running on its agent`);
  return id;
};
const auditCount = async (type: string): Promise<number> => (await admin<{ records: unknown[] }>('GET', `/api/v1/audit/records?type=${type}&limit=200`)).records.length;
const historyCount = async (): Promise<number> => (await admin<{ executions: unknown[] }>('GET', '/api/v1/executions?limit=500')).executions.length;
type Subscription = { id: string; enabled: boolean; secretRotatedAt: string | null };
const subscriptions = async (): Promise<Subscription[]> => (await admin<{ subscriptions: Subscription[] }>('GET', '/api/v1/notifications')).subscriptions;
type Hook = { id: string; rotatedAt: string | null };
const hooks = async (): Promise<Hook[]> => (await admin<{ webhooks: Hook[] }>('GET', '/api/v1/webhooks')).webhooks;
const agentStatus = async (id: string): Promise<string | undefined> => (await admin<{ agents: Array<{ id: string; status: string }> }>('GET', '/api/v1/agents')).agents.find((a) => a.id === id)?.status;
const sameShapeId = (id: string): string => `${id.slice(0, 4)}${'z'.repeat(id.length - 4)}`;
const newSubscription = async (): Promise<string> =>
  (await admin<{ subscription: { id: string } }>('POST', '/api/v1/notifications', { url: 'http://127.0.0.1:9/never', runbook: 'web-idle', enabled: false, description: 'matrix' })).subscription.id;
const newHook = async (): Promise<{ id: string; secret: string }> => {
  const r = await admin<{ webhook: { id: string }; secret: string }>('POST', '/api/v1/webhooks', { runbook: 'web-echo', runAs: 'hookbot', mapping: { options: { message: { path: '$.text', default: 'hook' } } } });
  return { id: r.webhook.id, secret: r.secret };
};
const signed = (secret: string, payload: unknown): { body: string; headers: Record<string, string> } => {
  const body = JSON.stringify(payload);
  const ts = String(Math.floor(Date.now() / 1000));
  const delivery = `matrix-${randomBytes(8).toString('hex')}`;
  const sig = createHmac('sha256', secret).update(`v1:${ts}:${delivery}:`).update(body).digest('hex');
  return { body, headers: { 'content-type': 'application/json', 'x-handrail-timestamp': ts, 'x-handrail-delivery': delivery, 'x-handrail-signature': `sha256=${sig}` } };
};
/** The names of the listed items that `names` knows (by the key `key` gives), sorted. */
const namesIn = <T>(list: readonly T[], key: (x: T) => string | number, names: Record<string, string>): string[] =>
  list.flatMap((x) => {
    const name = names[String(key(x))];
    return name === undefined ? [] : [name];
  }).sort();

//                                  anon forged revoked webSup webLead dbTeam security noRule admin
const PUBLIC = /*                */ [200, 200, 200, 200, 200, 200, 200, 200, 200];
const ANY_USER = /*              */ [401, 401, 401, 200, 200, 200, 200, 200, 200];
const ADMIN_ONLY = (ok: number) => [401, 401, 401, 403, 403, 403, 403, 403, ok];
const WHOLE_TRAIL = (ok: number) => [401, 401, 401, 403, 403, 403, ok, 403, ok];
const SEE_WEB = /*               */ [401, 401, 401, 200, 200, 404, 200, 404, 200];
const SEE_DB = /*                */ [401, 401, 401, 404, 404, 200, 200, 404, 200];

const execPath = (suffix: string) => (id: string): Call => ({ method: 'GET', path: `/api/v1/executions/${id}${suffix}` });
const post = (path: (id: string) => string, body?: unknown) => (id: string): Call => ({ method: 'POST', path: path(id), ...(body === undefined ? {} : { body }) });
const unknownExecution = (): string => sameShapeId(world.webDone.id);
const cancelShared = async (id: string): Promise<void> => {
  expect((await send('admin', { method: 'POST', path: `/api/v1/executions/${id}/cancel` })).status).toBe(202);
  expect((await fleet.waitExecution(id)).state).toBe('canceled');
};

const ROWS: Row[] = [
  // ---- public: the token is not looked at (a forged one does not turn a 200 into a 401)
  { route: 'GET /api/v1/health', on: 'nothing', cells: PUBLIC, target: () => '', request: () => ({ method: 'GET', path: '/api/v1/health' }) },
  { route: 'GET /healthz', on: 'nothing', cells: PUBLIC, target: () => '', request: () => ({ method: 'GET', path: '/healthz' }) },
  { route: 'GET /readyz', on: 'nothing', cells: PUBLIC, target: () => '', request: () => ({ method: 'GET', path: '/readyz' }) },
  { route: 'GET /metrics', on: 'nothing', cells: PUBLIC, target: () => '', request: () => ({ method: 'GET', path: '/metrics' }) },
  {
    // The HMAC signature is the authentication: no bearer token, an admin's included, stands in for it.
    route: 'POST /hooks/{id}',
    on: "an admin's webhook, unsigned",
    cells: [401, 401, 401, 401, 401, 401, 401, 401, 401],
    target: () => world.hook.id,
    request: (id) => ({ method: 'POST', path: `/hooks/${id}`, body: { text: 'unsigned' } }),
    unchanged: async (id) => {
      // ...and the same hook takes a signed delivery, from a caller with no token at all.
      const s = signed(world.hook.secret, { text: 'signed' });
      const res = await fetch(`${fleet.coordinator!.url}/hooks/${id}`, { method: 'POST', headers: s.headers, body: s.body });
      expect(res.status, await res.clone().text()).toBe(202);
      await fleet.waitExecution(((await res.json()) as { executionId: string }).executionId);
    },
  },

  // ---- who am I
  { route: 'GET /api/v1/whoami', on: 'nothing', cells: ANY_USER, target: () => '', request: () => ({ method: 'GET', path: '/api/v1/whoami' }) },

  // ---- runbooks
  {
    route: 'GET /api/v1/runbooks',
    on: 'the catalog',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/runbooks' }),
    sees: {
      pick: (b) => namesIn((b as { runbooks: Array<{ id: string }> }).runbooks, (r) => r.id, { 'web-echo': 'web-echo', 'db-echo': 'db-echo' }),
      expect: { webSupport: ['web-echo'], webLead: ['web-echo'], dbTeam: ['db-echo'], security: ['db-echo', 'web-echo'], noRule: [], admin: ['db-echo', 'web-echo'] },
    },
  },
  { route: 'GET /api/v1/runbooks/{id}', on: 'a web runbook', cells: SEE_WEB, target: () => 'web-echo', request: (id) => ({ method: 'GET', path: `/api/v1/runbooks/${id}` }), unknownId: () => 'web-ohce' },
  { route: 'GET /api/v1/runbooks/{id}', on: 'a db runbook', cells: SEE_DB, target: () => 'db-echo', request: (id) => ({ method: 'GET', path: `/api/v1/runbooks/${id}` }), unknownId: () => 'db-ohce' },
  {
    route: 'POST /api/v1/runbooks/reload',
    on: 'the runbooks directory',
    cells: ADMIN_ONLY(200),
    target: () => '',
    request: post(() => '/api/v1/runbooks/reload'),
    objectBlind: true,
    unchanged: async () => expect(await auditCount('runbooks.reloaded')).toBe(reloads),
    effect: async () => expect(await auditCount('runbooks.reloaded')).toBeGreaterThan(reloads),
  },

  // ---- executions: start
  {
    route: 'POST /api/v1/executions',
    on: 'a web runbook',
    //     anon forged revoked webSup webLead dbTeam security noRule admin
    // A runbook the caller may neither view nor run is a missing one (404); one they may view but not run, 403.
    cells: [401, 401, 401, 201, 403, 404, 403, 404, 201],
    target: () => 'web-echo',
    request: (id) => ({ method: 'POST', path: '/api/v1/executions', body: { runbook: id, options: { message: 'matrix' } } }),
    unknownId: () => 'web-ohce',
    unchanged: async () => expect(await historyCount()).toBe(historyBefore),
    effect: async (_id, a) => expect(await stateOf((JSON.parse(a.text) as { executionId: string }).executionId)).toMatch(/^(running|succeeded)$/),
  },
  {
    route: 'POST /api/v1/executions',
    on: 'a db runbook',
    cells: [401, 401, 401, 404, 404, 201, 403, 404, 201],
    target: () => 'db-echo',
    request: (id) => ({ method: 'POST', path: '/api/v1/executions', body: { runbook: id } }),
    unknownId: () => 'db-ohce',
    unchanged: async () => expect(await historyCount()).toBe(historyBefore),
    effect: async (_id, a) => expect(await stateOf((JSON.parse(a.text) as { executionId: string }).executionId)).toMatch(/^(running|succeeded)$/),
  },

  // ---- executions: read
  {
    route: 'GET /api/v1/executions',
    on: 'the history',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/executions?limit=500' }),
    sees: {
      pick: (b) => namesIn((b as { executions: Array<{ id: string }> }).executions, (e) => e.id, { [world.webDone.id]: 'web', [world.dbDone.id]: 'db' }),
      expect: { webSupport: ['web'], webLead: ['web'], dbTeam: ['db'], security: ['db', 'web'], noRule: [], admin: ['db', 'web'] },
    },
  },
  { route: 'GET /api/v1/executions/{id}', on: 'a web execution', cells: SEE_WEB, target: () => world.webDone.id, request: execPath(''), unknownId: unknownExecution },
  { route: 'GET /api/v1/executions/{id}', on: 'a db execution', cells: SEE_DB, target: () => world.dbDone.id, request: execPath(''), unknownId: unknownExecution },
  { route: 'GET /api/v1/executions/{id}/events', on: 'a finished web execution', cells: SEE_WEB, target: () => world.webDone.id, request: execPath('/events'), unknownId: unknownExecution },
  { route: 'GET /api/v1/executions/{id}/events', on: 'a finished db execution', cells: SEE_DB, target: () => world.dbDone.id, request: execPath('/events'), unknownId: unknownExecution },
  {
    route: 'GET /api/v1/executions/{id}/steps/{stepRunId}/output',
    on: "a web execution's step",
    cells: SEE_WEB,
    target: () => world.webDone.id,
    request: (id) => ({ method: 'GET', path: `/api/v1/executions/${id}/steps/${world.webDone.steps[0]!.id}/output` }),
    unknownId: unknownExecution,
  },
  {
    route: 'GET /api/v1/executions/{id}/steps/{stepRunId}/output',
    on: "a db execution's step",
    cells: SEE_DB,
    target: () => world.dbDone.id,
    request: (id) => ({ method: 'GET', path: `/api/v1/executions/${id}/steps/${world.dbDone.steps[0]!.id}/output` }),
    unknownId: unknownExecution,
  },
  {
    // A visible execution does not open another one's output by its step run id.
    route: 'GET /api/v1/executions/{id}/steps/{stepRunId}/output',
    on: "a web execution with a db execution's step run",
    cells: [401, 401, 401, 404, 404, 404, 404, 404, 404],
    target: () => world.webDone.id,
    request: (id) => ({ method: 'GET', path: `/api/v1/executions/${id}/steps/${world.dbDone.steps[0]!.id}/output` }),
  },

  // ---- executions: decide and cancel (fresh objects for the callers who succeed)
  {
    route: 'POST /api/v1/executions/{id}/approve',
    on: 'a web execution awaiting a web lead (asked by web support)',
    //     anon forged revoked webSup webLead dbTeam security noRule admin
    cells: [401, 401, 401, 403, 200, 404, 403, 404, 403],
    target: () => world.webPending,
    fresh: () => startAs('webSupport', 'web-guarded', { reason: 'matrix' }),
    request: post((id) => `/api/v1/executions/${id}/approve`, { comment: 'ok' }),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'awaiting_approval', approvals: [] }),
    effect: async (id) => expect((await fleet.waitExecution(id)).state).toBe('succeeded'),
  },
  {
    route: 'POST /api/v1/executions/{id}/approve',
    on: 'a db execution any second person may approve (asked by the db team)',
    cells: [401, 401, 401, 404, 404, 403, 403, 404, 200],
    target: () => world.dbPending,
    fresh: () => startAs('dbTeam', 'db-guarded', { reason: 'matrix' }),
    request: post((id) => `/api/v1/executions/${id}/approve`, { comment: 'ok' }),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'awaiting_approval', approvals: [] }),
    effect: async (id) => expect((await fleet.waitExecution(id)).state).toBe('succeeded'),
  },
  {
    route: 'POST /api/v1/executions/{id}/deny',
    on: 'a web execution awaiting a web lead (asked by web support)',
    cells: [401, 401, 401, 403, 200, 404, 403, 404, 403],
    target: () => world.webPending,
    fresh: () => startAs('webSupport', 'web-guarded', { reason: 'matrix' }),
    request: post((id) => `/api/v1/executions/${id}/deny`, { comment: 'no' }),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'awaiting_approval', approvals: [] }),
    effect: async (id) => expect(await stateOf(id)).toBe('canceled'),
  },
  {
    route: 'POST /api/v1/executions/{id}/deny',
    on: 'a db execution any second person may approve (asked by the db team)',
    cells: [401, 401, 401, 404, 404, 403, 403, 404, 200],
    target: () => world.dbPending,
    fresh: () => startAs('dbTeam', 'db-guarded', { reason: 'matrix' }),
    request: post((id) => `/api/v1/executions/${id}/deny`, { comment: 'no' }),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'awaiting_approval', approvals: [] }),
    effect: async (id) => expect(await stateOf(id)).toBe('canceled'),
  },
  {
    route: 'POST /api/v1/executions/{id}/cancel',
    on: 'a running web execution (started by an admin)',
    cells: [401, 401, 401, 202, 403, 404, 403, 404, 202],
    target: () => world.webRunning,
    fresh: async () => running(await startAs('admin', 'web-long')),
    request: post((id) => `/api/v1/executions/${id}/cancel`),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'running', canceledBy: null }),
    effect: async (id) => expect((await fleet.waitExecution(id)).state).toBe('canceled'),
    cleanup: cancelShared,
  },
  {
    route: 'POST /api/v1/executions/{id}/cancel',
    on: 'a running db execution (started by an admin)',
    cells: [401, 401, 401, 404, 404, 202, 403, 404, 202],
    target: () => world.dbRunning,
    fresh: async () => running(await startAs('admin', 'db-long')),
    request: post((id) => `/api/v1/executions/${id}/cancel`),
    unknownId: unknownExecution,
    unchanged: async (id) => expect(await execution(id)).toMatchObject({ state: 'running', canceledBy: null }),
    effect: async (id) => expect((await fleet.waitExecution(id)).state).toBe('canceled'),
    cleanup: cancelShared,
  },
  {
    route: 'GET /api/v1/approvals',
    on: 'the inbox (a web and a db execution waiting)',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/approvals' }),
    sees: {
      pick: (b) => namesIn((b as { approvals: Array<{ executionId: string }> }).approvals, (a) => a.executionId, { [world.webPending]: 'web', [world.dbPending]: 'db' }),
      // The admin may approve anything by policy, but web-guarded names its approvers (web leads).
      expect: { webSupport: [], webLead: ['web'], dbTeam: [], security: [], noRule: [], admin: ['db'] },
    },
  },

  // ---- agents
  {
    route: 'GET /api/v1/agents',
    on: 'the fleet',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/agents' }),
    sees: {
      pick: (b) => namesIn((b as { agents: Array<{ id: string }> }).agents, (a) => a.id, { [world.agents.web]: 'web-1', [world.agents.db]: 'db-1' }),
      expect: { webSupport: ['web-1'], webLead: [], dbTeam: ['db-1'], security: [], noRule: [], admin: ['db-1', 'web-1'] },
    },
  },
  {
    route: 'POST /api/v1/agents/install-command',
    on: 'a new enrollment token',
    cells: ADMIN_ONLY(201),
    target: () => '',
    request: () => ({ method: 'POST', path: '/api/v1/agents/install-command', body: { labels: { role: 'web' }, server: 'https://handrail.example:8443' } }),
    objectBlind: true,
    unchanged: async () => expect(await auditCount('token.created')).toBe(tokensCreated),
    effect: async (_id, a) => expect(JSON.parse(a.text)).toMatchObject({ tokenId: expect.stringMatching(/./) as unknown, server: 'https://handrail.example:8443' }),
  },
  {
    route: 'POST /api/v1/adhoc',
    on: 'a command on the web agent',
    cells: ADMIN_ONLY(201),
    target: () => world.agents.web,
    request: (id) => ({ method: 'POST', path: '/api/v1/adhoc', body: { agents: [id], argv: ['true'] } }),
    unknownId: () => sameShapeId(world.agents.web),
    objectBlind: true,
    unchanged: async () => expect(await historyCount()).toBe(historyBefore),
    effect: async (_id, a) => expect((await fleet.waitExecution((JSON.parse(a.text) as { executionId: string }).executionId)).state).toBe('succeeded'),
  },

  // ---- notifications (admin); the subscription is an admin's
  {
    route: 'GET /api/v1/notifications',
    on: 'the subscriptions',
    cells: ADMIN_ONLY(200),
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/notifications' }),
  },
  {
    route: 'POST /api/v1/notifications',
    on: 'a new subscription',
    cells: ADMIN_ONLY(201),
    target: () => '',
    request: () => ({ method: 'POST', path: '/api/v1/notifications', body: { url: 'http://127.0.0.1:9/never', runbook: 'web-idle', enabled: false } }),
    objectBlind: true,
    unchanged: async () => expect((await subscriptions()).length).toBe(subscriptionsBefore),
    effect: async (_id, a) => expect((await subscriptions()).map((s) => s.id)).toContain((JSON.parse(a.text) as { subscription: { id: string } }).subscription.id),
  },
  {
    route: 'DELETE /api/v1/notifications/{id}',
    on: "an admin's subscription",
    cells: ADMIN_ONLY(200),
    target: () => world.subscription,
    fresh: newSubscription,
    request: (id) => ({ method: 'DELETE', path: `/api/v1/notifications/${id}` }),
    unknownId: () => sameShapeId(world.subscription),
    objectBlind: true,
    unchanged: async (id) => expect((await subscriptions()).map((s) => s.id)).toContain(id),
    effect: async (id) => expect((await subscriptions()).map((s) => s.id)).not.toContain(id),
  },
  {
    route: 'PATCH /api/v1/notifications/{id}',
    on: "an admin's subscription",
    cells: ADMIN_ONLY(200),
    target: () => world.subscription,
    fresh: newSubscription,
    request: (id) => ({ method: 'PATCH', path: `/api/v1/notifications/${id}`, body: { enabled: true } }),
    unknownId: () => sameShapeId(world.subscription),
    objectBlind: true,
    unchanged: async (id) => expect((await subscriptions()).find((s) => s.id === id)?.enabled).toBe(false),
    effect: async (id) => expect((await subscriptions()).find((s) => s.id === id)?.enabled).toBe(true),
  },
  {
    route: 'POST /api/v1/notifications/{id}/rotate-secret',
    on: "an admin's subscription",
    cells: ADMIN_ONLY(200),
    target: () => world.subscription,
    fresh: newSubscription,
    request: post((id) => `/api/v1/notifications/${id}/rotate-secret`),
    unknownId: () => sameShapeId(world.subscription),
    objectBlind: true,
    unchanged: async (id) => expect((await subscriptions()).find((s) => s.id === id)?.secretRotatedAt).toBeNull(),
    effect: async (id) => expect((await subscriptions()).find((s) => s.id === id)?.secretRotatedAt).toEqual(expect.any(String)),
  },
  {
    route: 'GET /api/v1/notifications/{id}/deliveries',
    on: "an admin's subscription",
    cells: ADMIN_ONLY(200),
    target: () => world.subscription,
    request: (id) => ({ method: 'GET', path: `/api/v1/notifications/${id}/deliveries` }),
    unknownId: () => sameShapeId(world.subscription),
    objectBlind: true,
  },

  // ---- webhooks (admin); the hook is an admin's
  { route: 'GET /api/v1/webhooks', on: 'the hooks', cells: ADMIN_ONLY(200), target: () => '', request: () => ({ method: 'GET', path: '/api/v1/webhooks' }) },
  {
    route: 'POST /api/v1/webhooks',
    on: 'a new hook on a web runbook',
    cells: ADMIN_ONLY(201),
    target: () => '',
    request: () => ({ method: 'POST', path: '/api/v1/webhooks', body: { runbook: 'web-echo', runAs: 'hookbot', mapping: { options: { message: { value: 'x' } } } } }),
    objectBlind: true,
    unchanged: async () => expect((await hooks()).length).toBe(hooksBefore),
    effect: async (_id, a) => expect((await hooks()).map((h) => h.id)).toContain((JSON.parse(a.text) as { webhook: { id: string } }).webhook.id),
  },
  {
    route: 'DELETE /api/v1/webhooks/{id}',
    on: "an admin's hook",
    cells: ADMIN_ONLY(200),
    target: () => world.hook.id,
    fresh: async () => (await newHook()).id,
    request: (id) => ({ method: 'DELETE', path: `/api/v1/webhooks/${id}` }),
    unknownId: () => sameShapeId(world.hook.id),
    objectBlind: true,
    unchanged: async (id) => expect((await hooks()).map((h) => h.id)).toContain(id),
    effect: async (id) => expect((await hooks()).map((h) => h.id)).not.toContain(id),
  },
  {
    route: 'POST /api/v1/webhooks/{id}/rotate-secret',
    on: "an admin's hook",
    cells: ADMIN_ONLY(200),
    target: () => world.hook.id,
    fresh: async () => (await newHook()).id,
    request: post((id) => `/api/v1/webhooks/${id}/rotate-secret`, { keepPrevious: false }),
    unknownId: () => sameShapeId(world.hook.id),
    objectBlind: true,
    unchanged: async (id) => expect((await hooks()).find((h) => h.id === id)?.rotatedAt).toBeNull(),
    effect: async (id) => expect((await hooks()).find((h) => h.id === id)?.rotatedAt).toEqual(expect.any(String)),
  },

  // ---- reports
  {
    route: 'GET /api/v1/reports/toil',
    on: 'the last 30 days',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/reports/toil' }),
    sees: {
      pick: (b) => namesIn((b as { runbooks: Array<{ runbookId: string; executions: number }> }).runbooks.filter((r) => r.executions > 0), (r) => r.runbookId, { 'web-echo': 'web-echo', 'db-echo': 'db-echo' }),
      expect: { webSupport: ['web-echo'], webLead: ['web-echo'], dbTeam: ['db-echo'], security: ['db-echo', 'web-echo'], noRule: [], admin: ['db-echo', 'web-echo'] },
    },
  },

  // ---- audit trail
  {
    route: 'GET /api/v1/audit/records',
    on: 'the execution.requested records',
    cells: ANY_USER,
    target: () => '',
    request: () => ({ method: 'GET', path: '/api/v1/audit/records?type=execution.requested&limit=200' }),
    sees: {
      pick: (b) => namesIn((b as { records: Array<{ seq: number }> }).records, (r) => r.seq, { [world.webRecord]: 'web', [world.dbRecord]: 'db' }),
      expect: { webSupport: ['web'], webLead: ['web'], dbTeam: ['db'], security: ['db', 'web'], noRule: [], admin: ['db', 'web'] },
    },
  },
  { route: 'GET /api/v1/audit/records/{seq}', on: "a web execution's record", cells: SEE_WEB, target: () => String(world.webRecord), request: (s) => ({ method: 'GET', path: `/api/v1/audit/records/${s}` }), unknownId: () => '987654321' },
  { route: 'GET /api/v1/audit/records/{seq}', on: "a db execution's record", cells: SEE_DB, target: () => String(world.dbRecord), request: (s) => ({ method: 'GET', path: `/api/v1/audit/records/${s}` }), unknownId: () => '987654321' },
  {
    route: 'GET /api/v1/audit/records/{seq}',
    on: 'a record of no execution (user.created)',
    cells: [401, 401, 401, 404, 404, 404, 200, 404, 200],
    target: () => String(world.userRecord),
    request: (s) => ({ method: 'GET', path: `/api/v1/audit/records/${s}` }),
    unknownId: () => '987654321',
  },
  { route: 'GET /api/v1/audit/export', on: 'a web execution', cells: SEE_WEB, target: () => world.webDone.id, request: (id) => ({ method: 'GET', path: `/api/v1/audit/export?execution=${id}` }), unknownId: unknownExecution },
  { route: 'GET /api/v1/audit/export', on: 'a db execution', cells: SEE_DB, target: () => world.dbDone.id, request: (id) => ({ method: 'GET', path: `/api/v1/audit/export?execution=${id}` }), unknownId: unknownExecution },
  { route: 'GET /api/v1/audit/export', on: 'the whole log', cells: WHOLE_TRAIL(200), target: () => '', request: () => ({ method: 'GET', path: '/api/v1/audit/export' }) },
  { route: 'GET /api/v1/audit/verifications', on: 'the last verification', cells: WHOLE_TRAIL(200), target: () => '', request: () => ({ method: 'GET', path: '/api/v1/audit/verifications' }) },
  {
    route: 'POST /api/v1/audit/verifications',
    on: 'the live log',
    cells: WHOLE_TRAIL(202),
    target: () => '',
    request: post(() => '/api/v1/audit/verifications'),
    unchanged: async () => expect((await admin<{ running: unknown }>('GET', '/api/v1/audit/verifications')).running).toBeNull(),
  },

  // ---- last: revoking cuts the db agent off, so nothing after this needs it
  {
    route: 'POST /api/v1/agents/{id}/revoke',
    on: 'the db agent',
    cells: ADMIN_ONLY(200),
    target: () => world.agents.db,
    request: post((id) => `/api/v1/agents/${id}/revoke`, { reason: 'matrix' }),
    unknownId: () => sameShapeId(world.agents.db),
    objectBlind: true,
    unchanged: async (id) => expect(await agentStatus(id)).toBe('online'),
    effect: async (id, a) => {
      expect(JSON.parse(a.text)).toEqual({ id, status: 'revoked', alreadyRevoked: false });
      expect(await agentStatus(id)).toBe('revoked');
    },
  },
];

// Counts taken right before each row's refused calls (rows run one after another).
let reloads = 0;
let tokensCreated = 0;
let historyBefore = 0;
let subscriptionsBefore = 0;
let hooksBefore = 0;

/** Status → the error kind web/errors.ts maps it from. */
const KIND: Record<number, string> = { 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found' };

/** A refusal's text with the names that differ between two requests made uniform. */
const normalized = (a: Answer, ids: readonly string[]): string => {
  let t = a.requestId ? a.text.split(a.requestId).join('REQUEST') : a.text;
  for (const id of ids) if (id) t = t.split(id).join('ID');
  return t;
};

/** The one error body: nothing else at the top, nothing unknown inside, the request id the header's. */
const expectErrorBody = (a: Answer, what: string): void => {
  expect(a.type, what).toMatch(/^application\/json/);
  const body = JSON.parse(a.text) as Record<string, unknown>;
  expect(Object.keys(body), what).toEqual(['error']);
  const e = body['error'] as Record<string, unknown>;
  for (const k of Object.keys(e)) expect(['kind', 'message', 'hint', 'details', 'requestId'], `${what}: field ${k}`).toContain(k);
  expect(e['kind'], what).toBe(KIND[a.status]);
  expect(e['message'], what).toEqual(expect.stringMatching(/\S/));
  expect(e['requestId'], what).toBe(a.requestId);
  // No stack traces, no token material.
  expect(a.text, what).not.toMatch(/\n\s+at |hru_/);
};

describe('every route against every role', () => {
  beforeAll(async () => {
    fleet = await Fleet.create();
    const dir = join(fleet.dir, 'runbooks');
    await mkdir(dir);
    await writeFile(join(dir, 'runbooks.yaml'), RUNBOOKS);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await fleet.startCoordinator(['--runbooks-dir', dir]);
    const [root, webSupport, webLead, dbTeam, security, noRule, revoked] = await Promise.all([
      fleet.ensureAdmin(),
      fleet.user('wendy', ['web']),
      fleet.user('will', ['web-leads']),
      fleet.user('dora', ['db']),
      fleet.user('carol', ['security']),
      fleet.user('nina', ['nobody']),
      // An admin's token, revoked: it must be worth exactly as much as a forged one.
      fleet.user('rex', ['admins']),
      fleet.user('hookbot', ['web']),
    ]);
    const listed = await fleet.admin(['user', 'tokens', 'rex', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const tokenIds = (JSON.parse(listed.stdout) as { tokens: Array<{ id: string }> }).tokens.map((t) => t.id);
    expect(tokenIds).toHaveLength(1);
    const rv = await fleet.admin(['user', 'revoke-token', tokenIds[0]!]);
    expect(rv.code, rv.stderr).toBe(0);
    world.tokens = { admin: root, webSupport, webLead, dbTeam, security, noRule, revoked, forged: `hru_${randomBytes(32).toString('base64url')}` };

    const [webToken, dbToken] = await Promise.all([fleet.token(['--labels', 'role=web']), fleet.token(['--labels', 'role=db'])]);
    await Promise.all([fleet.startAgent('web-1', { token: webToken }), fleet.startAgent('db-1', { token: dbToken })]);
    const [web, db] = await Promise.all([fleet.waitOnline('web-1'), fleet.waitOnline('db-1')]);
    world.agents = { web, db };

    // Executions of each team, started by its own people (and one of each running, by an admin).
    const [webDone, dbDone, webPending, dbPending, webRunning, dbRunning] = await Promise.all([
      startAs('webSupport', 'web-echo', { message: 'seen by web' }),
      startAs('dbTeam', 'db-echo'),
      startAs('webSupport', 'web-guarded', { reason: 'matrix' }),
      startAs('dbTeam', 'db-guarded', { reason: 'matrix' }),
      startAs('admin', 'web-long'),
      startAs('admin', 'db-long'),
    ]);
    [world.webDone, world.dbDone] = await Promise.all([fleet.waitExecution(webDone), fleet.waitExecution(dbDone)]);
    expect([world.webDone.state, world.dbDone.state]).toEqual(['succeeded', 'succeeded']);
    Object.assign(world, { webPending, dbPending, webRunning: await running(webRunning), dbRunning: await running(dbRunning) });

    const seqOf = async (query: string): Promise<number> => {
      const r = await admin<{ records: Array<{ seq: number }> }>('GET', `/api/v1/audit/records?${query}&limit=1`);
      expect(r.records, query).toHaveLength(1);
      return r.records[0]!.seq;
    };
    [world.webRecord, world.dbRecord, world.userRecord] = await Promise.all([
      seqOf(`type=execution.requested&execution=${webDone}`),
      seqOf(`type=execution.requested&execution=${dbDone}`),
      seqOf('type=user.created'),
    ]);
    [world.subscription, world.hook] = await Promise.all([newSubscription(), newHook()]);
  });

  afterAll(async () => {
    await fleet?.close();
  });

  it('has a row for every route the OpenAPI document declares, and none it does not', async () => {
    // The document itself is public (it describes the API, not its data), a forged token notwithstanding.
    const [published, withForged] = await Promise.all([send('anonymous', { method: 'GET', path: '/api/v1/openapi.json' }), send('forged', { method: 'GET', path: '/api/v1/openapi.json' })]);
    expect([published.status, withForged.status]).toEqual([200, 200]);
    const doc = JSON.parse(published.text) as { paths: Record<string, Record<string, unknown>> };
    const declared = Object.entries(doc.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`));
    expect(new Set(ROWS.map((r) => r.route))).toEqual(new Set(declared));
    for (const r of ROWS) expect(r.cells, `${r.route} on ${r.on}`).toHaveLength(ROLES.length);
  });

  it.each(ROWS.map((r) => [`${r.route} on ${r.on}`, r] as const))('%s', async (what, row) => {
    const target = await row.target();
    [reloads, tokensCreated, historyBefore, subscriptionsBefore, hooksBefore] = await Promise.all([auditCount('runbooks.reloaded'), auditCount('token.created'), historyCount(), subscriptions().then((s) => s.length), hooks().then((h) => h.length)]);
    const expected = new Map(ROLES.map((role, i) => [role, row.cells[i]!]));
    const refused = ROLES.filter((r) => expected.get(r)! >= 400);
    const allowed = ROLES.filter((r) => expected.get(r)! < 400);

    // The refused callers first, all on the one shared object, then it must be as it was.
    const refusals = await Promise.all(refused.map(async (role) => [role, await send(role, row.request(target))] as const));
    expect(Object.fromEntries(refusals.map(([role, a]) => [role, a.status])), what).toEqual(Object.fromEntries(refused.map((r) => [r, expected.get(r)])));
    for (const [role, a] of refusals) expectErrorBody(a, `${what} as ${role}`);
    await row.unchanged?.(target);

    // A hidden object answers as a missing one, byte for byte but the ids and the request id.
    const unknownId = row.unknownId?.();
    if (unknownId !== undefined) {
      await Promise.all(
        refusals.map(async ([role, a]) => {
          const blind = a.status === 401 || a.status === 404 || row.objectBlind === true || row.disclosure?.roles.includes(role) === true;
          if (!blind) return;
          const u = await send(role, row.request(unknownId));
          const same = u.status === a.status && normalized(u, [unknownId]) === normalized(a, [target]) && u.headers.join('\n') === a.headers.join('\n');
          if (row.disclosure?.roles.includes(role)) {
            // Today's answer gives the object away; once fixed, make the cell 404 and drop the disclosure.
            expect(same, `${what} as ${role}: fixed? ${row.disclosure.why}`).toBe(false);
          } else {
            expect(normalized(u, [unknownId]), `${what} as ${role}: hidden vs missing`).toBe(normalized(a, [target]));
            expect(u.status).toBe(a.status);
            expect(u.headers, `${what} as ${role}: headers`).toEqual(a.headers);
          }
        }),
      );
    }
    for (const role of row.disclosure?.roles ?? []) expect(refused, `${what}: a disclosure is about a refused cell`).toContain(role);

    // Then those who may, each on an object of its own where the call consumes it.
    const answers = await Promise.all(
      allowed.map(async (role) => {
        const id = row.fresh ? await row.fresh() : target;
        return [role, id, await send(role, row.request(id))] as const;
      }),
    );
    expect(Object.fromEntries(answers.map(([role, , a]) => [role, a.status])), what).toEqual(Object.fromEntries(allowed.map((r) => [r, expected.get(r)])));
    for (const [role, id, a] of answers) {
      if (row.effect) await row.effect(id, a, role);
      if (row.sees) {
        const want = row.sees.expect[role];
        expect(want, `${what}: the row names what ${role} sees`).toBeDefined();
        expect(row.sees.pick(JSON.parse(a.text)), `${what}: what ${role} sees`).toEqual(want);
      }
    }
    await row.cleanup?.(target);
  });

  it('answers a forged token and a revoked admin token alike, and as no token at all but for the message', async () => {
    const call: Call = { method: 'GET', path: `/api/v1/executions/${world.webDone.id}` };
    const [forged, revoked, anonymous] = await Promise.all([send('forged', call), send('revoked', call), send('anonymous', call)]);
    expect(normalized(revoked, [])).toBe(normalized(forged, []));
    expect(revoked.headers).toEqual(forged.headers);
    expect(anonymous.status).toBe(401);
    // No token is told how to get one; a bad one is told it is bad, whatever it once was.
    expect((JSON.parse(anonymous.text) as { error: { message: string } }).error.message).toMatch(/Authorization: Bearer/);
    expect((JSON.parse(revoked.text) as { error: { message: string } }).error.message).toBe('API token is invalid, expired or revoked');
  });
  /**
   * A hidden runbook's options and targets are never judged for a caller who may not see it:
   * policy comes first, and the answer is the missing runbook's, byte for byte but the ids.
   */
  it.each<[string, Role, Call, Call, string, string]>([
    [
      'a bad option for a hidden runbook: the 404 of a missing one, not a 400 listing its options',
      'noRule',
      { method: 'POST', path: '/api/v1/executions', body: { runbook: 'db-guarded', options: { bogus: '1' } } },
      { method: 'POST', path: '/api/v1/executions', body: { runbook: 'db-garded', options: { bogus: '1' } } },
      'db-guarded',
      'db-garded',
    ],
    [
      'bad targets for a hidden runbook: the 404 of a missing one, not a 400',
      'webSupport',
      { method: 'POST', path: '/api/v1/executions', body: { runbook: 'db-echo', targets: 'role=(' } },
      { method: 'POST', path: '/api/v1/executions', body: { runbook: 'db-ehco', targets: 'role=(' } },
      'db-echo',
      'db-ehco',
    ],
  ])('hides: %s', async (_what, role, hidden, missing, hiddenId, missingId) => {
    const [h, m] = await Promise.all([send(role, hidden), send(role, missing)]);
    expect(m.status).toBe(404);
    expect(h.status).toBe(404);
    expect(normalized(h, [hiddenId])).toBe(normalized(m, [missingId]));
    expect(h.text).not.toMatch(/this runbook takes|expected a value/);
  });

  /**
   * Answers that tell a caller about something it may not view, found while writing this matrix
   * and left as they are (reported in the closing note). Each pair is (hidden, missing): today
   * they differ; once fixed they will not, and this test fails to say so.
   */
  it.each<[string, Role, Call, Call, RegExp]>([
    [
      'POST /hooks/{id} unsigned: 401 for a hook that exists, 404 for one that does not (an existence oracle without any credential; ids are 80 random bits)',
      'anonymous',
      { method: 'POST', path: '/hooks/HOOK', body: {} },
      { method: 'POST', path: '/hooks/MISSING', body: {} },
      /missing headers/,
    ],
  ])('still discloses: %s', async (_what, role, hidden, missing, today) => {
    const fill = (c: Call): Call => ({ ...c, path: c.path.replace('HOOK', world.hook.id).replace('MISSING', sameShapeId(world.hook.id)) });
    const [h, m] = await Promise.all([send(role, fill(hidden)), send(role, fill(missing))]);
    expect(m.status).toBe(404);
    expect(h.text).toMatch(today);
    expect(h.status, 'fixed: the hidden object now answers as a missing one; make this an equality check').not.toBe(404);
  });
});
