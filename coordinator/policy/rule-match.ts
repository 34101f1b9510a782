/**
 * Whether one rule's action, subject and runbook match a request, each with the phrase that
 * `policy explain` shows. Target limits are decided by the evaluator, which sees all rules.
 */
import { globMatch } from '../../core/glob.js';
import type { Check, Policy, PolicyAction, PolicyRule, RunbookRef, Subject } from './model.js';

/** Every group a subject is in: the user store's plus those the loaded policies declare. */
export function effectiveGroups(policies: readonly Policy[], subject: Subject): string[] {
  const out = new Set(subject.groups);
  for (const p of policies) for (const [g, members] of Object.entries(p.groups)) if (members.includes(subject.user)) out.add(g);
  return [...out].sort();
}

export function matchAction(rule: PolicyRule, action: PolicyAction): Check {
  if (rule.actions === '*') return { ok: true, detail: '* covers every action' };
  const list = `[${rule.actions.join(', ')}]`;
  return rule.actions.includes(action) ? { ok: true, detail: `${action} is in ${list}` } : { ok: false, detail: `${action} is not in ${list}` };
}

export function matchSubject(rule: PolicyRule, user: string, groups: readonly string[]): Check {
  for (const s of rule.subjects) {
    if (s === '*') return { ok: true, detail: '* covers everyone' };
    if (s === `user:${user}`) return { ok: true, detail: `${user} is ${s}` };
    if (s.startsWith('group:') && groups.includes(s.slice(6))) return { ok: true, detail: `${user} is in ${s}` };
  }
  return { ok: false, detail: `${user} (groups: ${groups.join(', ') || 'none'}) is not among ${rule.subjects.join(', ')}` };
}

export function matchRunbook(rule: PolicyRule, rb: RunbookRef | undefined): Check {
  const m = rule.runbooks;
  if (!m) return { ok: true, detail: 'the rule covers every runbook' };
  if (!rb) {
    // Admin operations and ad-hoc commands are about no runbook: only rules over all of them count.
    return m.ids.includes('*')
      ? { ok: true, detail: 'ids [*] covers requests about no particular runbook' }
      : { ok: false, detail: 'the request is about no particular runbook, and the rule covers only some (use ids: ["*"] or leave runbooks out)' };
  }
  const id = m.ids.find((g) => globMatch(g, rb.id));
  if (id !== undefined) return { ok: true, detail: id === rb.id ? `id ${rb.id} is listed` : `id ${rb.id} matches ${id}` };
  const tag = m.tags.find((t) => rb.tags.includes(t));
  if (tag !== undefined) return { ok: true, detail: `${rb.id} is tagged ${tag}` };
  if (m.owners.includes(rb.owner)) return { ok: true, detail: `${rb.id} is owned by ${rb.owner}` };
  const wanted = [m.ids.length ? `ids [${m.ids.join(', ')}]` : '', m.tags.length ? `tags [${m.tags.join(', ')}]` : '', m.owners.length ? `owners [${m.owners.join(', ')}]` : ''].filter((x) => x !== '');
  return { ok: false, detail: `${rb.id} (tags: ${rb.tags.join(', ') || 'none'}; owner: ${rb.owner || 'none'}) matches none of ${wanted.join(', ')}` };
}
