/**
 * `kind: Policy` documents → Policy, or every problem with a path into the document (the YAML
 * loader turns paths into file:line:col). A policy with any problem is not returned, so a
 * broken edit never replaces the version already loaded.
 */
import { globProblem } from '../../core/glob.js';
import { formatSelector, parseSelector, SelectorSyntaxError, type Selector } from '../../core/selector.js';
import { selectorSatisfiable } from '../../core/selector-implies.js';
import type { Path, ValidationIssue } from '../../core/validation.js';
import { Issues, isObj, mapping, nearest, str, strList, type Obj } from '../../core/document-schema.js';
import { ACTIONS, TARGETED_ACTIONS, type Policy, type PolicyAction, type PolicyRule, type RunbookMatcher } from './model.js';

/** Policy, rule, group, user, tag and team names (the user store uses the same alphabet). */
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const NAME_HINT = 'lower-case letters, digits, . _ - (at most 63)';
/** Characters runbook ids are made of (see validate-runbook.ts). */
const RUNBOOK_ID_CHAR = /^[a-z0-9-]$/;

const RULE_FIELDS = ['name', 'description', 'effect', 'actions', 'subjects', 'runbooks', 'targets'];

export function validatePolicy(value: unknown): { policy?: Policy; issues: ValidationIssue[] } {
  const issues = new Issues();
  const doc = mapping(value, [], issues, ['apiVersion', 'kind', 'metadata', 'spec'], 'a policy');
  if (!doc) return { issues: issues.list };
  if (doc['apiVersion'] !== 'handrail/v1') issues.add(['apiVersion'], 'apiVersion must be "handrail/v1"');
  if (doc['kind'] !== 'Policy') issues.add(['kind'], 'kind must be "Policy"');
  const meta = mapping(doc['metadata'], ['metadata'], issues, ['name', 'description'], 'metadata');
  const name = meta ? str(meta, 'name', ['metadata'], issues, { required: true, pattern: NAME, hint: NAME_HINT }) : undefined;
  const description = meta ? str(meta, 'description', ['metadata'], issues, { max: 2000 }) : undefined;
  const spec = mapping(doc['spec'], ['spec'], issues, ['groups', 'rules'], 'spec');
  if (!spec) return { issues: issues.list };

  const groups = readGroups(spec, issues);
  const rules: PolicyRule[] = [];
  const seen = new Set<string>();
  const rawRules = spec['rules'];
  if (!Array.isArray(rawRules) || rawRules.length === 0) {
    issues.add(['spec', 'rules'], 'a policy needs a non-empty list of rules (everything not allowed by a rule is denied)');
  } else {
    rawRules.forEach((raw, i) => {
      const rule = readRule(raw, ['spec', 'rules', i], name ?? '?', issues);
      // Checked on the raw name too, so an otherwise broken rule still reports its clash now.
      const ruleName = isObj(raw) && typeof raw['name'] === 'string' ? raw['name'] : undefined;
      if (ruleName !== undefined && seen.has(ruleName)) {
        issues.add(['spec', 'rules', i, 'name'], `duplicate rule name "${ruleName}": decisions name rules as ${name ?? 'policy'}/${ruleName}, so names must be unique within a policy`);
      }
      if (ruleName !== undefined) seen.add(ruleName);
      if (rule) rules.push(rule);
    });
  }
  if (issues.list.length > 0 || !name) return { issues: issues.list };
  return { policy: { name, description, groups, rules }, issues: [] };
}

