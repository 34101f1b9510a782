/**
 * The approver's inbox, one rule for the API and the portal: executions waiting for an
 * approval `user` may give now (policy lets them approve the runbook, they are one of its
 * approvers, not the requester, and have not decided on this gate yet).
 */
import type { Database } from '../store/database.js';
import type { ExecutionAccess } from './execution-access.js';
import type { Requester } from './engine.js';
import { awaitingApprovals, type AwaitingApproval } from '../store/execution-queries.js';
import { checkApprover } from './approval-rules.js';

export async function approvalInbox(db: Database, access: ExecutionAccess, user: Requester): Promise<AwaitingApproval[]> {
  const out: AwaitingApproval[] = [];
  for (const a of await awaitingApprovals(db)) {
    if (a.runbookId === null || !(await access.canApprove(user, a.runbookId))) continue;
    if (!checkApprover({ approver: user, requester: a.requestedBy, from: a.from, alreadyDecided: a.decided.map((d) => d.approver) }).ok) continue;
    out.push(a);
  }
  return out;
}
