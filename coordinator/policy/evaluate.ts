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
import { formatSelector, matches, parseSelector, type Requirement, type Selector } from '../../core/selector.js';
import { selectorImplies, selectorsDisjoint, selectorSatisfiable, unimpliedRequirements } from '../../core/selector-implies.js';
import {
  ACTIONS,
  TARGETED_ACTIONS,
  type Check,
  type Decision,
  type DecisionRequest,
  type Policy,
  type PolicyAction,
  type PolicyRule,
  type RuleTrace,
  type RunbookRef,
  type Subject,
  type TargetAgent,
  type TargetDecision,
} from './model.js';
import { effectiveGroups, matchAction, matchRunbook, matchSubject } from './rule-match.js';

/** How far a selector is split on its `in` values to find rules covering each part. */
const MAX_SPLIT = 64;
/** Refused targets named in a reason sentence (explain and perTarget list them all). */
const NAMED_IN_REASON = 3;

interface Outcome {
  readonly allowed: boolean;
  readonly rule: PolicyRule | undefined;
  readonly reason: string;
  readonly perTarget?: TargetDecision[];
}

interface Context {
  readonly req: DecisionRequest;
  readonly groups: readonly string[];
  /** "run restart-web", "perform admin operations" … */
  readonly what: string;
}

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
    const covers = (rule: PolicyRule, labels: Readonly<Record<string, string>>): boolean => rule.targets === null || matches(rule.targets, labels);
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

// ------------------------------------------------------------------ concrete agents

interface Labelled {
  readonly agent: TargetAgent;
  readonly labels: Readonly<Record<string, string>>;
}

function decideAgents(
  ctx: Context,
  applicable: readonly PolicyRule[],
  agents: readonly Labelled[],
  covers: (rule: PolicyRule, labels: Readonly<Record<string, string>>) => boolean,
  selectorText: string,
): Outcome {
  const { user } = ctx.req.subject;
  const denies = applicable.filter((r) => r.effect === 'deny');
  const allows = applicable.filter((r) => r.effect === 'allow');
  const perTarget: TargetDecision[] = agents.map(({ agent, labels }) => {
    const deny = denies.find((r) => covers(r, labels));
    if (deny) return { agentId: agent.id, agent: agent.name, allowed: false, rule: deny.id };
    const allow = allows.find((r) => covers(r, labels));
    return { agentId: agent.id, agent: agent.name, allowed: allow !== undefined, rule: allow?.id };
  });
  const byId = new Map(applicable.map((r) => [r.id, r]));
  const refused = perTarget.filter((t) => !t.allowed);
  const n = perTarget.length;

  if (refused.length === 0) {
    const counts = countBy(perTarget.map((t) => t.rule as string));
    const first = byId.get(perTarget[0]?.rule as string);
    const by = counts.length === 1 ? (counts[0]?.[0] as string) : counts.map(([id, k]) => `${id} (${k})`).join(', ');
    return { allowed: true, rule: first, reason: `${user} may ${ctx.what} on ${n === 1 ? 'its target' : `all ${n} targets`}: allowed by ${by}`, perTarget };
  }

  const firstDeny = refused.find((t) => t.rule !== undefined);
  const rule = firstDeny ? byId.get(firstDeny.rule as string) : undefined;
  if (rule && rule.targets === null && refused.length === n && refused.every((t) => t.rule === rule.id)) {
    return { allowed: false, rule, reason: `${user} may not ${ctx.what}: denied by ${rule.id}`, perTarget };
  }
  const named = refused
    .slice(0, NAMED_IN_REASON)
    .map((t) => (t.rule ? `${t.agent} denied by ${t.rule}` : `${t.agent} covered by no allow rule`))
    .join('; ');
  const more = refused.length > NAMED_IN_REASON ? `; and ${refused.length - NAMED_IN_REASON} more` : '';
  const noun = ctx.req.action === 'run' ? 'run' : 'request';
  return {
    allowed: false,
    rule,
    reason: `${user} may not ${ctx.what} on ${selectorText}: ${refused.length} of ${n} target${n === 1 ? '' : 's'} ${refused.length === 1 ? 'is' : 'are'} not allowed (${named}${more}), so the ${noun} is refused as a whole`,
    perTarget,
  };
}

function agentsCheck(rule: PolicyRule, agents: readonly Labelled[], covers: (rule: PolicyRule, labels: Readonly<Record<string, string>>) => boolean): Check {
  const n = agents.length;
  if (!rule.targets) return { ok: true, detail: `any target (all ${n})` };
  const hit = agents.filter((a) => covers(rule, a.labels)).map((a) => a.agent.name);
  const verb = rule.effect === 'allow' ? 'covers' : 'denies';
  if (hit.length === 0) return { ok: false, detail: `${rule.targetsText} matches none of the ${n} target${n === 1 ? '' : 's'}` };
  if (hit.length === n) return { ok: true, detail: `${rule.targetsText} ${verb} ${n === 1 ? 'the target' : `all ${n} targets`}` };
  const names = hit.slice(0, 5).join(', ') + (hit.length > 5 ? ', …' : '');
  return { ok: true, detail: `${rule.targetsText} ${verb} ${hit.length} of ${n} targets (${names})` };
}

// ------------------------------------------------------------------ selector only

