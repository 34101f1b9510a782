/** Execution read API: one execution with its nodes and step runs, and stored output. */
import { Hono, type Context } from 'hono';
import type { User } from '../../coordinator/auth/user-store.js';
import type { Database } from '../../coordinator/store/database.js';
import { HandrailError, invalidArgument, notFound } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import type { ExecutionEvents } from '../../coordinator/engine/execution-events.js';
import { executionEventStream, type OutputFeed } from './execution-events.js';
import type { AuthVariables } from '../auth/bearer.js';
import type { RequestIdVariables } from '../request-id.js';
import type { StepResult } from '../../core/step.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';

export interface ExecutionView {
  id: string;
  kind: string;
  runbookId: string | null;
  runbookDigest: string | null;
  requestedBy: string;
  options: Record<string, unknown>;
  targets: string;
  state: string;
  reason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  nodes: Array<{ agentId: string; agentName: string; state: string; reason: string | null }>;
  steps: Array<{
    id: string;
    agentId: string | null;
    stepIndex: number;
    attempt: number;
    handler: boolean;
    name: string;
    state: string;
    exitCode: number | null;
    error: string | null;
    dispatchedAt: string | null;
    finishedAt: string | null;
    /** Bytes of output the coordinator stored (at most the step's output limit). */
    stdoutBytes: number;
    stderrBytes: number;
    /**
     * From the agent's signed result (null until one is stored): whether the agent cut a
     * stream at the output limit, and how many bytes of it the agent kept and hashed.
     */
    stdoutTruncated: boolean | null;
    stderrTruncated: boolean | null;
    stdoutReportedBytes: number | null;
    stderrReportedBytes: number | null;
  }>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function loadExecution(db: Database, id: string): Promise<ExecutionView | undefined> {
  const e = await db.get<{
    id: string; kind: string; runbook_id: string | null; runbook_digest: string | null; requested_by: string; options_json: string; targets: string;
    state: string; reason: string | null; created_at: number; started_at: number | null; finished_at: number | null;
  }>('SELECT * FROM executions WHERE id = ?', [id]);
  if (!e) return undefined;
  const nodes = await db.all<{ agent_id: string; agent_name: string; state: string; reason: string | null }>(
    'SELECT agent_id, agent_name, state, reason FROM execution_nodes WHERE execution_id = ? ORDER BY node_index',
    [id],
  );
  const steps = await db.all<{
    id: string; agent_id: string | null; step_index: number; attempt: number; handler: number; name: string; state: string; exit_code: number | null;
    error: string | null; dispatched_at: number | null; finished_at: number | null; stdout_bytes: number; stderr_bytes: number; result_payload: Buffer | null;
  }>(
    'SELECT id, agent_id, step_index, attempt, handler, name, state, exit_code, error, dispatched_at, finished_at, stdout_bytes, stderr_bytes, result_payload FROM step_runs WHERE execution_id = ? ORDER BY dispatched_at, id',
    [id],
  );
  return {
    id: e.id,
    kind: e.kind,
    runbookId: e.runbook_id,
    runbookDigest: e.runbook_digest,
    requestedBy: e.requested_by,
    options: JSON.parse(e.options_json) as Record<string, unknown>,
    targets: e.targets,
    state: e.state,
    reason: e.reason,
    createdAt: iso(e.created_at) as string,
    startedAt: iso(e.started_at),
    finishedAt: iso(e.finished_at),
    nodes: nodes.map((n) => ({ agentId: n.agent_id, agentName: n.agent_name, state: n.state, reason: n.reason })),
    steps: steps.map((s) => {
      const reported = reportedOutput(s.result_payload);
      return {
        id: s.id,
        agentId: s.agent_id,
        stepIndex: s.step_index,
        attempt: s.attempt,
        handler: s.handler === 1,
        name: s.name,
        state: s.state,
        exitCode: s.exit_code,
        error: s.error,
        dispatchedAt: iso(s.dispatched_at),
        finishedAt: iso(s.finished_at),
        stdoutBytes: s.stdout_bytes,
        stderrBytes: s.stderr_bytes,
        stdoutTruncated: reported?.stdoutTruncated ?? null,
        stderrTruncated: reported?.stderrTruncated ?? null,
        stdoutReportedBytes: reported?.stdoutBytes ?? null,
        stderrReportedBytes: reported?.stderrBytes ?? null,
      };
    }),
  };
}

/** What a stored signed result says about the output (it was verified before it was stored). */
function reportedOutput(payload: Buffer | null): Pick<StepResult, 'stdoutTruncated' | 'stderrTruncated' | 'stdoutBytes' | 'stderrBytes'> | undefined {
  if (!payload) return undefined;
  try {
    return decodeStepResult(payload);
  } catch {
    return undefined;
  }
}

export async function readOutput(db: Database, stepRunId: string, stream: 1 | 2): Promise<Buffer> {
  const rows = await db.all<{ data: Buffer }>('SELECT data FROM step_output WHERE step_run_id = ? AND stream = ? ORDER BY offset', [stepRunId, stream]);
  return Buffer.concat(rows.map((r) => r.data));
}

async function jsonBody(c: Context, optional = false): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '' && optional) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalidArgument('request body must be JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument('request body must be a JSON object');
  return v as Record<string, unknown>;
}

