import { describe, expect, it } from 'vitest';
import { decide, explain, validatePolicy, visibleRunbooks, type DecisionRequest, type Policy } from '../../coordinator/policy/policy.js';
import { parseSelector } from '../../core/selector.js';
import { selectorImplies } from '../../core/selector-implies.js';

const doc = (rules: unknown[], groups?: unknown[]): unknown => ({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { rules, ...(groups ? { groups } : {}) } });
const policy = (rules: unknown[], groups?: unknown[]): Policy => {
  const r = validatePolicy(doc(rules, groups));
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return r.policy;
};

const P = [
  policy(
    [
      { name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] },
      { name: 'support-diag', effect: 'allow', actions: ['run', 'view'], subjects: ['group:support'], runbooks: { tags: ['diagnostics'] }, targets: 'env=prod' },
      { name: 'support-restart', effect: 'allow', actions: ['run'], subjects: ['group:support'], runbooks: { ids: ['restart-*'] }, targets: 'role=web' },
      { name: 'no-db', effect: 'deny', actions: ['run'], subjects: ['*'], runbooks: { owners: ['team-db'] } },
      { name: 'no-canary', effect: 'deny', actions: ['run'], subjects: ['group:support'], targets: 'canary' },
      { name: 'carol', effect: 'allow', actions: ['approve'], subjects: ['user:carol'], runbooks: { ids: ['*'] } },
    ],
    [{ name: 'support', members: ['sam'] }],
  ),
];

const rb = { diag: { id: 'diagnostics-bundle', tags: ['diagnostics'], owner: 'team-sre' }, restart: { id: 'restart-web', tags: ['web'], owner: 'team-web' }, db: { id: 'restart-db', tags: [], owner: 'team-db' } };
const agent = (name: string, labels: Record<string, string>) => ({ id: `agt-${name}`, name, labels });
const web1 = agent('web-1', { role: 'web', env: 'prod' });
const web2 = agent('web-2', { role: 'web', env: 'prod', canary: 'true' });
const db1 = agent('db-1', { role: 'db', env: 'prod' });

describe('policy decisions', () => {
  it.each<[string, DecisionRequest, boolean, string | null]>([
    ['default deny', { subject: { user: 'x', groups: [] }, action: 'run', runbook: rb.diag }, false, null],
    ['admin allowed anything', { subject: { user: 'a', groups: ['admins'] }, action: 'admin' }, true, 'p/admins'],
    ['deny wins over admin allow', { subject: { user: 'a', groups: ['admins'] }, action: 'run', runbook: rb.db }, false, 'p/no-db'],
    ['support views diagnostics', { subject: { user: 's', groups: ['support'] }, action: 'view', runbook: rb.diag }, true, 'p/support-diag'],
    ['support may not approve', { subject: { user: 's', groups: ['support'] }, action: 'approve', runbook: rb.diag }, false, null],
    ['group from the policy itself', { subject: { user: 'sam', groups: [] }, action: 'view', runbook: rb.diag }, true, 'p/support-diag'],
    ['user subject', { subject: { user: 'carol', groups: [] }, action: 'approve', runbook: rb.restart }, true, 'p/carol'],
    ['glob on ids', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('role=web'), agents: [web1] } }, true, 'p/support-restart'],
    ['a target outside the allow selector refuses the whole run', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('*'), agents: [web1, db1] } }, false, null],
    ['a denied target refuses the whole run', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('role=web'), agents: [web1, web2] } }, false, 'p/no-canary'],
    ['selector provably inside the rule', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('role=web,zone=a,!canary') } }, true, 'p/support-restart'],
    ['a deny whose targets may overlap wins', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('zone=a') } }, false, 'p/no-canary'],
    ['selector not provably inside the allow', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('zone=a,!canary') } }, false, null],
    ['a target-limited deny does not hide the runbook', { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart }, true, 'p/support-restart'],
  ])('%s', (_n, req, allowed, rule) => {
    const d = decide(P, req);
    expect(d.allowed).toBe(allowed);
    expect(d.rule).toBe(rule);
  });

  it('says which targets were refused and why, and explains every rule', () => {
    const req: DecisionRequest = { subject: { user: 's', groups: ['support'] }, action: 'run', runbook: rb.restart, targets: { selector: parseSelector('*'), agents: [web1, web2, db1] } };
    const d = decide(P, req);
    expect(d.deniedTargets).toEqual([{ agent: 'web-2', rule: 'p/no-canary' }, { agent: 'db-1', rule: null }]);
    const text = explain(d, req).join('\n');
    expect(text).toMatch(/^DENY: s run restart-web/);
    expect(text).toMatch(/p\/admins \[allow\]: subject s/);
    expect(text).toMatch(/p\/support-restart \[allow\]: applies to targets role=web/);
  });

  it('shows each subject only the runbooks it may see or run', () => {
    expect(visibleRunbooks(P, { user: 's', groups: ['support'] }, [rb.diag, rb.restart, rb.db]).map((r) => r.id)).toEqual(['diagnostics-bundle', 'restart-web']);
    expect(visibleRunbooks(P, { user: 'n', groups: [] }, [rb.diag, rb.restart])).toEqual([]);
  });
});

describe('policy validation', () => {
  it.each<[unknown[], RegExp]>([
    [[{ name: 'r', effect: 'maybe', actions: ['run'], subjects: ['*'] }], /effect must be allow or deny/],
    [[{ name: 'r', effect: 'allow', actions: ['fly'], subjects: ['*'] }], /unknown action "fly"/],
    [[{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['bob'] }], /use user:NAME, group:NAME or \*/],
    [[{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'], targets: 'role in (' }], /invalid selector.*column/],
    [[{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'], runbooks: {} }], /give ids, tags or owners/],
    [[{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'], efect: 'x' }], /did you mean "effect"/],
    [[{ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'] }, { name: 'r', effect: 'deny', actions: ['run'], subjects: ['*'] }], /duplicate rule name "r"/],
    [[], /non-empty list of rules/],
  ])('%# refuses a bad policy', (rules, message) => {
    const r = validatePolicy(doc(rules));
    expect(r.policy).toBeUndefined();
    expect(r.issues.map((i) => i.message).join('\n')).toMatch(message);
  });
});

describe('selector implication (does every agent A selects also match B?)', () => {
  it.each([
    ['role=web', 'role=web', true],
    ['role=web,zone=a', 'role=web', true],
    ['role=web', 'role=web,zone=a', false],
    ['role=web', 'role in (web,api)', true],
    ['role in (web)', 'role=web', true],
    ['role in (web,db)', 'role=web', false],
    ['role in (web,api)', 'role in (web,api,db)', true],
    ['role=web', 'role', true],
    ['role=web', 'role!=db', true],
    ['role=web', 'role notin (db,cache)', true],
    ['!canary', 'canary!=true', true],
    ['!canary', '!canary', true],
    ['canary', '!canary', false],
    ['role notin (db,cache)', 'role!=db', true],
    ['*', 'role=web', false],
    ['role=web', '*', true],
  ])('%s ⊆ %s is %s', (a, b, r) => {
    expect(selectorImplies(parseSelector(a), parseSelector(b))).toBe(r);
  });
});
