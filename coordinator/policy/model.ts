/**
 * The policy model: validated `kind: Policy` documents, the requests the evaluator decides and
 * the decisions it returns. Plain data only, so decisions can be logged, audited and shown.
 */
import type { Selector } from '../../core/selector.js';

export const ACTIONS = ['run', 'view', 'approve', 'cancel', 'admin'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

/** Actions whose rules may be limited to target agents; the others are about the runbook alone. */
export const TARGETED_ACTIONS: readonly PolicyAction[] = ['run', 'cancel'];

export type Effect = 'allow' | 'deny';

/** Which runbooks a rule covers: any id glob, any tag or any owner team matching is enough. */
export interface RunbookMatcher {
  readonly ids: readonly string[];
  readonly tags: readonly string[];
  readonly owners: readonly string[];
}

export interface PolicyRule {
  /** The rule's name inside its policy. */
  readonly name: string;
  /** `<policy name>/<rule name>`: how decisions, audit records and explanations name it. */
  readonly id: string;
  readonly effect: Effect;
  readonly actions: readonly PolicyAction[] | '*';
  /** `user:NAME`, `group:NAME` or `*`. */
  readonly subjects: readonly string[];
  /** null: every runbook, and also requests about no runbook in particular (admin). */
  readonly runbooks: RunbookMatcher | null;
  /** null: any target. Only limits run and cancel. */
  readonly targets: Selector | null;
  /** The selector as written back by formatSelector (null with `targets`). */
  readonly targetsText: string | null;
  readonly description: string | undefined;
}

export interface Policy {
  readonly name: string;
  readonly description: string | undefined;
  /** Group name → members, in addition to the groups users have in the user store. */
  readonly groups: Readonly<Record<string, readonly string[]>>;
  readonly rules: readonly PolicyRule[];
}

// ------------------------------------------------------------------ requests

export interface Subject {
  readonly user: string;
  /** The user's groups from the user store; groups declared in policies are added to these. */
  readonly groups: readonly string[];
}

export interface RunbookRef {
  readonly id: string;
  readonly tags: readonly string[];
  readonly owner: string;
}

export interface TargetAgent {
  readonly id: string;
  readonly name: string;
  /** The agent's labels; rule selectors also see `name` and `id`, as the engine's selection does. */
  readonly labels: Readonly<Record<string, string>>;
}

export interface DecisionRequest {
  readonly subject: Subject;
  readonly action: PolicyAction;
  /** Absent for requests about no runbook in particular (admin operations, ad-hoc commands). */
  readonly runbook?: RunbookRef;
  /**
   * The targets of a run or cancel: the selector (text or parsed) and, when known, the agents it
   * selects now. With agents, each one is decided; with only a selector, rules must provably
   * cover it. Ignored for view, approve and admin.
   */
  readonly targets?: { readonly selector: Selector | string; readonly agents?: readonly TargetAgent[] };
}

// ------------------------------------------------------------------ decisions

/** One dimension of one rule checked against the request. */
export interface Check {
  readonly ok: boolean;
  /** Why it matched or not, as a phrase ("action run is in [run, view]"). */
  readonly detail: string;
}

/** How one rule fared against a request: every rule is reported, applicable or not. */
export interface RuleTrace {
  readonly rule: string;
  readonly effect: Effect;
  readonly description: string | undefined;
  /** Action, subject and runbook all matched: the rule takes part in the decision. */
  readonly applies: boolean;
  readonly action: Check;
  readonly subject: Check;
  readonly runbook: Check;
  /** How the rule's target limit relates to the request's targets (ok: it covers them all, or it has none). */
  readonly targets: Check;
}

/** The decision for one concrete target agent. */
export interface TargetDecision {
  readonly agentId: string;
  readonly agent: string;
  readonly allowed: boolean;
  /** The rule that allowed or denied this agent; undefined: no rule covers it (default deny). */
  readonly rule: string | undefined;
}

export interface Decision {
  readonly allowed: boolean;
  /** Where the decision came from: an allow rule, a deny rule, or no rule at all. */
  readonly effect: Effect | 'default-deny';
  /** `<policy>/<rule>` that made the decision; undefined for the default deny. */
  readonly rule: string | undefined;
  /** One human sentence. */
  readonly reason: string;
  /** Rules whose action, subject and runbook matched (target limits aside), in policy order. */
  readonly matchedRules: readonly string[];
  /** Every rule of every policy, and why it matched or not. */
  readonly considered: readonly RuleTrace[];
  /** The subject's groups as decided: the user store's plus those policies declare. */
  readonly groups: readonly string[];
  /** Per concrete agent, when the request listed agents (run/cancel). */
  readonly perTarget?: readonly TargetDecision[];
}