export interface ExecutionSummary {
  id: string;
  kind: string;
  runbookId: string | null;
  requestedBy: string;
  targets: string;
  state: string;
  reason: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface ExecutionListQuery {
  readonly state?: string;
  readonly runbookId?: string;
  readonly requestedBy?: string;
  /** Opaque cursor from a previous page's `next`. */
  readonly before?: string;
  readonly limit: number;
}

/** Newest first, keyset-paginated on (created_at, id): constant cost however deep the history. */
export async function listExecutions(db: Database, q: ExecutionListQuery): Promise<{ executions: ExecutionSummary[]; next: string | null }> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (q.state) {
    where.push('state = ?');
    params.push(q.state);
  }
  if (q.runbookId) {
    where.push('runbook_id = ?');
    params.push(q.runbookId);
  }
  if (q.requestedBy) {
    where.push('requested_by = ?');
    params.push(q.requestedBy);
  }
  if (q.before) {
    const m = /^(\d+):([a-z0-9-]+)$/.exec(q.before);
    if (!m) throw invalidArgument('"before" is not a cursor from a previous page');
    where.push('(created_at < ? OR (created_at = ? AND id < ?))');
    params.push(Number(m[1]), Number(m[1]), m[2] as string);
  }
  const rows = await db.all<{ id: string; kind: string; runbook_id: string | null; requested_by: string; targets: string; state: string; reason: string | null; created_at: number; finished_at: number | null }>(
    `SELECT id, kind, runbook_id, requested_by, targets, state, reason, created_at, finished_at FROM executions
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`,
    [...params, q.limit + 1],
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    executions: page.map((e) => ({
      id: e.id,
      kind: e.kind,
      runbookId: e.runbook_id,
      requestedBy: e.requested_by,
      targets: e.targets,
      state: e.state,
      reason: e.reason,
      createdAt: new Date(e.created_at).toISOString(),
      finishedAt: iso(e.finished_at),
    })),
    next: rows.length > q.limit && last ? `${last.created_at}:${last.id}` : null,
  };
}

/** Who may see an execution: its requester, or anyone the policy lets view its runbook (admins for ad-hoc ones). */
export type ExecutionVisibility = (user: User, execution: { readonly kind: string; readonly runbookId: string | null; readonly requestedBy: string }) => boolean;

export interface ExecutionControl {
  /** `requestId`: the API request's id (web/request-id.ts), for the audit records it causes. */
  start(req: { runbookId: string; options: Record<string, string>; targets: string | undefined; reason: string | undefined; user: User; requestId: string }): Promise<{ executionId: string; state: string }>;
  decide(executionId: string, user: User, decision: 'approve' | 'deny', comment: string): Promise<{ state: string; remaining: number }>;
  cancel(executionId: string, user: User): Promise<boolean>;
  /** Resolves when the execution finishes or the timeout passes. */
  waitFinished(executionId: string, timeoutMs: number): Promise<void>;
}

const ACTIVE = new Set(['queued', 'running', 'awaiting_approval']);

