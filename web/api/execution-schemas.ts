/**
 * Request and response schemas of the execution API. Requests are validated with these; the
 * OpenAPI document is generated from them; the response schemas are checked against the types
 * the read side returns (coordinator/store/execution-queries.ts), so the three cannot drift.
 */
import { z } from '@hono/zod-openapi';
import { EXECUTION_STATES, type ApprovalRecord, type ExecutionListQuery, type ExecutionSummary, type ExecutionView, type PendingApprovalGate } from '../../coordinator/store/execution-queries.js';
import { historyWindow } from '../../coordinator/engine/history-filters.js';
import { invalidArgument } from '../../core/errors.js';
import { DURATION, FILTER_TIME, handrailId, queryInt, RUNBOOK_ID, safeRecord, strictObject, TEAM, USER_NAME } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

/** Option names as runbooks declare them (validate-runbook.ts). */
const OPTION_NAME = z
  .string()
  .max(63, { error: 'option names are at most 63 characters', abort: true })
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, { error: 'option names are letters, digits, _ and -, starting with a letter or _' });

/** Options a request may carry; runbooks declare far fewer. */
export const MAX_OPTIONS = 100;

const OptionValue = z.union([z.string().max(100_000, { error: 'must be at most 100000 characters long' }), z.number(), z.boolean()], {
  error: 'must be a string, a number or true/false',
});

export const StartExecutionBody = strictObject({
  runbook: RUNBOOK_ID.openapi({ description: 'the runbook id' }),
  options: safeRecord(OPTION_NAME, OptionValue, MAX_OPTIONS, 'an option name')
    .optional()
    .openapi({ description: `NAME: value, at most ${MAX_OPTIONS}; numbers and booleans are taken as their text. Checked against the runbook's declared options.`, example: { reason: 'deploy stuck' } }),
  targets: z.string().max(2000, { error: 'must be at most 2000 characters long' }).optional().openapi({ description: 'a selector that narrows the runbook\'s targets (never widens them)', example: 'zone=a,!canary' }),
  reason: z.string().max(500, { error: 'must be at most 500 characters long' }).optional().openapi({ description: 'why (recorded with the execution)' }),
}).openapi('StartExecution');

export const Started = z.object({ executionId: z.string(), state: z.enum(EXECUTION_STATES) }).openapi('ExecutionStarted');

export const ExecutionIdParam = z.object({
  id: handrailId('exe', 'an execution id').openapi({ param: { name: 'id', in: 'path' }, example: 'exe-0123456789abcdef' }),
});

export const StepOutputParams = z.object({
  id: handrailId('exe', 'an execution id').openapi({ param: { name: 'id', in: 'path' } }),
  stepRunId: handrailId('sr', 'a step run id').openapi({ param: { name: 'stepRunId', in: 'path' } }),
});

export const ListQuery = strictObject({
  state: z.enum(EXECUTION_STATES).optional(),
  runbook: RUNBOOK_ID.optional().openapi({ description: 'only this runbook' }),
  user: USER_NAME.optional().openapi({ description: 'only what this user requested (among what you may see)' }),
  team: TEAM.optional().openapi({ description: "only executions of runbooks this team owned (metadata.owner) when they were requested" }),
  from: FILTER_TIME.optional().openapi({ description: 'requested at or after: a UTC date (that day\'s start) or a time (YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM], UTC if no zone)' }),
  to: FILTER_TIME.optional().openapi({ description: 'requested before: a time, or a UTC date (the whole of that day included)' }),
  before: z
    .string()
    .max(100, { error: 'is not a cursor from a previous page', abort: true })
    .regex(/^[0-9]{1,15}:[a-z0-9-]{1,64}$/, { error: 'is not a cursor from a previous page' })
    .optional()
    .openapi({ description: 'the previous page\'s `next`' }),
  limit: queryInt(1, 500).optional().openapi({ description: 'page size, 1 to 500 (default 50)', example: '50' }),
});

export const ShowQuery = strictObject({
  wait: DURATION.optional().openapi({ description: 'long-poll: answer when the execution has ended or this long has passed (at most 120s)' }),
});

export const OutputQuery = strictObject({ stream: z.enum(['stdout', 'stderr']).optional().openapi({ description: 'default stdout' }) });

export const EventsHeaders = z.object({
  'last-event-id': z
    .string()
    .max(20, { error: 'is not an event id from this stream', abort: true })
    .regex(/^[0-9]{1,15}$/, { error: 'is not an event id from this stream' })
    .optional()
    .openapi({ description: 'resume after this output event (browsers send it when they reconnect)' }),
});

export const DecisionBody = strictObject({ comment: z.string().max(2000, { error: 'must be at most 2000 characters long' }).optional() }).openapi('ApprovalDecision');

export const Decided = z.object({ state: z.enum(EXECUTION_STATES), remaining: z.number().int() }).openapi('ApprovalDecided');

