/**
 * Policy (security model point 7): `kind: Policy` documents whose rules allow or deny actions
 * (run, view, approve, cancel, admin) on runbooks (id globs, tags, owner teams) for subjects
 * (users, groups), limited to target selectors. Default deny; deny wins; every decision names
 * the rule that made it. Pure: validation and decisions take and return plain values.
 */
import { formatSelector, matches, parseSelector, SelectorSyntaxError, type Selector } from '../../core/selector.js';
import { selectorImplies } from '../../core/selector-implies.js';
import type { ValidationIssue } from '../../core/validation.js';
import { Issues, mapping, str, strList } from '../../core/document-schema.js';

export const ACTIONS = ['run', 'view', 'approve', 'cancel', 'admin'] as const;
export type PolicyAction = (typeof ACTIONS)[number];

export interface PolicyRule {
  /** "<policy>/<rule>" */
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  readonly actions: readonly PolicyAction[] | '*';
  readonly subjects: readonly string[];
  /** null: every runbook. */
  readonly runbooks: { readonly ids: readonly string[]; readonly tags: readonly string[]; readonly owners: readonly string[] } | null;
  /** null: any target. */
  readonly targets: Selector | null;
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

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SUBJECT = /^(\*|user:[a-z0-9][a-z0-9._-]*|group:[a-z0-9][a-z0-9._-]*)$/;
const GLOB = /^[a-z0-9*?][a-z0-9._*?-]{0,62}$/;

export function validatePolicy(value: unknown): { policy?: Policy; issues: ValidationIssue[] } {
  const issues = new Issues();
  const doc = mapping(value, [], issues, ['apiVersion', 'kind', 'metadata', 'spec'], 'a policy');
  if (!doc) return { issues: issues.list };
  if (doc['apiVersion'] !== 'handrail/v1') issues.add(['apiVersion'], 'apiVersion must be "handrail/v1"');
  if (doc['kind'] !== 'Policy') issues.add(['kind'], 'kind must be "Policy"');
  const meta = mapping(doc['metadata'], ['metadata'], issues, ['name', 'description'], 'metadata');
  const name = meta ? str(meta, 'name', ['metadata'], issues, { required: true, pattern: NAME, hint: 'lower-case letters, digits, . _ -' }) : undefined;
  const description = meta ? str(meta, 'description', ['metadata'], issues, { max: 2000 }) : undefined;
  const spec = mapping(doc['spec'], ['spec'], issues, ['groups', 'rules'], 'spec');
  if (!spec) return { issues: issues.list };

  const groups: Record<string, string[]> = {};
  if (spec['groups'] !== undefined) {
    if (!Array.isArray(spec['groups'])) issues.add(['spec', 'groups'], 'groups must be a list of {name, members}');
    else
      spec['groups'].forEach((g, i) => {
        const m = mapping(g, ['spec', 'groups', i], issues, ['name', 'members'], 'a group');
        if (!m) return;
        const gname = str(m, 'name', ['spec', 'groups', i], issues, { required: true, pattern: NAME });
        const members = strList(m, 'members', ['spec', 'groups', i], issues, { pattern: NAME, hint: 'user names' }) ?? [];
        if (gname) groups[gname] = members;
      });
  }

  const rules: PolicyRule[] = [];
  const ruleNames = new Set<string>();
  if (!Array.isArray(spec['rules']) || spec['rules'].length === 0) {
    issues.add(['spec', 'rules'], 'a policy needs a non-empty list of rules');
  } else {
    spec['rules'].forEach((raw, i) => {
      const path = ['spec', 'rules', i] as const;
      const r = mapping(raw, [...path], issues, ['name', 'effect', 'actions', 'subjects', 'runbooks', 'targets', 'description'], 'a rule');
      if (!r) return;
      const rname = str(r, 'name', [...path], issues, { required: true, pattern: NAME });
      if (rname && ruleNames.has(rname)) issues.add([...path, 'name'], `duplicate rule name "${rname}"`);
      if (rname) ruleNames.add(rname);
      const effect = r['effect'];
      if (effect !== 'allow' && effect !== 'deny') issues.add([...path, 'effect'], 'effect must be allow or deny');
      const acts = strList(r, 'actions', [...path], issues) ?? [];
      if (r['actions'] === undefined) issues.add([...path], '"actions" is required (run, view, approve, cancel, admin, or "*")');
      for (const a of acts) if (a !== '*' && !(ACTIONS as readonly string[]).includes(a)) issues.add([...path, 'actions'], `unknown action "${a}" (use ${ACTIONS.join(', ')} or *)`);
      const subjects = strList(r, 'subjects', [...path], issues, { pattern: SUBJECT, hint: 'use user:NAME, group:NAME or *' }) ?? [];
      if (r['subjects'] === undefined) issues.add([...path], '"subjects" is required (user:NAME, group:NAME or *)');
      let runbooks: PolicyRule['runbooks'] = null;
      if (r['runbooks'] !== undefined) {
        const rb = mapping(r['runbooks'], [...path, 'runbooks'], issues, ['ids', 'tags', 'owners'], 'runbooks');
        if (rb) {
          runbooks = {
            ids: strList(rb, 'ids', [...path, 'runbooks'], issues, { pattern: GLOB, hint: 'runbook ids or globs like restart-*' }) ?? [],
            tags: strList(rb, 'tags', [...path, 'runbooks'], issues) ?? [],
            owners: strList(rb, 'owners', [...path, 'runbooks'], issues) ?? [],
          };
          if (runbooks.ids.length + runbooks.tags.length + runbooks.owners.length === 0) issues.add([...path, 'runbooks'], 'give ids, tags or owners (or leave "runbooks" out to cover every runbook)');
        }
      }
      let targets: Selector | null = null;
      let targetsText: string | null = null;
      if (r['targets'] !== undefined) {
        const t = str(r, 'targets', [...path], issues);
        if (t !== undefined) {
          try {
            targets = parseSelector(t);
            targetsText = formatSelector(targets);
          } catch (e) {
            if (e instanceof SelectorSyntaxError) issues.add([...path, 'targets'], `invalid selector: ${e.message} (column ${e.column})`);
            else throw e;
          }
        }
      }
      if (!rname || (effect !== 'allow' && effect !== 'deny')) return;
      rules.push({
        id: `${name ?? '?'}/${rname}`,
        effect,
        actions: acts.includes('*') ? '*' : (acts.filter((a) => (ACTIONS as readonly string[]).includes(a)) as PolicyAction[]),
        subjects,
        runbooks,
        targets,
        targetsText,
        description: str(r, 'description', [...path], issues, { max: 2000 }),
      });
    });
  }
  if (issues.list.length > 0 || !name) return { issues: issues.list };
  return { policy: { name, description, groups, rules }, issues: [] };
}

// ------------------------------------------------------------------ decisions

export interface Subject {
  readonly user: string;
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
  readonly labels: Readonly<Record<string, string>>;
}

export interface DecisionRequest {
  readonly subject: Subject;
  readonly action: PolicyAction;
  /** Absent for actions not about a runbook (admin). */
  readonly runbook?: RunbookRef;
  readonly targets?: { readonly selector: Selector; readonly agents?: readonly TargetAgent[] };
}

export interface RuleTrace {
  readonly rule: string;
  readonly effect: 'allow' | 'deny';
  readonly applies: boolean;
  /** Why it applies or not (action / subject / runbook / targets). */
  readonly why: string;
}

export interface Decision {
  readonly allowed: boolean;
  /** The rule that made the decision; null for the default deny. */
  readonly rule: string | null;
  readonly reason: string;
  readonly trace: readonly RuleTrace[];
  /** Agents refused, with the rule (or default deny) that refused each. */
  readonly deniedTargets: ReadonlyArray<{ readonly agent: string; readonly rule: string | null }>;
}

function glob(pattern: string, text: string): boolean {
  return new RegExp('^' + pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('') + '$').test(text);
}

/** Every group a subject is in: from the user store plus the groups policies declare. */
export function effectiveGroups(policies: readonly Policy[], subject: Subject): string[] {
  const out = new Set(subject.groups);
  for (const p of policies) for (const [g, members] of Object.entries(p.groups)) if (members.includes(subject.user)) out.add(g);
  return [...out];
}

function subjectMatches(rule: PolicyRule, user: string, groups: readonly string[]): boolean {
  return rule.subjects.some((s) => s === '*' || s === `user:${user}` || (s.startsWith('group:') && groups.includes(s.slice(6))));
}

function runbookMatches(rule: PolicyRule, rb: RunbookRef | undefined): boolean {
  if (!rule.runbooks) return true;
  // Actions not about one runbook (admin) are covered by rules for every runbook ("*").
  if (!rb) return rule.runbooks.ids.includes('*');
  return rule.runbooks.ids.some((g) => glob(g, rb.id)) || rule.runbooks.tags.some((t) => rb.tags.includes(t)) || rule.runbooks.owners.includes(rb.owner);
}

export function decide(policies: readonly Policy[], req: DecisionRequest): Decision {
  const groups = effectiveGroups(policies, req.subject);
  const trace: RuleTrace[] = [];
  const applicable: PolicyRule[] = [];
  for (const p of policies) {
    for (const rule of p.rules) {
      let why: string;
      let applies = false;
      if (rule.actions !== '*' && !rule.actions.includes(req.action)) why = `action ${req.action} not in [${(rule.actions as readonly string[]).join(', ')}]`;
      else if (!subjectMatches(rule, req.subject.user, groups)) why = `subject ${req.subject.user} (groups: ${groups.join(', ') || 'none'}) not in [${rule.subjects.join(', ')}]`;
      else if (!runbookMatches(rule, req.runbook)) why = `runbook ${req.runbook?.id ?? '(none)'} not matched by ids [${rule.runbooks?.ids.join(', ')}], tags [${rule.runbooks?.tags.join(', ')}], owners [${rule.runbooks?.owners.join(', ')}]`;
      else {
        applies = true;
        why = rule.targets ? `applies to targets ${rule.targetsText}` : 'applies to any target';
        applicable.push(rule);
      }
      trace.push({ rule: rule.id, effect: rule.effect, applies, why });
    }
  }
  const denies = applicable.filter((r) => r.effect === 'deny');
  const allows = applicable.filter((r) => r.effect === 'allow');
  const needsTargets = req.targets !== undefined && (req.action === 'run' || req.action === 'cancel');

  if (!needsTargets) {
    // Without targets, a deny limited to some targets does not refuse everything.
    const deny = denies.find((r) => !r.targets);
    if (deny) return { allowed: false, rule: deny.id, reason: `denied by ${deny.id}`, trace, deniedTargets: [] };
    const allow = allows[0];
    if (allow) return { allowed: true, rule: allow.id, reason: `allowed by ${allow.id}`, trace, deniedTargets: [] };
    return { allowed: false, rule: null, reason: `no rule allows ${req.subject.user} to ${req.action}${req.runbook ? ` ${req.runbook.id}` : ''} (default deny)`, trace, deniedTargets: [] };
  }

  const targets = req.targets as { selector: Selector; agents?: readonly TargetAgent[] };
  if (targets.agents) {
    // Every concrete target must be covered by an allow rule and by no deny rule.
    const deniedTargets: Array<{ agent: string; rule: string | null }> = [];
    let firstAllow: PolicyRule | undefined;
    for (const a of targets.agents) {
      const labels = { ...a.labels, name: a.name, id: a.id };
      const deny = denies.find((r) => !r.targets || matches(r.targets, labels));
      if (deny) {
        deniedTargets.push({ agent: a.name, rule: deny.id });
        continue;
      }
      const allow = allows.find((r) => !r.targets || matches(r.targets, labels));
      if (!allow) deniedTargets.push({ agent: a.name, rule: null });
      else firstAllow ??= allow;
    }
    if (deniedTargets.length > 0) {
      const d = deniedTargets[0] as { agent: string; rule: string | null };
      const more = deniedTargets.length > 1 ? ` and ${deniedTargets.length - 1} more` : '';
      return {
        allowed: false,
        rule: d.rule,
        reason: d.rule ? `target ${d.agent}${more} denied by ${d.rule}` : `no rule allows ${req.subject.user} to ${req.action} ${req.runbook?.id ?? ''} on ${d.agent}${more} (default deny); the run is refused as a whole`,
        trace,
        deniedTargets,
      };
    }
    if (!firstAllow) {
      // No targets at all: decide on the runbook alone.
      const deny = denies.find((r) => !r.targets);
      if (deny) return { allowed: false, rule: deny.id, reason: `denied by ${deny.id}`, trace, deniedTargets: [] };
      const allow = allows[0];
      if (allow) return { allowed: true, rule: allow.id, reason: `allowed by ${allow.id}`, trace, deniedTargets: [] };
      return { allowed: false, rule: null, reason: `no rule allows ${req.subject.user} to ${req.action} ${req.runbook?.id ?? ''} (default deny)`, trace, deniedTargets: [] };
    }
    return { allowed: true, rule: firstAllow.id, reason: `allowed by ${firstAllow.id} on all ${targets.agents.length} target(s)`, trace, deniedTargets: [] };
  }

  // Only a selector: deny rules whose targets may overlap win; an allow must provably cover it.
  const deny = denies.find((r) => !r.targets || !disjoint(targets.selector, r.targets));
  if (deny) return { allowed: false, rule: deny.id, reason: `denied by ${deny.id}`, trace, deniedTargets: [] };
  const allow = allows.find((r) => !r.targets || selectorImplies(targets.selector, r.targets));
  if (allow) return { allowed: true, rule: allow.id, reason: `allowed by ${allow.id}`, trace, deniedTargets: [] };
  const partial = allows.find((r) => r.targets);
  return {
    allowed: false,
    rule: null,
    reason: partial
      ? `targets ${formatSelector(targets.selector)} are not provably within ${partial.id}'s selector ${partial.targetsText} (default deny)`
      : `no rule allows ${req.subject.user} to ${req.action} ${req.runbook?.id ?? ''} (default deny)`,
    trace,
    deniedTargets: [],
  };
}

/** True when no agent can match both (a requirement of one contradicts one of the other). */
function disjoint(a: Selector, b: Selector): boolean {
  for (const ra of a.requirements) {
    for (const rb of b.requirements) {
      if (ra.key !== rb.key) continue;
      const vA = ra.op === 'eq' ? [ra.values[0] as string] : ra.op === 'in' ? ra.values : null;
      const vB = rb.op === 'eq' ? [rb.values[0] as string] : rb.op === 'in' ? rb.values : null;
      if (vA && vB && !vA.some((v) => vB.includes(v))) return true;
      if ((vA || ra.op === 'exists') && rb.op === 'notexists') return true;
      if ((vB || rb.op === 'exists') && ra.op === 'notexists') return true;
    }
  }
  return false;
}

/** Runbooks a subject may see or run ("see only the actions they may run"). */
export function visibleRunbooks<T extends RunbookRef>(policies: readonly Policy[], subject: Subject, runbooks: readonly T[]): T[] {
  return runbooks.filter((rb) => decide(policies, { subject, action: 'view', runbook: rb }).allowed || decide(policies, { subject, action: 'run', runbook: rb }).allowed);
}

/** Lines for `handrail policy explain`. */
export function explain(d: Decision, req: DecisionRequest): string[] {
  const lines = [
    `${d.allowed ? 'ALLOW' : 'DENY'}: ${req.subject.user} ${req.action} ${req.runbook?.id ?? ''}${req.targets ? ` on ${formatSelector(req.targets.selector)}${req.targets.agents ? ` (${req.targets.agents.length} agent(s))` : ''}` : ''}`,
    `  decided by: ${d.rule ?? 'default deny (no rule allows it)'}`,
    `  reason: ${d.reason}`,
  ];
  if (d.deniedTargets.length > 0) lines.push(`  refused targets: ${d.deniedTargets.map((t) => `${t.agent} (${t.rule ?? 'default deny'})`).join(', ')}`);
  lines.push('  rules considered:');
  for (const t of d.trace) lines.push(`    ${t.applies ? '*' : '-'} ${t.rule} [${t.effect}]: ${t.why}`);
  return lines;
}