export function executionRoutes(db: Database, control: ExecutionControl, live: { events: ExecutionEvents; output: OutputFeed }, canView: ExecutionVisibility): Hono<{ Variables: AuthVariables & RequestIdVariables }> {
  const app = new Hono<{ Variables: AuthVariables & RequestIdVariables }>();
  /** 404 rather than 403: an execution one may not see is not disclosed. */
  const visible = async (user: User, id: string): Promise<void> => {
    const row = await db.get<{ kind: string; runbook_id: string | null; requested_by: string }>('SELECT kind, runbook_id, requested_by FROM executions WHERE id = ?', [id]);
    if (!row || !canView(user, { kind: row.kind, runbookId: row.runbook_id, requestedBy: row.requested_by })) throw notFound(`no execution ${id}`);
  };
  app.get('/:id/events', async (c) => {
    await visible(c.get('user'), c.req.param('id'));
    return executionEventStream(c, db, live.events, live.output, c.req.param('id'));
  });
  app.get('/', async (c) => {
    const limitText = c.req.query('limit') ?? '50';
    const limit = Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalidArgument('limit must be a whole number from 1 to 500');
    const q: ExecutionListQuery = {
      limit,
      ...(c.req.query('state') ? { state: c.req.query('state') as string } : {}),
      ...(c.req.query('runbook') ? { runbookId: c.req.query('runbook') as string } : {}),
      ...(c.req.query('user') ? { requestedBy: c.req.query('user') as string } : {}),
      ...(c.req.query('before') ? { before: c.req.query('before') as string } : {}),
    };
    const user = c.get('user');
    const page = await listExecutions(db, q);
    return c.json({ ...page, executions: page.executions.filter((e) => canView(user, e)) });
  });
  app.post('/', async (c) => {
    const body = await jsonBody(c);
    const runbook = body['runbook'];
    if (typeof runbook !== 'string' || runbook === '') throw invalidArgument('"runbook" (the runbook id) is required');
    const options = body['options'] ?? {};
    if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgument('"options" must be an object of NAME: value');
    const opts: Record<string, string> = {};
    for (const [k, v] of Object.entries(options as Record<string, unknown>)) {
      if (typeof v === 'string') opts[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') opts[k] = String(v);
      else throw invalidArgument(`option "${k}" must be a string, number or boolean`);
    }
    const targets = body['targets'];
    if (targets !== undefined && typeof targets !== 'string') throw invalidArgument('"targets" must be a selector string');
    const reason = body['reason'];
    if (reason !== undefined && typeof reason !== 'string') throw invalidArgument('"reason" must be a string');
    const out = await control.start({ runbookId: runbook, options: opts, targets, reason: reason === undefined ? undefined : reason.slice(0, 500), user: c.get('user'), requestId: c.get('requestId') });
    return c.json(out, 201);
  });
  for (const decision of ['approve', 'deny'] as const) {
    app.post(`/:id/${decision}`, async (c) => {
      const body = await jsonBody(c, true);
      const comment = body['comment'] ?? '';
      if (typeof comment !== 'string') throw invalidArgument('"comment" must be a string');
      return c.json(await control.decide(c.req.param('id'), c.get('user'), decision, comment));
    });
  }
  app.post('/:id/cancel', async (c) => {
    const id = c.req.param('id');
    const view = await loadExecution(db, id);
    if (!view) throw notFound(`no execution ${id}`);
    const changed = await control.cancel(id, c.get('user'));
    if (!changed && !['queued', 'running', 'awaiting_approval'].includes(view.state)) {
      throw new HandrailError('failed_precondition', `execution ${id} already ended (${view.state})`);
    }
    return c.json({ executionId: id, state: 'canceling' }, 202);
  });
  // ?wait=30s long-polls until the execution has finished (or the wait is over).
  app.get('/:id', async (c) => {
    const id = c.req.param('id');
    await visible(c.get('user'), id);
    let view = await loadExecution(db, id);
    if (!view) throw notFound(`no execution ${id}`);
    const wait = c.req.query('wait');
    if (wait !== undefined && ACTIVE.has(view.state)) {
      let ms: number;
      try {
        ms = Math.min(parseDuration(wait), 120_000);
      } catch (e) {
        throw invalidArgument(`wait: ${(e as Error).message}`);
      }
      const done = control.waitFinished(id, ms);
      // Re-read after subscribing: it may have finished in between.
      view = (await loadExecution(db, id)) ?? view;
      if (ACTIVE.has(view.state)) {
        await done;
        view = (await loadExecution(db, id)) ?? view;
      }
    }
    return c.json(view);
  });
  app.get('/:id/steps/:stepRunId/output', async (c) => {
    await visible(c.get('user'), c.req.param('id'));
    const stream = c.req.query('stream') ?? 'stdout';
    if (stream !== 'stdout' && stream !== 'stderr') throw invalidArgument('stream must be stdout or stderr');
    const row = await db.get<{ id: string }>('SELECT id FROM step_runs WHERE id = ? AND execution_id = ?', [c.req.param('stepRunId'), c.req.param('id')]);
    if (!row) throw notFound('no such step run in this execution');
    const data = await readOutput(db, row.id, stream === 'stdout' ? 1 : 2);
    return c.body(new Uint8Array(data), 200, { 'content-type': 'application/octet-stream' });
  });
  return app;
}
