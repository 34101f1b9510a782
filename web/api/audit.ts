/**
 * /api/v1/audit — the audit trail over the API, as the portal's /audit page shows it:
 *
 *   GET  /records?type&actor&execution&from&to&before&limit   records newest first, keyset-paginated on seq
 *   GET  /records/{seq}                                       one record (404 when outside your scope)
 *   GET  /export?execution | ?from&to                         an export bundle (JSON Lines), as `handrail audit export` writes it
 *   GET  /verifications                                       the last verification of the live log, and one in progress
 *   POST /verifications                                       verify the live log now (202; the result is recorded and audited)
 *
 * Who sees what: coordinator/policy/visibility.ts (auditTrailScope). `admin`, or `view` over
 * every runbook, reads the whole trail, exports time ranges and runs verifications; anyone else
 * reads and exports only the records of executions they may see, and a record or execution
 * outside that is "not found".
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import type { AuditTrail, VerificationRun, RunningVerification } from '../../coordinator/audit/audit-trail.js';
import type { AuditTrailScope } from '../../coordinator/policy/visibility.js';
import type { TrailRecord } from '../../coordinator/audit/trail-record.js';
import { AUDIT_EVENT_TYPES, type AuditEventType } from '../../coordinator/audit/events.js';
import { exportPlan, trailFilter, TRAIL_MAX_PAGE, TRAIL_PAGE_SIZE, type TrailFilter, type TrailFilterInput } from '../../coordinator/audit/trail-filter.js';
import { HandrailError, invalidArgument, notFound } from '../../core/errors.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, handrailId, json, NOTHING, optionalBody, queryInt, strictObject } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

const TIME = z.string().max(40, { error: 'is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601', abort: true });

/** The filter fields, shared by the records query, the export and the portal's form. */
export const TrailFilterFields = {
  type: z.enum(AUDIT_EVENT_TYPES as unknown as [AuditEventType, ...AuditEventType[]]).optional().openapi({ description: 'only records of this event type (docs/audit-format.md lists them)', example: 'execution.requested' }),
  actor: z
    .string()
    .max(128, { error: 'is not an actor id (at most 128 characters)', abort: true })
    .regex(/^[A-Za-z0-9._:@-]+$/, { error: 'is not an actor id (a user name, agent id, … : letters, digits, . _ : @ -)' })
    .optional()
    .openapi({ description: "only records whose actor has this id (a user's name, an agent's id)" }),
  execution: handrailId('exe', 'an execution id').optional().openapi({ description: 'only the records of this execution', example: 'exe-0123456789abcdef' }),
  from: TIME.optional().openapi({ description: 'records at or after this time (YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601; UTC unless a zone is given)', example: '2026-11-23' }),
  to: TIME.optional().openapi({ description: 'records at or before this time (a day or minute covers all of it)', example: '2026-11-23T18:00' }),
};

export const TrailQuery = strictObject({
  ...TrailFilterFields,
  before: queryInt(1, Number.MAX_SAFE_INTEGER).optional().openapi({ description: "the previous page's `next`: records before this seq" }),
  limit: queryInt(1, TRAIL_MAX_PAGE).optional().openapi({ description: `page size, 1 to ${TRAIL_MAX_PAGE} (default ${TRAIL_PAGE_SIZE})` }),
});

export const ExportQuery = strictObject({ execution: TrailFilterFields.execution, from: TrailFilterFields.from, to: TrailFilterFields.to });

const SeqParam = z.object({ seq: queryInt(1, Number.MAX_SAFE_INTEGER).openapi({ param: { name: 'seq', in: 'path' }, example: '42' }) });

const RecordSchema = z
  .object({
    seq: z.number(),
    ts: z.string(),
    type: z.string(),
    code: z.string(),
    actor: z.object({ kind: z.string(), id: z.string() }),
    executionId: z.string().nullable(),
    data: z.unknown().openapi({ description: 'the record\'s data exactly as signed (secrets were masked before writing)' }),
    keyId: z.string(),
    hash: z.string(),
    prev: z.string(),
  })
  .openapi('AuditRecord');

