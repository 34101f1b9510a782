/**
 * What a user may see, derived from the same rules as everything else (no separate grants):
 *
 *  - an execution: their own; one of a runbook they may `view` or `approve` (approvers see what
 *    they are asked to approve); an ad-hoc one only with `admin`;
 *  - the execution history: the same, as a scope a query can apply (visibleRunbooks and own
 *    executions), so that filtering happens before paging, never after;
 *  - the audit trail: all of it with `admin`, or with `view` granted over every runbook (a rule
 *    with no `runbooks`, or ids ["*"]: view "about no runbook in particular", as a compliance
 *    role is given); otherwise only the records of executions they may see (the history's
 *    scope), never records of no execution (logins, tokens, keys);
 *  - agents: with `admin`, all of them; otherwise the agents some runbook they may run could
 *    target under the policy (each agent decided as a run would decide it).
 *
 * Pure: policies, subjects and plain values in, plain values out.
 */
import { matches, type Selector } from '../../core/selector.js';
import { decide } from './evaluate.js';
import type { Policy, RunbookRef, Subject, TargetAgent } from './model.js';

/** An execution as far as seeing it goes: who asked, and what it runs. */
export interface ExecutionRef {
  readonly kind: string;
  /** null for ad-hoc executions. */
  readonly runbook: RunbookRef | null;
  readonly requestedBy: string;
}

export function canViewRunbookExecutions(policies: readonly Policy[], subject: Subject, runbook: RunbookRef): boolean {
  return decide(policies, { subject, action: 'view', runbook }).allowed || decide(policies, { subject, action: 'approve', runbook }).allowed;
}

/** Whether a subject may see an execution, and the rule that says so (undefined: their own, or the default deny). */
export interface ViewDecision {
  readonly allowed: boolean;
  readonly rule: string | undefined;
  readonly reason: string;
}

export function viewExecutionDecision(policies: readonly Policy[], subject: Subject, e: ExecutionRef): ViewDecision {
  const pick = (d: ViewDecision): ViewDecision => ({ allowed: d.allowed, rule: d.rule, reason: d.reason });
  if (e.requestedBy === subject.user) return { allowed: true, rule: undefined, reason: `${subject.user} requested it` };
  if (e.kind !== 'runbook' || e.runbook === null) return pick(decide(policies, { subject, action: 'admin' }));
  const view = decide(policies, { subject, action: 'view', runbook: e.runbook });
  if (view.allowed) return pick(view);
  const approve = decide(policies, { subject, action: 'approve', runbook: e.runbook });
  // Refused: the view decision names what refused it (a deny rule, or the default deny).
  return pick(approve.allowed ? approve : view);
}

/**
 * Whether a subject may see a runbook at all: view or run it (the catalog's rule, evaluate.ts
 * visibleRunbooks). A runbook they may not see is "not found" to them, also when they ask to run it.
 */
export function viewRunbookDecision(policies: readonly Policy[], subject: Subject, runbook: RunbookRef): ViewDecision {
  const pick = (d: ViewDecision): ViewDecision => ({ allowed: d.allowed, rule: d.rule, reason: d.reason });
  const view = decide(policies, { subject, action: 'view', runbook });
  if (view.allowed) return pick(view);
  const run = decide(policies, { subject, action: 'run', runbook });
  return pick(run.allowed ? run : view);
}

export function canViewExecution(policies: readonly Policy[], subject: Subject, e: ExecutionRef): boolean {
  return viewExecutionDecision(policies, subject, e).allowed;
}

/** Which executions a history query may return for a subject. */
export type ExecutionScope =
  | { readonly all: true }
  | {
      readonly all: false;
      /** Their own executions, whatever they ran. */
      readonly user: string;
      /** Runbooks whose executions they may see. */
      readonly runbookIds: readonly string[];
      /** Whether they may see ad-hoc executions (the admin action). */
      readonly adhoc: boolean;
    };

/**
 * `runbooks`: every runbook executions may refer to (loaded now, or run before and since
 * removed). Seeing all of them and ad-hoc ones is the unfiltered scope.
 */
export function executionScope(policies: readonly Policy[], subject: Subject, runbooks: readonly RunbookRef[]): ExecutionScope {
  const adhoc = decide(policies, { subject, action: 'admin' }).allowed;
  const runbookIds = runbooks.filter((rb) => canViewRunbookExecutions(policies, subject, rb)).map((rb) => rb.id);
  if (adhoc && runbookIds.length === runbooks.length) return { all: true };
  return { all: false, user: subject.user, runbookIds, adhoc };
}

/** Which audit records a reader may see. */
export type AuditTrailScope = { readonly all: true } | { readonly all: false; readonly executions: ExecutionScope };

/**
 * The whole trail for `admin` or for `view` over every runbook (decided about no runbook in
 * particular, as admin operations are); otherwise the records of the executions in their
 * history scope. `runbooks`: as for executionScope.
 */
export function auditTrailScope(policies: readonly Policy[], subject: Subject, runbooks: readonly RunbookRef[]): AuditTrailScope {
  if (decide(policies, { subject, action: 'admin' }).allowed || decide(policies, { subject, action: 'view' }).allowed) return { all: true };
  return { all: false, executions: executionScope(policies, subject, runbooks) };
}

/** A runbook as far as targeting goes. */
export interface TargetableRunbook {
  readonly ref: RunbookRef;
  /** The widest set it may touch. */
  readonly selector: Selector;
}

/**
 * The agents a subject may see: 'all' with the admin action; otherwise the ids of the agents
 * that some runbook the subject may run would select and the policy would let them run it on.
 */
export function visibleAgents(policies: readonly Policy[], subject: Subject, runbooks: readonly TargetableRunbook[], agents: readonly TargetAgent[]): 'all' | Set<string> {
  if (decide(policies, { subject, action: 'admin' }).allowed) return 'all';
  const out = new Set<string>();
  for (const rb of runbooks) {
    if (!decide(policies, { subject, action: 'run', runbook: rb.ref }).allowed) continue;
    const selected = agents.filter((a) => matches(rb.selector, { ...a.labels, name: a.name, id: a.id }));
    if (selected.length === 0) continue;
    const d = decide(policies, { subject, action: 'run', runbook: rb.ref, targets: { selector: rb.selector, agents: selected } });
    for (const t of d.perTarget ?? []) if (t.allowed) out.add(t.agentId);
  }
  return out;
}
