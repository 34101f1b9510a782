/**
 * Who may see which executions and agents, for the API: the pure rules of
 * coordinator/policy/visibility.ts over the policies and runbooks in force now, and the owner
 * and tags a runbook had when it last ran (so its executions stay visible to the same people
 * after it is removed from the catalog).
 */
import type { Database } from '../store/database.js';
import type { AgentRecord } from '../registry/agent-registry.js';
import type { Policy, RunbookRef, Subject } from '../policy/model.js';
import { auditTrailScope, executionScope, viewExecutionDecision, viewRunbookDecision, type AuditTrailScope, visibleAgents, type ExecutionScope, type TargetableRunbook, type ViewDecision } from '../policy/visibility.js';
import { decide } from '../policy/evaluate.js';
import { recordedRunbook, recordedRunbooks, type ExecutionOwner } from '../store/execution-queries.js';
import { hostLabels, type Requester } from './engine.js';

export interface ExecutionAccess {
  /** Whether `user` may see this execution (what they may not see is "not found" to them). */
  canView(user: Requester, e: ExecutionOwner): Promise<boolean>;
  /** The same, with the rule and reason (for the audit record of a refusal it hides). */
  viewDecision(user: Requester, e: ExecutionOwner): Promise<ViewDecision>;
  /** Whether `user` may see runbook `runbookId` (view or run it); undefined: no such runbook is loaded. */
  runbookDecision(user: Requester, runbookId: string): ViewDecision | undefined;
  /** What the history query may return to `user`. */
  scope(user: Requester): Promise<ExecutionScope>;
  /** Which audit records `user` may see (coordinator/policy/visibility.ts, auditTrailScope). */
  auditScope(user: Requester): Promise<AuditTrailScope>;
  /** Whether `user` may approve executions of this runbook (policy; the two-person rule aside). */
  canApprove(user: Requester, runbookId: string): Promise<boolean>;
  /** 'all', or the ids of the agents `user` may see. */
  visibleAgents(user: Requester, agents: readonly AgentRecord[]): 'all' | Set<string>;
}

export interface LoadedRunbooks {
  get(id: string): TargetableRunbook | undefined;
  list(): readonly TargetableRunbook[];
}

export function executionAccess(db: Database, policies: () => readonly Policy[], runbooks: LoadedRunbooks): ExecutionAccess {
  const subject = (u: Requester): Subject => ({ user: u.name, groups: u.groups });
  /** The runbook as loaded now; else as it was when it last ran; else known by id alone. */
  const ref = async (id: string): Promise<RunbookRef> => runbooks.get(id)?.ref ?? (await recordedRunbook(db, id)) ?? { id, tags: [], owner: '' };
  /** Runbooks executions may refer to: loaded now, or run before and since removed. */
  const everyRunbook = async (): Promise<RunbookRef[]> => {
    const loaded = runbooks.list().map((r) => r.ref);
    const known = new Set(loaded.map((r) => r.id));
    return [...loaded, ...(await recordedRunbooks(db)).filter((r) => !known.has(r.id))];
  };
  const viewDecision = async (user: Requester, e: ExecutionOwner): Promise<ViewDecision> => {
    const runbook = e.kind === 'runbook' && e.runbookId !== null ? await ref(e.runbookId) : null;
    return viewExecutionDecision(policies(), subject(user), { kind: e.kind, runbook, requestedBy: e.requestedBy });
  };
  return {
    async canView(user, e) {
      return (await viewDecision(user, e)).allowed;
    },
    viewDecision,
    runbookDecision(user, runbookId) {
      const rb = runbooks.get(runbookId);
      return rb ? viewRunbookDecision(policies(), subject(user), rb.ref) : undefined;
    },
    async scope(user) {
      return executionScope(policies(), subject(user), await everyRunbook());
    },
    async auditScope(user) {
      return auditTrailScope(policies(), subject(user), await everyRunbook());
    },
    async canApprove(user, runbookId) {
      return decide(policies(), { subject: subject(user), action: 'approve', runbook: await ref(runbookId) }).allowed;
    },
    visibleAgents(user, agents) {
      const live = agents.filter((a) => a.revokedAt === null).map((a) => ({ id: a.id, name: a.name, labels: hostLabels(a) }));
      return visibleAgents(policies(), subject(user), runbooks.list(), live);
    },
  };
}