type RecordBody = Omit<TrailRecord, 'fields'>;
export type RecordMatches = Expect<Same<z.infer<typeof RecordSchema>, { -readonly [K in keyof RecordBody]: RecordBody[K] extends { readonly kind: string; readonly id: string } ? { kind: string; id: string } : RecordBody[K] }>>;

const RecordPage = z.object({ records: z.array(RecordSchema), next: z.number().nullable().openapi({ description: 'pass as `before` for the next (older) page' }) }).openapi('AuditRecordPage');

const Verification = z
  .object({
    id: z.number(),
    startedAt: z.string(),
    finishedAt: z.string(),
    by: z.object({ kind: z.string(), id: z.string() }),
    source: z.string(),
    ok: z.boolean(),
    records: z.number(),
    firstSeq: z.number().nullable(),
    lastSeq: z.number().nullable(),
    firstBadSeq: z.number().nullable().openapi({ description: 'the first bad record (null when ok, or when the problem is not one record)' }),
    reason: z.string().nullable(),
  })
  .openapi('AuditVerification');
const Running = z.object({ startedAt: z.string(), by: z.object({ kind: z.string(), id: z.string() }) }).openapi('AuditVerificationRunning');
const Verifications = z.object({ last: Verification.nullable(), running: Running.nullable() }).openapi('AuditVerifications');
const VerifyStarted = z.object({ started: z.boolean().openapi({ description: 'false: one was already running, and this request joined it' }), running: Running }).openapi('AuditVerificationStarted');

const iso = (ms: number): string => new Date(ms).toISOString();
export const verificationBody = (v: VerificationRun): z.infer<typeof Verification> => ({
  id: v.id,
  startedAt: iso(v.startedAt),
  finishedAt: iso(v.finishedAt),
  by: { kind: v.actor.kind, id: v.actor.id },
  source: v.source,
  ok: v.ok,
  records: v.records,
  firstSeq: v.firstSeq,
  lastSeq: v.lastSeq,
  firstBadSeq: v.firstBadSeq,
  reason: v.reason,
});
const runningBody = (r: RunningVerification): z.infer<typeof Running> => ({ startedAt: iso(r.startedAt), by: { kind: r.actor.kind, id: r.actor.id } });
const recordBody = (r: TrailRecord): z.infer<typeof RecordSchema> => ({ seq: r.seq, ts: r.ts, type: r.type, code: r.code, actor: { ...r.actor }, executionId: r.executionId, data: r.data, keyId: r.keyId, hash: r.hash, prev: r.prev });

/** The filter of already shape-checked values, or a 400 naming the field. */
export function filterOf(input: TrailFilterInput): TrailFilter {
  const f = trailFilter(input);
  if (!f.ok) throw invalidArgument(`query ${f.message}`);
  return f.value;
}

/** Only whole-trail readers run and see verifications. */
export function requireWholeTrail(scope: AuditTrailScope, what: string): void {
  if (!scope.all) throw new HandrailError('permission_denied', `${what} needs view on the whole audit trail (admin, or view over every runbook)`);
}

/** An export for a filter under a scope, or the refusal (404 for an execution outside the scope). */
export async function exportFor(trail: AuditTrail, f: TrailFilter, scope: AuditTrailScope): ReturnType<AuditTrail['export']> {
  const plan = exportPlan(f, scope);
  if (!plan.ok) throw new HandrailError(plan.status === 'forbidden' ? 'permission_denied' : 'invalid_argument', plan.message);
  if (plan.kind === 'execution' && !(await trail.hasVisibleRecords(plan.executionId, scope))) throw notFound(`no audit records of execution ${plan.executionId} that you may see`);
  return trail.export(plan);
}