function decideSelector(ctx: Context, applicable: readonly PolicyRule[], selector: Selector): Outcome {
  const { user } = ctx.req.subject;
  const text = formatSelector(selector);
  const deny = applicable.find((r) => r.effect === 'deny' && (r.targets === null || !selectorsDisjoint(selector, r.targets)));
  if (deny) {
    if (!deny.targets) return { allowed: false, rule: deny, reason: `${user} may not ${ctx.what}: denied by ${deny.id}` };
    const all = selectorImplies(selector, deny.targets);
    return {
      allowed: false,
      rule: deny,
      reason: `${user} may not ${ctx.what} on ${text}: those targets ${all ? 'all match' : 'may include agents matching'} ${deny.targetsText}, which ${deny.id} denies`,
    };
  }
  const allows = applicable.filter((r) => r.effect === 'allow');
  const whole = allows.find((r) => r.targets === null || selectorImplies(selector, r.targets));
  if (whole) {
    const within = whole.targets ? ` (within its targets ${whole.targetsText})` : '';
    return { allowed: true, rule: whole, reason: `${user} may ${ctx.what} on ${text}: allowed by ${whole.id}${within}` };
  }
  // One rule may cover role=web and another role=db: split `role in (web,db)` and try each part.
  const parts = splitOnIn(selector);
  if (parts && parts.length > 1) {
    const cover = parts.map((part) => ({ part, rule: allows.find((r) => r.targets !== null && selectorImplies(part, r.targets)) }));
    if (cover.every((c) => c.rule !== undefined)) {
      const how = cover.map((c) => `${formatSelector(c.part)} by ${c.rule?.id}`).join(', ');
      return { allowed: true, rule: cover[0]?.rule, reason: `${user} may ${ctx.what} on ${text}: allowed part by part (${how})` };
    }
  }
  const limited = allows.filter((r) => r.targets !== null);
  const first = limited[0];
  if (!first || !first.targets) return { allowed: false, rule: undefined, reason: defaultDeny(ctx) };
  const missing = unimpliedRequirements(selector, first.targets).map(formatRequirement).join(', ');
  const others = limited.slice(1).map((r) => `${r.id}'s ${r.targetsText}`);
  const nor = others.length > 0 ? `, nor within ${others.join(' or ')}` : '';
  return {
    allowed: false,
    rule: undefined,
    reason: `${user} may not ${ctx.what} on ${text}: targets ${text} are not provably within ${first.id}'s selector ${first.targetsText} (they do not require ${missing})${nor}; default deny`,
  };
}

function selectorCheck(rule: PolicyRule, selector: Selector): Check {
  if (!rule.targets) return { ok: true, detail: 'any target' };
  const text = formatSelector(selector);
  if (rule.effect === 'deny') {
    if (selectorsDisjoint(selector, rule.targets)) return { ok: false, detail: `${text} cannot include agents matching ${rule.targetsText}` };
    return { ok: true, detail: `${text} ${selectorImplies(selector, rule.targets) ? 'is within' : 'may include agents matching'} ${rule.targetsText}` };
  }
  if (selectorImplies(selector, rule.targets)) return { ok: true, detail: `${text} is within ${rule.targetsText}` };
  if (selectorsDisjoint(selector, rule.targets)) return { ok: false, detail: `${text} cannot include agents matching ${rule.targetsText}` };
  const targets = rule.targets;
  const parts = (splitOnIn(selector) ?? []).filter((p) => selectorImplies(p, targets));
  const partly = parts.length > 0 ? `; it covers ${parts.map(formatSelector).join(' and ')}` : '';
  const missing = unimpliedRequirements(selector, targets).map(formatRequirement).join(', ');
  return { ok: false, detail: `${text} is not provably within ${rule.targetsText} (it does not require ${missing})${partly}` };
}

/** `role in (web,db),zone=a` → `role=web,zone=a` and `role=db,zone=a`; undefined when too many. */
function splitOnIn(selector: Selector): Selector[] | undefined {
  let parts: Requirement[][] = [[]];
  for (const r of selector.requirements) {
    if (r.op === 'in' && r.values.length > 1) {
      if (parts.length * r.values.length > MAX_SPLIT) return undefined;
      parts = parts.flatMap((p) => r.values.map((v) => [...p, { key: r.key, op: 'eq' as const, values: [v] }]));
    } else {
      parts = parts.map((p) => [...p, r]);
    }
  }
  return parts.map((requirements) => ({ requirements })).filter(selectorSatisfiable);
}

// ------------------------------------------------------------------ wording

function describeRequest(action: PolicyAction, runbook: RunbookRef | undefined): string {
  if (runbook) return `${action} ${runbook.id}`;
  return action === 'admin' ? 'perform admin operations' : `${action} outside any runbook`;
}

function defaultDeny(ctx: Context): string {
  return `no rule allows ${ctx.req.subject.user} (groups: ${ctx.groups.join(', ') || 'none'}) to ${ctx.what}; default deny`;
}

function formatRequirement(r: Requirement): string {
  return formatSelector({ requirements: [r] });
}

function toSelector(s: Selector | string): Selector {
  return typeof s === 'string' ? parseSelector(s) : s;
}

function countBy(keys: readonly string[]): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m];
}
