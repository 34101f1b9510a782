/**
 * `handrail policy explain` output: the decision, the rule that made it, the targets it
 * refused and every rule considered with why its action, subject, runbook and targets matched
 * or not. Lines for people, and one JSON shape for scripts and the web page.
 */
import { formatSelector } from '../../core/selector.js';
import type { Check, Decision, DecisionRequest, Effect, PolicyAction } from './model.js';

/** Allowed targets listed one by one up to this many; beyond, they are counted per rule. */
const LIST_ALLOWED = 20;
/** Refused targets listed one by one up to this many (the JSON form has them all). */
const LIST_REFUSED = 100;

export interface ExplainedRule {
  readonly rule: string;
  readonly effect: Effect;
  readonly description: string | null;
  readonly applies: boolean;
  /** This rule made the decision. */
  readonly decisive: boolean;
  readonly action: Check;
  readonly subject: Check;
  readonly runbook: Check;
  readonly targets: Check;
}

export interface ExplainJson {
  readonly allowed: boolean;
  readonly effect: Effect | 'default-deny';
  /** null: the default deny. */
  readonly rule: string | null;
  readonly reason: string;
  readonly request: {
    readonly user: string;
    /** The groups the decision used: the user store's and those policies declare. */
    readonly groups: readonly string[];
    readonly action: PolicyAction;
    readonly runbook: string | null;
    /** The targets' selector, when the request had targets. */
    readonly targets: string | null;
    /** How many concrete agents were decided; null when only the selector was known. */
    readonly agents: number | null;
  };
  readonly matchedRules: readonly string[];
  readonly perTarget: ReadonlyArray<{ readonly agentId: string; readonly agent: string; readonly allowed: boolean; readonly rule: string | null }> | null;
  readonly rules: readonly ExplainedRule[];
}

export function explainJson(d: Decision, req: DecisionRequest): ExplainJson {
  const sel = req.targets?.selector;
  return {
    allowed: d.allowed,
    effect: d.effect,
    rule: d.rule ?? null,
    reason: d.reason,
    request: {
      user: req.subject.user,
      groups: d.groups,
      action: req.action,
      runbook: req.runbook?.id ?? null,
      targets: sel === undefined ? null : typeof sel === 'string' ? sel : formatSelector(sel),
      agents: req.targets?.agents ? req.targets.agents.length : null,
    },
    matchedRules: d.matchedRules,
    perTarget: d.perTarget ? d.perTarget.map((t) => ({ agentId: t.agentId, agent: t.agent, allowed: t.allowed, rule: t.rule ?? null })) : null,
    rules: d.considered.map((t) => ({
      rule: t.rule,
      effect: t.effect,
      description: t.description ?? null,
      applies: t.applies,
      decisive: t.rule === d.rule,
      action: t.action,
      subject: t.subject,
      runbook: t.runbook,
      targets: t.targets,
    })),
  };
}

/** Lines (no newlines) for a terminal. */
export function explain(d: Decision, req: DecisionRequest): string[] {
  const j = explainJson(d, req);
  const r = j.request;
  const on = r.targets !== null ? ` on ${r.targets}${r.agents !== null ? ` (${r.agents} agent${r.agents === 1 ? '' : 's'})` : ''}` : '';
  const lines = [
    `${d.allowed ? 'ALLOW' : 'DENY'}: ${r.user} ${r.action}${r.runbook ? ` ${r.runbook}` : ''}${on}`,
    `  decided by: ${d.rule ? `${d.rule} (${d.effect})` : 'default deny (no rule allows it)'}`,
    `  reason: ${d.reason}`,
    `  groups: ${r.groups.join(', ') || 'none'}`,
  ];
  if (d.perTarget) lines.push(...targetLines(d));
  lines.push('  rules considered (a rule applies when its action, subject and runbook match):');
  if (j.rules.length === 0) lines.push('    (no policies loaded: everything is denied)');
  for (const rule of j.rules) {
    const mark = rule.decisive ? 'decided' : rule.applies ? 'applies' : 'no';
    lines.push(`    [${mark}] ${rule.rule} (${rule.effect})${rule.description ? ` — ${rule.description}` : ''}`);
    for (const [name, c] of [['action', rule.action], ['subject', rule.subject], ['runbook', rule.runbook], ['targets', rule.targets]] as const) {
      lines.push(`        ${name.padEnd(9)}${c.ok ? 'yes' : 'no '}  ${c.detail}`);
    }
  }
  return lines;
}

function targetLines(d: Decision): string[] {
  const targets = d.perTarget ?? [];
  const refused = targets.filter((t) => !t.allowed);
  const allowed = targets.filter((t) => t.allowed);
  const out = [`  targets: ${allowed.length} allowed, ${refused.length} refused`];
  for (const t of refused.slice(0, LIST_REFUSED)) out.push(`    refused  ${t.agent}  ${t.rule ? `denied by ${t.rule}` : 'no allow rule covers it (default deny)'}`);
  if (refused.length > LIST_REFUSED) out.push(`    … and ${refused.length - LIST_REFUSED} more refused (--json lists them all)`);
  if (allowed.length <= LIST_ALLOWED) {
    for (const t of allowed) out.push(`    allowed  ${t.agent}  by ${t.rule}`);
  } else {
    const counts = new Map<string, number>();
    for (const t of allowed) counts.set(t.rule as string, (counts.get(t.rule as string) ?? 0) + 1);
    for (const [rule, n] of counts) out.push(`    allowed  ${n} agents by ${rule}`);
  }
  return out;
}
