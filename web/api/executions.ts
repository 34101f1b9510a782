/**
 * Execution API: start, approve or deny, cancel; read one execution (optionally long-polling
 * until it ends), the history, stored output, and the live event stream. The reading itself is
 * coordinator/store/execution-queries.ts; who may see what is coordinator/engine/execution-access.ts.
 *
 * What a user may not see does not exist for them: every route that names an execution answers
 * 404 for one they may not see, whatever the action, before anything else is checked.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { User } from '../../coordinator/auth/user-store.js';
import type { Database } from '../../coordinator/store/database.js';
import type { Logger } from 'pino';
import { HandrailError, notFound, RefusedError } from '../../core/errors.js';
import { DEFAULT_DENY_RULE } from '../../coordinator/audit/events.js';
import { parseDuration } from '../../core/duration.js';
import { echo } from '../../core/echo.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import type { FinishWatch } from '../../coordinator/engine/execution-events.js';
import { ACTIVE_EXECUTION_STATES, executionOwner, hasStepRun, listExecutions, loadExecution, readOutput, type ExecutionView } from '../../coordinator/store/execution-queries.js';
import { executionEventStream, type FeedSource } from './execution-events.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, json, NOTHING, optionalBody, requiredBody } from '../validation/schemas.js';
import {
  Canceling,
  Decided,
  DecisionBody,
  EventsHeaders,
  ExecutionIdParam,
  ExecutionPage,
  ExecutionViewSchema,
  ListQuery,
  listQueryOf,
  OutputQuery,
  ShowQuery,
  StartExecutionBody,
  Started,
  StepOutputParams,
} from './execution-schemas.js';

export interface ExecutionControl {
  /** `requestId`: the API request's id (web/request-id.ts), for the audit records it causes. */
  start(req: { runbookId: string; options: Record<string, string>; targets: string | undefined; reason: string | undefined; user: User; requestId: string }): Promise<{ executionId: string; state: ExecutionView['state'] }>;
  decide(executionId: string, user: User, decision: 'approve' | 'deny', comment: string): Promise<{ state: ExecutionView['state']; remaining: number }>;
  cancel(executionId: string, user: User): Promise<boolean>;
  /** Waits for the execution to finish or the timeout to pass; started before the state is read. */
  watchFinished(executionId: string, timeoutMs: number): FinishWatch;
}

const ACTIVE = ACTIVE_EXECUTION_STATES;
const MAX_WAIT_MS = 120_000;

const tags = ['executions'];

const startRoute = createRoute({
  method: 'post',
  path: '/',
  tags,
  summary: 'Run a runbook',
  description: 'Policy, option validation and approvals apply. Unknown fields are refused.',
  request: { query: NOTHING, body: requiredBody(StartExecutionBody) },
  responses: { 201: json(Started, 'started (or waiting for approval)'), ...errorResponses(403, 404, 413, 415) },
});

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags,
  summary: 'Execution history',
  description:
    'Newest first, keyset-paginated, only executions you may see (yours, those of runbooks you may view or approve, ad-hoc ones for admins). ' +
    'Filters combine: runbook, user, state, team (the owner when it was requested) and a time window (from inclusive, to exclusive; a date as `to` includes that day).',
  request: { query: ListQuery },
  responses: { 200: json(ExecutionPage, 'a page'), ...errorResponses() },
});

const showRoute = createRoute({
  method: 'get',
  path: '/{id}',
  tags,
  summary: 'One execution: nodes, steps, approvals',
  request: { params: ExecutionIdParam, query: ShowQuery },
  responses: { 200: json(ExecutionViewSchema, 'the execution'), ...errorResponses(404) },
});

const eventsRoute = createRoute({
  method: 'get',
  path: '/{id}/events',
  tags,
  summary: 'Live events (Server-Sent Events), lossless',
  description:
    'Every `output` event stored so far, then live ones, in order, each with an `id:`; then `state` (the execution, whenever it changes) and a last `end`; `ping` when idle. ' +
    'Output data: `{seq, stepRunId, agentId, agentName, stream, offset, bytes, encoding, data}` (`encoding` utf8 or base64). Reconnect with `Last-Event-ID` to continue after the last output seen.',
  request: { params: ExecutionIdParam, headers: EventsHeaders, query: NOTHING },
  responses: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errorResponses(404) },
});

const outputRoute = createRoute({
  method: 'get',
  path: '/{id}/steps/{stepRunId}/output',
  tags,
  summary: 'Stored output of one step run',
  request: { params: StepOutputParams, query: OutputQuery },
  responses: { 200: { description: 'the bytes', content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } }, ...errorResponses(404) },
});

const decisionRoute = (decision: 'approve' | 'deny') =>
  createRoute({
    method: 'post',
    path: `/{id}/${decision}`,
    tags,
    summary: decision === 'approve' ? 'Approve an execution waiting for approval' : 'Deny an execution waiting for approval (it is canceled)',
    request: { params: ExecutionIdParam, query: NOTHING, body: optionalBody(DecisionBody) },
    responses: { 200: json(Decided, 'decided'), ...errorResponses(403, 404, 409, 413, 415, 503) },
  });