function readGroups(spec: Obj, issues: Issues): Record<string, string[]> {
  const groups: Record<string, string[]> = {};
  const raw = spec['groups'];
  if (raw === undefined || raw === null) return groups;
  if (!Array.isArray(raw)) {
    issues.add(['spec', 'groups'], 'groups must be a list of {name, members}');
    return groups;
  }
  raw.forEach((g, i) => {
    const path = ['spec', 'groups', i];
    const m = mapping(g, path, issues, ['name', 'members'], 'a group');
    if (!m) return;
    const gname = str(m, 'name', path, issues, { required: true, pattern: NAME, hint: NAME_HINT });
    const members = strList(m, 'members', path, issues, { pattern: NAME, hint: 'members are user names (lower-case letters, digits, . _ -)' });
    if (m['members'] === undefined) issues.add([...path], `group "${gname ?? '?'}" needs "members" (a list of user names)`);
    if (gname === undefined) return;
    if (Object.prototype.hasOwnProperty.call(groups, gname)) issues.add([...path, 'name'], `duplicate group "${gname}": list all its members in one entry`);
    else groups[gname] = members ?? [];
  });
  return groups;
}

function readRule(raw: unknown, path: Path, policyName: string, issues: Issues): PolicyRule | undefined {
  const r = mapping(raw, path, issues, RULE_FIELDS, 'a rule');
  if (!r) return undefined;
  const name = str(r, 'name', path, issues, { required: true, pattern: NAME, hint: NAME_HINT });
  const description = str(r, 'description', path, issues, { max: 2000 });
  const effect = readEffect(r, path, issues);
  const actions = readActions(r, path, issues);
  const subjects = readSubjects(r, path, issues);
  const runbooks = readRunbooks(r, path, issues);
  const targets = readTargets(r, path, issues);
  if (targets && actions && actions !== '*' && !actions.some((a) => TARGETED_ACTIONS.includes(a))) {
    issues.add([...path, 'targets'], `targets only limit ${TARGETED_ACTIONS.join(' and ')}; this rule's actions (${actions.join(', ')}) ignore them: remove targets or add run/cancel`);
  }
  if (!name || !effect || !actions || !subjects || runbooks === undefined || targets === undefined) return undefined;
  return {
    name,
    id: `${policyName}/${name}`,
    effect,
    actions,
    subjects,
    runbooks,
    targets: targets ? targets.selector : null,
    targetsText: targets ? targets.text : null,
    description,
  };
}

function readEffect(r: Obj, path: Path, issues: Issues): 'allow' | 'deny' | undefined {
  const v = r['effect'];
  if (v === 'allow' || v === 'deny') return v;
  if (v === undefined || v === null) {
    issues.add([...path, 'effect'], '"effect" is required: allow or deny');
    return undefined;
  }
  const near = typeof v === 'string' ? nearest(v, ['allow', 'deny']) : undefined;
  issues.add([...path, 'effect'], `effect must be allow or deny${near ? `; did you mean "${near}"?` : ''}`);
  return undefined;
}

function readActions(r: Obj, path: Path, issues: Issues): readonly PolicyAction[] | '*' | undefined {
  if (r['actions'] === undefined || r['actions'] === null) {
    issues.add([...path], `"actions" is required (${ACTIONS.join(', ')}, or "*")`);
    return undefined;
  }
  const list = strList(r, 'actions', path, issues);
  if (!list) return undefined;
  if (list.length === 0) {
    issues.add([...path, 'actions'], `"actions" is empty: list at least one of ${ACTIONS.join(', ')} or *`);
    return undefined;
  }
  let ok = true;
  const out: PolicyAction[] = [];
  for (const a of list) {
    if (a === '*') continue;
    if ((ACTIONS as readonly string[]).includes(a)) {
      if (!out.includes(a as PolicyAction)) out.push(a as PolicyAction);
      continue;
    }
    ok = false;
    const near = nearest(a, ACTIONS);
    issues.add([...path, 'actions'], `unknown action "${a.slice(0, 80)}" (use ${ACTIONS.join(', ')} or *)${near ? `; did you mean "${near}"?` : ''}`);
  }
  if (!ok) return undefined;
  return list.includes('*') ? '*' : out;
}

