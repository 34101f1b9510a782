/**
 * GET /api/v1/reports/toil?from&to — the toil report as JSON (coordinator/engine/toil-report.ts):
 * per team and per runbook, over whole UTC days, counting only the executions the caller may
 * see. The portal's /toil page shows the same data (toilFor), so the two cannot differ.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Database } from '../../coordinator/store/database.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import type { Requester } from '../../coordinator/engine/engine.js';
import type { Catalog } from '../../coordinator/runbooks/catalog.js';
import { toilAggregates } from '../../coordinator/store/toil-queries.js';
import { toilPeriod, toilReport, type ToilPeriod, type ToilReport } from '../../coordinator/engine/toil-report.js';
import { invalidArgument } from '../../core/errors.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, json, strictObject } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

const DATE = z
  .string()
  .max(10, { error: 'must be a date, YYYY-MM-DD', abort: true })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date, YYYY-MM-DD', abort: true })
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), { error: 'is not a calendar date' });

export const ToilQuery = strictObject({
  from: DATE.optional().openapi({ description: 'first day (UTC), inclusive; default: 30 days before `to`', example: '2026-11-01' }),
  to: DATE.optional().openapi({ description: 'last day (UTC), inclusive; default: today', example: '2026-11-30' }),
});

const Figures = {
  executions: z.number(),
  succeeded: z.number(),
  successRate: z.number().nullable(),
  medianDurationMs: z.number().nullable(),
  hoursSaved: z.number(),
};

const ToilBody = z
  .object({
    from: z.string(),
    to: z.string(),
    teams: z.array(z.object({ team: z.string(), ...Figures })),
    runbooks: z.array(z.object({ runbookId: z.string(), title: z.string(), team: z.string(), manualMinutes: z.number().nullable(), ...Figures })),
  })
  .openapi('ToilReport');

/** The report with the period it covers (days, inclusive). */
export interface ToilReportBody extends ToilReport {
  from: string;
  to: string;
}

export type ToilBodyMatches = Expect<Same<z.infer<typeof ToilBody>, ToilReportBody>>;

/** The period from already-validated query dates, or a 400. */
export function periodOf(q: { from?: string | undefined; to?: string | undefined }, nowMs: number): ToilPeriod {
  const p = toilPeriod(q.from, q.to, nowMs);
  if ('error' in p) throw invalidArgument(p.error);
  return p;
}

/** The report for `user` over `period`: their scope, one aggregate query, the catalog's minutes. */
export async function toilFor(db: Database, access: ExecutionAccess, catalog: Catalog, user: Requester, period: ToilPeriod): Promise<ToilReport> {
  const aggregates = await toilAggregates(db, period, await access.scope(user));
  const info = catalog.list().map((l) => ({ id: l.runbook.metadata.id, title: l.runbook.metadata.title, owner: l.runbook.metadata.owner, manualMinutes: l.runbook.metadata.manualMinutes }));
  return toilReport(aggregates, info);
}

const toilRoute = createRoute({
  method: 'get',
  path: '/toil',
  tags: ['reports'],
  summary: 'Executions, success rate, median duration and hours saved per team and runbook, over a period (only what you may see)',
  request: { query: ToilQuery },
  responses: { 200: json(ToilBody, 'the report'), ...errorResponses() },
});

export function reportRoutes(db: Database, access: ExecutionAccess, catalog: Catalog, now: () => number): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(toilRoute, async (c) => {
    const period = periodOf(c.req.valid('query'), now());
    const r = await toilFor(db, access, catalog, c.get('user'), period);
    return c.json({ from: period.from, to: period.to, ...r }, 200);
  });
  return app;
}
