/**
 * The approver's inbox: executions waiting for an approval this user may give (policy allows
 * them to approve the runbook, and they are one of its approvers and not the requester), with
 * what they need to decide: who asked, why, the options (the runbook's own `reason` option
 * among them), the targets and who approved so far.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Database } from '../../coordinator/store/database.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import { approvalInbox } from '../../coordinator/engine/approval-inbox.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, json, NOTHING } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

export interface PendingApproval {
  executionId: string;
  runbookId: string | null;
  requestedBy: string;
  /** The requester's reason (`--reason`). */
  reason: string | null;
  targets: string;
  /** The run's options as given (secrets masked), including a runbook's own `reason` option. */
  options: Record<string, string>;
  createdAt: string;
  gate: number;
  required: number;
  /** Who may approve (user:NAME, group:NAME, *); empty: anyone but the requester. */
  from: string[];
  /** Who approved so far. */
  approvals: string[];
  message: string;
}

const PendingApprovalSchema = z
  .object({
    executionId: z.string(),
    runbookId: z.string().nullable(),
    requestedBy: z.string(),
    reason: z.string().nullable(),
    targets: z.string(),
    options: z.record(z.string(), z.string()),
    createdAt: z.string(),
    gate: z.number(),
    required: z.number(),
    from: z.array(z.string()),
    approvals: z.array(z.string()),
    message: z.string(),
  })
  .openapi('PendingApproval');

export type PendingApprovalSchemaMatches = Expect<Same<z.infer<typeof PendingApprovalSchema>, PendingApproval>>;

const inboxRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['approvals'],
  summary: 'Executions waiting for an approval you may give',
  request: { query: NOTHING },
  responses: { 200: json(z.object({ approvals: z.array(PendingApprovalSchema) }).openapi('ApprovalInbox'), 'the inbox'), ...errorResponses() },
});

export function approvalRoutes(db: Database, access: ExecutionAccess): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(inboxRoute, async (c) => {
    const out: PendingApproval[] = [];
    for (const a of await approvalInbox(db, access, c.get('user'))) {
      out.push({
        executionId: a.executionId,
        runbookId: a.runbookId,
        requestedBy: a.requestedBy,
        reason: a.reason,
        targets: a.targets,
        options: a.options,
        createdAt: a.createdAt,
        gate: a.gate,
        required: a.required,
        from: [...a.from],
        approvals: a.decided.filter((d) => d.decision === 'approve').map((d) => d.approver),
        message: a.message,
      });
    }
    return c.json({ approvals: out }, 200);
  });
  return app;
}