/** What is wrong with a subject, or undefined. */
export function subjectProblem(s: string): string | undefined {
  if (s === '*') return undefined;
  const colon = s.indexOf(':');
  if (colon < 0) return `"${s.slice(0, 80)}" is invalid: use user:NAME, group:NAME or *`;
  const kind = s.slice(0, colon);
  const name = s.slice(colon + 1);
  if (kind !== 'user' && kind !== 'group') {
    const near = nearest(kind, ['user', 'group']);
    return `"${s.slice(0, 80)}" is invalid: use user:NAME, group:NAME or *${near ? `; did you mean "${near}:${name.slice(0, 80)}"?` : ''}`;
  }
  if (!NAME.test(name)) return `"${s.slice(0, 80)}" is invalid: ${kind} names are ${NAME_HINT}`;
  return undefined;
}

function readSubjects(r: Obj, path: Path, issues: Issues): string[] | undefined {
  if (r['subjects'] === undefined || r['subjects'] === null) {
    issues.add([...path], '"subjects" is required (user:NAME, group:NAME or *)');
    return undefined;
  }
  const list = strList(r, 'subjects', path, issues);
  if (!list) return undefined;
  if (list.length === 0) {
    issues.add([...path, 'subjects'], '"subjects" is empty: list at least one of user:NAME, group:NAME or *');
    return undefined;
  }
  let ok = true;
  (r['subjects'] as unknown[]).forEach((x, i) => {
    const s = typeof x === 'number' || typeof x === 'boolean' ? String(x) : x; // as strList reads it
    if (typeof s !== 'string' || s === '') return; // strList reported it
    const problem = subjectProblem(s);
    if (problem) {
      ok = false;
      issues.add([...path, 'subjects', i], problem);
    }
  });
  return ok && list.length === (r['subjects'] as unknown[]).length ? list : undefined;
}

/** null: every runbook; undefined: invalid. */
function readRunbooks(r: Obj, path: Path, issues: Issues): RunbookMatcher | null | undefined {
  if (r['runbooks'] === undefined || r['runbooks'] === null) return null;
  const rpath = [...path, 'runbooks'];
  const rb = mapping(r['runbooks'], rpath, issues, ['ids', 'tags', 'owners'], 'runbooks');
  if (!rb) return undefined;
  const before = issues.list.length;
  const ids = strList(rb, 'ids', rpath, issues) ?? [];
  ids.forEach((g, i) => {
    const problem = globProblem(g, RUNBOOK_ID_CHAR, 'runbook ids (lower-case letters, digits, -)');
    if (problem) issues.add([...rpath, 'ids', i], problem);
  });
  const tags = strList(rb, 'tags', rpath, issues, { pattern: NAME, hint: 'tags are exact lower-case words (only ids take * and ?)' }) ?? [];
  const owners = strList(rb, 'owners', rpath, issues, { pattern: NAME, hint: 'owners are exact team names such as team-web (only ids take * and ?)' }) ?? [];
  if (ids.length + tags.length + owners.length === 0 && issues.list.length === before) {
    issues.add(rpath, 'give ids, tags or owners (or leave "runbooks" out to cover every runbook)');
  }
  return issues.list.length === before ? { ids, tags, owners } : undefined;
}

/** null: no limit; undefined: invalid. */
function readTargets(r: Obj, path: Path, issues: Issues): { selector: Selector; text: string } | null | undefined {
  const v = r['targets'];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') {
    issues.add([...path, 'targets'], 'targets is a selector string here, e.g. targets: "role=web,env in (demo,staging)"');
    return undefined;
  }
  let selector: Selector;
  try {
    selector = parseSelector(v);
  } catch (e) {
    if (!(e instanceof SelectorSyntaxError)) throw e;
    issues.add([...path, 'targets'], `invalid selector: ${e.message} (column ${e.column})`);
    return undefined;
  }
  // "" and "*" select every agent: the same as no limit, and explained as such.
  if (selector.requirements.length === 0) return null;
  if (!selectorSatisfiable(selector)) {
    issues.add([...path, 'targets'], `targets "${formatSelector(selector)}" can match no agent (a key required to have two values? use "key in (a,b)")`);
    return undefined;
  }
  return { selector, text: formatSelector(selector) };
}