/** The download headers of an export: its name, and the verify flag it needs. */
export function bundleHeaders(b: Awaited<ReturnType<AuditTrail['export']>>): Record<string, string> {
  return {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="${b.fileName}"`,
      'content-length': String(b.bytes),
      'x-handrail-verify': `handrail audit verify ${b.fileName}${b.verifyFlag ? ` ${b.verifyFlag}` : ''}`,
      'x-handrail-records': b.stretch.first === null ? 'none' : `${b.stretch.first}..${b.stretch.last ?? b.stretch.first}`,
      'cache-control': 'no-store',
  };
}

const recordsRoute = createRoute({
  method: 'get',
  path: '/records',
  tags: ['audit'],
  summary: 'Audit records you may see, newest first, filtered; keyset-paginated on seq',
  request: { query: TrailQuery },
  responses: { 200: json(RecordPage, 'a page of records'), ...errorResponses() },
});

const recordRoute = createRoute({
  method: 'get',
  path: '/records/{seq}',
  tags: ['audit'],
  summary: 'One audit record (not found when it is outside what you may see)',
  request: { params: SeqParam, query: NOTHING },
  responses: { 200: json(RecordSchema, 'the record'), ...errorResponses(404) },
});

const exportRoute = createRoute({
  method: 'get',
  path: '/export',
  tags: ['audit'],
  summary: 'An export bundle of one execution (execution=ID) or a time range (from/to; none: the whole log), for `handrail audit verify`',
  description:
    'The bundle `handrail audit export` writes. A time range holds every record from the first to the last in it. The X-Handrail-Verify header says how to verify the file (`--execution ID` or `--range FROM..TO`). Time ranges need view on the whole trail; an execution, view on it.',
  request: { query: ExportQuery },
  responses: { 200: { description: 'the bundle (JSON Lines)', content: { 'application/x-ndjson': { schema: z.string() } } }, ...errorResponses(403, 404) },
});

const verificationsRoute = createRoute({
  method: 'get',
  path: '/verifications',
  tags: ['audit'],
  summary: 'The last verification of the live log (and one in progress); whole-trail readers only',
  request: { query: NOTHING },
  responses: { 200: json(Verifications, 'the last result'), ...errorResponses(403) },
});

const verifyRoute = createRoute({
  method: 'post',
  path: '/verifications',
  tags: ['audit'],
  summary: 'Verify the whole live log now, as `handrail audit verify --data-dir` does; the result is kept and audited (audit.verified)',
  request: { query: NOTHING, body: optionalBody(NOTHING) },
  responses: { 202: json(VerifyStarted, 'started (or joined the one running)'), ...errorResponses(403) },
});

export function auditRoutes(trail: AuditTrail, access: ExecutionAccess): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(recordsRoute, async (c) => {
    const q = c.req.valid('query');
    const scope = await access.auditScope(c.get('user'));
    const page = await trail.page({ ...filterOf(q), ...(q.before !== undefined ? { before: q.before } : {}), limit: q.limit ?? TRAIL_PAGE_SIZE }, scope);
    return c.json({ records: page.records.map(recordBody), next: page.next }, 200);
  });
  app.openapi(recordRoute, async (c) => {
    const { seq } = c.req.valid('param');
    const r = await trail.record(seq, await access.auditScope(c.get('user')));
    if (!r) throw notFound(`no audit record ${seq}`);
    return c.json(recordBody(r), 200);
  });
  app.openapi(exportRoute, async (c) => {
    const q = c.req.valid('query');
    const b = await exportFor(trail, filterOf(q), await access.auditScope(c.get('user')));
    // The route declares application/x-ndjson, which the typed router takes for JSON (c.json):
    // the bundle is streamed bytes instead.
    return c.body(b.body(), 200, bundleHeaders(b)) as never;
  });
  app.openapi(verificationsRoute, async (c) => {
    requireWholeTrail(await access.auditScope(c.get('user')), 'seeing verifications');
    const last = await trail.last();
    const running = trail.inProgress();
    return c.json({ last: last ? verificationBody(last) : null, running: running ? runningBody(running) : null }, 200);
  });
  app.openapi(verifyRoute, async (c) => {
    const user = c.get('user');
    requireWholeTrail(await access.auditScope(user), 'verifying the audit log');
    const v = trail.verify({ kind: 'user', id: user.name }, 'api');
    // The run records its own failure; the answer does not wait for it.
    v.done.catch(() => undefined);
    return c.json({ started: v.started, running: runningBody(v.info) }, 202);
  });
  return app;
}
