/**
 * Execution API: start, approve or deny, cancel; read one execution (optionally long-polling
 * until it ends), the history, stored output, and the live event stream. The reading itself is
 * coordinator/engine/execution-queries.ts.
 */
import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import type { User } from '../../coordinator/auth/user-store.js';
import type { Database } from '../../coordinator/store/database.js';
import { HandrailError, invalidArgument, notFound } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import type { ExecutionEvents } from '../../coordinator/engine/execution-events.js';
import { executionOwner, hasStepRun, listExecutions, loadExecution, readOutput, type ExecutionListQuery, type ExecutionOwner } from '../../coordinator/engine/execution-queries.js';
import { executionEventStream, type OutputFeed } from './execution-events.js';
import type { AuthVariables } from '../auth/bearer.js';
import type { RequestIdVariables } from '../request-id.js';

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

/** Who may see an execution: its requester, or anyone the policy lets view its runbook (admins for ad-hoc ones). */
export type ExecutionVisibility = (user: User, execution: ExecutionOwner) => boolean;

export interface ExecutionControl {
  /** `requestId`: the API request's id (web/request-id.ts), for the audit records it causes. */
  start(req: { runbookId: string; options: Record<string, string>; targets: string | undefined; reason: string | undefined; user: User; requestId: string }): Promise<{ executionId: string; state: string }>;
  decide(executionId: string, user: User, decision: 'approve' | 'deny', comment: string): Promise<{ state: string; remaining: number }>;
  cancel(executionId: string, user: User): Promise<boolean>;
  /** Resolves when the execution finishes or the timeout passes. */
  waitFinished(executionId: string, timeoutMs: number): Promise<void>;
}

const ACTIVE = new Set(['queued', 'running', 'awaiting_approval']);

export function executionRoutes(db: Database, control: ExecutionControl, live: { events: ExecutionEvents; output: OutputFeed }, canView: ExecutionVisibility, log: Logger): Hono<{ Variables: AuthVariables & RequestIdVariables }> {
  const app = new Hono<{ Variables: AuthVariables & RequestIdVariables }>();
  /** 404 rather than 403: an execution one may not see is not disclosed. */
  const visible = async (user: User, id: string): Promise<void> => {
    const owner = await executionOwner(db, id);
    if (!owner || !canView(user, owner)) throw notFound(`no execution ${id}`);
  };
  app.get('/:id/events', async (c) => {
    await visible(c.get('user'), c.req.param('id'));
    return executionEventStream(c, db, live.events, live.output, c.req.param('id'), log);
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
    const stepRunId = c.req.param('stepRunId');
    if (!(await hasStepRun(db, c.req.param('id'), stepRunId))) throw notFound('no such step run in this execution');
    const data = await readOutput(db, stepRunId, stream === 'stdout' ? 1 : 2);
    return c.body(new Uint8Array(data), 200, { 'content-type': 'application/octet-stream' });
  });
  return app;
}
