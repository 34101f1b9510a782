/**
 * Targets known only as a selector (no agent list): a deny rule counts unless its targets
 * provably cannot overlap; allow rules must provably contain the selector, one rule alone or,
 * split on the selector's `in` values, one rule per part.
 */
import { formatSelector, type Requirement, type Selector } from '../../core/selector.js';
import { selectorImplies, selectorsDisjoint, selectorSatisfiable, unimpliedRequirements } from '../../core/selector-implies.js';
import type { Check, PolicyRule } from './model.js';
import { defaultDeny, type Context, type Outcome } from './outcome.js';

/** How far a selector is split on its `in` values to find rules covering each part. */
const MAX_SPLIT = 64;

export function decideSelector(ctx: Context, applicable: readonly PolicyRule[], selector: Selector): Outcome {
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

export function selectorCheck(rule: PolicyRule, selector: Selector): Check {
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

function formatRequirement(r: Requirement): string {
  return formatSelector({ requirements: [r] });
}
