/**
 * Targets known as concrete agents: each agent must be covered by an applicable allow rule and
 * by no applicable deny rule; one refused agent refuses the whole request, and the reason says
 * which agents and by what.
 */
import type { Check, PolicyRule, TargetAgent, TargetDecision } from './model.js';
import type { Context, Outcome } from './outcome.js';

/** Refused targets named in a reason sentence (explain and perTarget list them all). */
const NAMED_IN_REASON = 3;

export type Covers = (rule: PolicyRule, labels: Readonly<Record<string, string>>) => boolean;

export interface Labelled {
  readonly agent: TargetAgent;
  readonly labels: Readonly<Record<string, string>>;
}

export function decideAgents(
  ctx: Context,
  applicable: readonly PolicyRule[],
  agents: readonly Labelled[],
  covers: Covers,
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
  // No deny rule refused a target: like every decision no rule made, it says so (the audit record keeps the reason).
  const byDefault = rule === undefined ? '; default deny' : '';
  return {
    allowed: false,
    rule,
    reason: `${user} may not ${ctx.what} on ${selectorText}: ${refused.length} of ${n} target${n === 1 ? '' : 's'} ${refused.length === 1 ? 'is' : 'are'} not allowed (${named}${more}), so the ${noun} is refused as a whole${byDefault}`,
    perTarget,
  };
}

export function agentsCheck(rule: PolicyRule, agents: readonly Labelled[], covers: Covers): Check {
  const n = agents.length;
  if (!rule.targets) return { ok: true, detail: `any target (all ${n})` };
  const hit = agents.filter((a) => covers(rule, a.labels)).map((a) => a.agent.name);
  const verb = rule.effect === 'allow' ? 'covers' : 'denies';
  if (hit.length === 0) return { ok: false, detail: `${rule.targetsText} matches none of the ${n} target${n === 1 ? '' : 's'}` };
  if (hit.length === n) return { ok: true, detail: `${rule.targetsText} ${verb} ${n === 1 ? 'the target' : `all ${n} targets`}` };
  const names = hit.slice(0, 5).join(', ') + (hit.length > 5 ? ', …' : '');
  return { ok: true, detail: `${rule.targetsText} ${verb} ${hit.length} of ${n} targets (${names})` };
}

function countBy(keys: readonly string[]): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m];
}