const cancelRoute = createRoute({
  method: 'post',
  path: '/{id}/cancel',
  tags,
  summary: 'Cancel an execution',
  request: { params: ExecutionIdParam, query: NOTHING, body: optionalBody(NOTHING) },
  responses: { 202: json(Canceling, 'cancel requested'), ...errorResponses(403, 404, 409, 413, 415) },
});

/** `db`: a read-only connection (committed data only); every change goes through `control`. */
export function executionRoutes(db: Database, control: ExecutionControl, feed: FeedSource, access: ExecutionAccess, log: Logger): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  /**
   * 404 rather than 403: an execution one may not see is not disclosed. `audited`: the action
   * of a state-changing request, whose refusal is audited (the answer is the same 404).
   */
  const visible = async (user: User, id: string, audited?: 'approve' | 'deny' | 'cancel'): Promise<{ state: ExecutionView['state'] }> => {
    const owner = await executionOwner(db, id);
    if (!owner) throw notFound(`no execution ${id}`);
    const d = await access.viewDecision(user, owner);
    if (d.allowed) return owner;
    if (audited === undefined) throw notFound(`no execution ${id}`);
    throw new RefusedError('not_found', `no execution ${id}`, { action: audited, targetId: id, runbookId: owner.runbookId, rule: d.rule ?? DEFAULT_DENY_RULE, reason: d.reason });
  };

  app.openapi(startRoute, async (c) => {
    const body = c.req.valid('json');
    // A null-prototype object: no option name can reach Object.prototype.
    const options: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(body.options ?? {})) options[k] = String(v);
    // A runbook the caller may not see is answered as a missing one, before its options or
    // targets are judged (their errors would describe it); the refusal is audited.
    const user = c.get('user');
    const sees = access.runbookDecision(user, body.runbook);
    if (sees && !sees.allowed) {
      throw new RefusedError('not_found', `no runbook ${echo(body.runbook)} (see GET /api/v1/runbooks or \`handrail runbooks lint\`)`, {
        action: 'run', targetId: body.runbook, runbookId: body.runbook, rule: sees.rule ?? DEFAULT_DENY_RULE, reason: sees.reason,
      });
    }
    const out = await control.start({ runbookId: body.runbook, options, targets: body.targets, reason: body.reason, user, requestId: c.get('requestId') });
    return c.json(out, 201);
  });

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid('query');
    const page = await listExecutions(db, listQueryOf(q, 50), await access.scope(c.get('user')));
    return c.json(page, 200);
  });

  app.openapi(showRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { wait } = c.req.valid('query');
    if (wait === undefined) {
      const view = await loadExecution(db, id);
      if (!view || !(await access.viewDecision(c.get('user'), view)).allowed) throw notFound(`no execution ${id}`);
      return c.json(view, 200);
    }
    // A long-poll: watching before the first read means a finish after that read wakes the
    // watch and one before it shows in the read, so the read can be the small one (who may see
    // it, and its state), and the whole view is read once, when it is answered.
    const watch = control.watchFinished(id, Math.min(parseDuration(wait), MAX_WAIT_MS));
    try {
      if (watch.running) {
        // Started here and not ended before the watch began: who may see it is known, no read.
        if (!(await access.viewDecision(c.get('user'), watch.running)).allowed) throw notFound(`no execution ${id}`);
        await watch.finished;
      } else {
        const { state } = await visible(c.get('user'), id);
        if (ACTIVE.has(state)) await watch.finished;
      }
      const view = await loadExecution(db, id);
      if (!view) throw notFound(`no execution ${id}`);
      return c.json(view, 200);
    } finally {
      watch.cancel();
    }
  });

  app.openapi(eventsRoute, async (c) => {
    const { id } = c.req.valid('param');
    const last = c.req.valid('header')['last-event-id'];
    await visible(c.get('user'), id);
    return executionEventStream(c, feed, id, last === undefined ? 0 : Number(last), log);
  });

  app.openapi(outputRoute, async (c) => {
    const { id, stepRunId } = c.req.valid('param');
    const stream = c.req.valid('query').stream ?? 'stdout';
    await visible(c.get('user'), id);
    if (!(await hasStepRun(db, id, stepRunId))) throw notFound('no such step run in this execution');
    const data = await readOutput(db, stepRunId, stream === 'stdout' ? 1 : 2);
    return c.body(new Uint8Array(data), 200, { 'content-type': 'application/octet-stream' });
  });

  for (const decision of ['approve', 'deny'] as const) {
    app.openapi(decisionRoute(decision), async (c) => {
      const { id } = c.req.valid('param');
      const { comment } = c.req.valid('json');
      await visible(c.get('user'), id, decision);
      return c.json(await control.decide(id, c.get('user'), decision, comment ?? ''), 200);
    });
  }

  app.openapi(cancelRoute, async (c) => {
    const { id } = c.req.valid('param');
    await visible(c.get('user'), id, 'cancel');
    const changed = await control.cancel(id, c.get('user'));
    if (!changed) {
      const view = await loadExecution(db, id);
      if (view && !ACTIVE.has(view.state)) throw new HandrailError('failed_precondition', `execution ${id} already ended (${view.state})`);
    }
    return c.json({ executionId: id, state: 'canceling' as const }, 202);
  });
  return app;
}
