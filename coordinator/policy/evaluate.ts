/**
 * Decisions: default deny, deny wins, and every decision names the rule that made it.
 *
 * A rule applies when its action, subject and runbook match. Target limits (run and cancel
 * only) are then decided in one of three ways:
 *  - with the concrete agents a run would touch, each agent must be covered by an applicable
 *    allow rule and by no applicable deny rule; one refused agent refuses the whole request;
 *  - with only a selector, a deny rule counts unless its targets provably cannot overlap, and
 *    allow rules must provably contain the selector (split on `in` values when one rule alone
 *    does not);
 *  - with no targets at all (listing what a user may run, view, approve), an allow rule
 *    counts whatever its target limit, and a deny rule counts only if it has none.
 */
import { formatSelector, matches, parseSelector, type Selector } from '../../core/selector.js';
import { agentsCheck, decideAgents, type Covers } from './agent-targets.js';
import { ACTIONS, TARGETED_ACTIONS, type Check, type Decision, type DecisionRequest, type Policy, type PolicyAction, type PolicyRule, type RuleTrace, type RunbookRef, type Subject } from './model.js';
import { defaultDeny, type Context, type Outcome } from './outcome.js';
import { effectiveGroups, matchAction, matchRunbook, matchSubject } from './rule-match.js';
import { decideSelector, selectorCheck } from './selector-targets.js';

/**
 * Decides a request against every loaded policy. Throws SelectorSyntaxError if the request's
 * targets are selector text that does not parse (callers validate user input before).
 */
export function decide(policies: readonly Policy[], req: DecisionRequest): Decision {
  const groups = effectiveGroups(policies, req.subject);
  const ctx: Context = { req, groups, what: describeRequest(req.action, req.runbook) };
  const targeted = req.targets !== undefined && TARGETED_ACTIONS.includes(req.action);
  const selector = targeted && req.targets ? toSelector(req.targets.selector) : undefined;
  const agents = targeted && req.targets?.agents && req.targets.agents.length > 0 ? req.targets.agents : undefined;

  const rules = policies.flatMap((p) => p.rules);
  const rows = rules.map((rule) => {
    const action = matchAction(rule, req.action);
    const subject = matchSubject(rule, req.subject.user, groups);
    const runbook = matchRunbook(rule, req.runbook);
    return { rule, action, subject, runbook, applies: action.ok && subject.ok && runbook.ok };
  });
  const applicable = rows.filter((r) => r.applies).map((r) => r.rule);

  let outcome: Outcome;
  let targetCheck: (rule: PolicyRule) => Check;
  if (agents && selector) {
    const labelled = agents.map((a) => ({ agent: a, labels: { ...a.labels, name: a.name, id: a.id } }));
    const covers: Covers = (rule, labels) => rule.targets === null || matches(rule.targets, labels);
    outcome = decideAgents(ctx, applicable, labelled, covers, formatSelector(selector));
    targetCheck = (rule) => agentsCheck(rule, labelled, covers);
  } else if (selector) {
    outcome = decideSelector(ctx, applicable, selector);
    targetCheck = (rule) => selectorCheck(rule, selector);
  } else {
    outcome = decideRunbook(ctx, applicable, TARGETED_ACTIONS.includes(req.action));
    targetCheck = (rule) => runbookTargetCheck(rule, req.action);
  }

  const considered: RuleTrace[] = rows.map((r) => ({
    rule: r.rule.id,
    effect: r.rule.effect,
    description: r.rule.description,
    applies: r.applies,
    action: r.action,
    subject: r.subject,
    runbook: r.runbook,
    targets: targetCheck(r.rule),
  }));
  return {
    allowed: outcome.allowed,
    effect: outcome.rule ? outcome.rule.effect : 'default-deny',
    rule: outcome.rule?.id,
    reason: outcome.reason,
    matchedRules: applicable.map((r) => r.id),
    considered,
    groups,
    ...(outcome.perTarget ? { perTarget: outcome.perTarget } : {}),
  };
}

/** Runbooks a subject may see: view or run allowed ("see only the actions they may run"). */
export function visibleRunbooks<T extends RunbookRef>(policies: readonly Policy[], subject: Subject, runbooks: readonly T[]): T[] {
  return runbooks.filter((rb) => decide(policies, { subject, action: 'view', runbook: rb }).allowed || decide(policies, { subject, action: 'run', runbook: rb }).allowed);
}

/** The actions a subject may take on a runbook (or, without one, on no runbook in particular), targets aside. */
export function allowedActions(policies: readonly Policy[], subject: Subject, runbook?: RunbookRef): PolicyAction[] {
  return ACTIONS.filter((action) => decide(policies, { subject, action, ...(runbook ? { runbook } : {}) }).allowed);
}

// ------------------------------------------------------------------ no targets

function decideRunbook(ctx: Context, applicable: readonly PolicyRule[], targetedAction: boolean): Outcome {
  const { user } = ctx.req.subject;
  // A deny limited to some targets does not refuse the runbook as a whole; each run checks it.
  const deny = applicable.find((r) => r.effect === 'deny' && r.targets === null);
  if (deny) return { allowed: false, rule: deny, reason: `${user} may not ${ctx.what}: denied by ${deny.id}` };
  const allow = applicable.find((r) => r.effect === 'allow');
  if (allow) {
    const limit = targetedAction && allow.targets ? ` (on targets ${allow.targetsText})` : '';
    return { allowed: true, rule: allow, reason: `${user} may ${ctx.what}${limit}: allowed by ${allow.id}` };
  }
  return { allowed: false, rule: undefined, reason: defaultDeny(ctx) };
}

function runbookTargetCheck(rule: PolicyRule, action: PolicyAction): Check {
  if (!rule.targets) return { ok: true, detail: 'any target' };
  if (!TARGETED_ACTIONS.includes(action)) return { ok: true, detail: `targets ${rule.targetsText} limit only run and cancel` };
  return rule.effect === 'allow'
    ? { ok: true, detail: `limited to targets ${rule.targetsText} (checked against each run's targets)` }
    : { ok: false, detail: `denies only targets ${rule.targetsText} (checked against each run's targets)` };
}

// ------------------------------------------------------------------ wording

function describeRequest(action: PolicyAction, runbook: RunbookRef | undefined): string {
  if (runbook) return `${action} ${runbook.id}`;
  return action === 'admin' ? 'perform admin operations' : `${action} outside any runbook`;
}

function toSelector(s: Selector | string): Selector {
  return typeof s === 'string' ? parseSelector(s) : s;
}