export const Canceling = z.object({ executionId: z.string(), state: z.literal('canceling') });

const iso = z.string().openapi({ format: 'date-time' });

const ApprovalRecordSchema = z.object({
  gate: z.number().int().openapi({ description: '-1: the execution\'s own approval; N: the approval step at index N' }),
  approver: z.string(),
  decision: z.enum(['approve', 'deny']),
  comment: z.string(),
  decidedAt: iso,
});

const PendingGateSchema = z.object({
  gate: z.number().int(),
  required: z.number().int(),
  from: z.array(z.string()).openapi({ description: 'user:NAME, group:NAME or *; empty: anyone but the requester' }),
  message: z.string(),
  approvals: z.number().int().openapi({ description: 'approvals given so far' }),
});

export const ExecutionViewSchema = z
  .object({
    id: z.string(),
    kind: z.string().openapi({ description: 'runbook or adhoc' }),
    runbookId: z.string().nullable(),
    runbookDigest: z.string().nullable().openapi({ description: 'SHA-256 of the runbook document it ran' }),
    requestedBy: z.string(),
    options: z.record(z.string(), z.unknown()).openapi({ description: 'as given, defaults applied; secrets shown as ********' }),
    targets: z.string(),
    state: z.enum(EXECUTION_STATES),
    reason: z.string().nullable().openapi({ description: 'why the requester asked for it' }),
    stateReason: z.string().nullable().openapi({ description: 'why it is in its state: the failure, who canceled or denied it' }),
    createdAt: iso,
    startedAt: iso.nullable(),
    finishedAt: iso.nullable(),
    canceledBy: z.string().nullable(),
    approvals: z.array(ApprovalRecordSchema).openapi({ description: 'every approval decision, with its comment, in order' }),
    pendingApproval: PendingGateSchema.nullable().openapi({ description: 'while awaiting approval: what it waits for' }),
    nodes: z.array(z.object({ agentId: z.string(), agentName: z.string(), state: z.string(), reason: z.string().nullable() })),
    steps: z.array(
      z.object({
        id: z.string(),
        agentId: z.string().nullable(),
        stepIndex: z.number().int(),
        attempt: z.number().int(),
        handler: z.boolean(),
        name: z.string(),
        state: z.string(),
        exitCode: z.number().int().nullable(),
        error: z.string().nullable(),
        dispatchedAt: iso.nullable(),
        finishedAt: iso.nullable(),
        stdoutBytes: z.number().int(),
        stderrBytes: z.number().int(),
        stdoutTruncated: z.boolean().nullable(),
        stderrTruncated: z.boolean().nullable(),
        stdoutReportedBytes: z.number().int().nullable(),
        stderrReportedBytes: z.number().int().nullable(),
      }),
    ),
  })
  .openapi('Execution');

export const ExecutionSummarySchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    runbookId: z.string().nullable(),
    team: z.string().nullable().openapi({ description: 'the team that owned the runbook when it was requested; null for ad-hoc' }),
    requestedBy: z.string(),
    targets: z.string(),
    state: z.enum(EXECUTION_STATES),
    reason: z.string().nullable(),
    stateReason: z.string().nullable(),
    createdAt: iso,
    finishedAt: iso.nullable(),
  })
  .openapi('ExecutionSummary');

/** The list query as the read side takes it, or a 400 (an unordered window) naming the fields. */
export function listQueryOf(q: z.infer<typeof ListQuery>, defaultLimit: number): ExecutionListQuery {
  const w = historyWindow(q.from, q.to);
  if ('error' in w) throw invalidArgument(w.error);
  return {
    limit: q.limit ?? defaultLimit,
    ...(q.state ? { state: q.state } : {}),
    ...(q.runbook ? { runbookId: q.runbook } : {}),
    ...(q.user ? { requestedBy: q.user } : {}),
    ...(q.team ? { team: q.team } : {}),
    ...(w.window.fromMs !== undefined ? { fromMs: w.window.fromMs } : {}),
    ...(w.window.toMs !== undefined ? { toMs: w.window.toMs } : {}),
    ...(q.before ? { before: q.before } : {}),
  };
}

export const ExecutionPage = z
  .object({ executions: z.array(ExecutionSummarySchema), next: z.string().nullable().openapi({ description: 'pass as `before` for the next page; null on the last' }) })
  .openapi('ExecutionPage');

/** The response schemas describe exactly what the read side returns. */
export type SchemasMatchTypes = [
  Expect<Same<z.infer<typeof ExecutionViewSchema>, ExecutionView>>,
  Expect<Same<z.infer<typeof ExecutionSummarySchema>, ExecutionSummary>>,
  Expect<Same<z.infer<typeof ApprovalRecordSchema>, ApprovalRecord>>,
  Expect<Same<z.infer<typeof PendingGateSchema>, PendingApprovalGate>>,
];
