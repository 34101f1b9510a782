/** The approver's inbox: executions waiting for an approval this user may give. */
import { Hono } from 'hono';
import type { Database } from '../../coordinator/store/database.js';
import { checkApprover } from '../../coordinator/engine/approval-rules.js';
import type { AuthVariables } from '../auth/bearer.js';

export interface PendingApproval {
  executionId: string;
  runbookId: string | null;
  requestedBy: string;
  reason: string | null;
  targets: string;
  options: Record<string, string>;
  createdAt: string;
  gate: number;
  required: number;
  approvals: string[];
  message: string;
}

export function approvalRoutes(db: Database): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.get('/', async (c) => {
    const user = c.get('user');
    const rows = await db.all<{ id: string; runbook_id: string | null; requested_by: string; reason: string | null; targets: string; options_json: string; created_at: number; gate: number; approval_json: string }>(
      "SELECT id, runbook_id, requested_by, reason, targets, options_json, created_at, gate, approval_json FROM executions WHERE state = 'awaiting_approval' AND approval_json IS NOT NULL ORDER BY created_at",
    );
    const out: PendingApproval[] = [];
    for (const r of rows) {
      const a = JSON.parse(r.approval_json) as { required: number; from: string[]; message?: string };
      const decided = await db.all<{ approver: string; decision: string }>('SELECT approver, decision FROM approvals WHERE execution_id = ? AND gate = ?', [r.id, r.gate]);
      if (!checkApprover({ approver: user, requester: r.requested_by, from: a.from, alreadyDecided: decided.map((d) => d.approver) }).ok) continue;
      out.push({
        executionId: r.id,
        runbookId: r.runbook_id,
        requestedBy: r.requested_by,
        reason: r.reason,
        targets: r.targets,
        options: JSON.parse(r.options_json) as Record<string, string>,
        createdAt: new Date(r.created_at).toISOString(),
        gate: r.gate,
        required: a.required,
        approvals: decided.filter((d) => d.decision === 'approve').map((d) => d.approver),
        message: a.message ?? '',
      });
    }
    return c.json({ approvals: out });
  });
  return app;
}
