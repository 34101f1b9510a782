import { describe, expect, it } from 'vitest';
import { allowedActions, decide, validatePolicy, visibleRunbooks, type Decision, type DecisionRequest, type Policy, type PolicyAction, type TargetAgent } from '../../coordinator/policy/policy.js';
import { parseSelector } from '../../core/selector.js';

function policy(name: string, rules: unknown[], groups?: unknown[]): Policy {
  const r = validatePolicy({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name }, spec: { rules, ...(groups ? { groups } : {}) } });
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return r.policy;
}

const P = [
  policy(
    'p',
    [
      { name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] },
      { name: 'support-diag', effect: 'allow', actions: ['run', 'view'], subjects: ['group:support'], runbooks: { tags: ['diagnostics'] }, targets: 'env=prod' },
      { name: 'support-restart', effect: 'allow', actions: ['run', 'cancel'], subjects: ['group:support'], runbooks: { ids: ['restart-*'] }, targets: 'role=web' },
      { name: 'support-db', effect: 'allow', actions: ['run'], subjects: ['group:support'], runbooks: { ids: ['restart-*'] }, targets: 'role=db,env=staging' },
      { name: 'no-db-team', effect: 'deny', actions: ['run'], subjects: ['*'], runbooks: { owners: ['team-db'] } },
      { name: 'no-canary', effect: 'deny', actions: ['run'], subjects: ['group:support'], targets: 'canary' },
      { name: 'carol-approves', effect: 'allow', actions: ['approve'], subjects: ['user:carol'], runbooks: { ids: ['*'] } },
      { name: 'sre-owns', effect: 'allow', actions: ['view', 'run'], subjects: ['group:sre'], runbooks: { owners: ['team-sre'] } },
      { name: 'anyone-views-docs', effect: 'allow', actions: ['view'], subjects: ['*'], runbooks: { ids: ['doc-?'] } },
    ],
    [{ name: 'support', members: ['sam'] }],
  ),
  policy('second', [{ name: 'no-sam-cancel', effect: 'deny', actions: ['cancel'], subjects: ['user:sam'] }], [{ name: 'sre', members: ['sam'] }]),
];

const rb = {
  diag: { id: 'diagnostics-bundle', tags: ['diagnostics'], owner: 'team-sre' },
  restart: { id: 'restart-web', tags: ['web'], owner: 'team-web' },
  db: { id: 'restart-db', tags: [], owner: 'team-db' },
  doc1: { id: 'doc-1', tags: [], owner: 'team-x' },
  doc12: { id: 'doc-12', tags: [], owner: 'team-x' },
};
const agent = (name: string, labels: Record<string, string>): TargetAgent => ({ id: `agt-${name}`, name, labels });
const web1 = agent('web-1', { role: 'web', env: 'prod' });
const web2 = agent('web-2', { role: 'web', env: 'prod', canary: 'true' });
const db1 = agent('db-1', { role: 'db', env: 'prod' });
const db2 = agent('db-2', { role: 'db', env: 'staging' });

const support = { user: 's', groups: ['support'] };
const admin = { user: 'a', groups: ['admins'] };
const nobody = { user: 'n', groups: [] };
const sel = (s: string, agents?: TargetAgent[]): DecisionRequest['targets'] => ({ selector: parseSelector(s), ...(agents ? { agents } : {}) });

describe('rule matching, default deny and deny wins', () => {
  it.each<[string, DecisionRequest, boolean, string | undefined]>([
    ['default deny: no rule at all', { subject: nobody, action: 'run', runbook: rb.diag }, false, undefined],
    ['admin may do admin operations (rule over every runbook)', { subject: admin, action: 'admin' }, true, 'p/admins'],
    ['admin: * covers every action on a runbook', { subject: admin, action: 'approve', runbook: rb.restart }, true, 'p/admins'],
    ['deny wins over an allow for everything', { subject: admin, action: 'run', runbook: rb.db }, false, 'p/no-db-team'],
    ['deny limited to run leaves view to the allow', { subject: admin, action: 'view', runbook: rb.db }, true, 'p/admins'],
    ['group subject and tag', { subject: support, action: 'view', runbook: rb.diag }, true, 'p/support-diag'],
    ['action not in the rule', { subject: support, action: 'approve', runbook: rb.diag }, false, undefined],
    ['admin action needs a rule over every runbook', { subject: support, action: 'admin' }, false, undefined],
    ['ids [*] covers admin-free requests about no runbook', { subject: { user: 'carol', groups: [] }, action: 'approve' }, true, 'p/carol-approves'],
    ['user subject', { subject: { user: 'carol', groups: [] }, action: 'approve', runbook: rb.restart }, true, 'p/carol-approves'],
    ['user subject does not match another user', { subject: { user: 'caroline', groups: [] }, action: 'approve', runbook: rb.restart }, false, undefined],
    ['group declared by the policy itself', { subject: { user: 'sam', groups: [] }, action: 'view', runbook: rb.diag }, true, 'p/support-diag'],
    ['group declared by another policy', { subject: { user: 'sam', groups: [] }, action: 'view', runbook: { id: 'x', tags: [], owner: 'team-sre' } }, true, 'p/sre-owns'],
    ['owner match', { subject: { user: 'o', groups: ['sre'] }, action: 'run', runbook: rb.diag }, true, 'p/sre-owns'],
    ['owner mismatch', { subject: { user: 'o', groups: ['sre'] }, action: 'run', runbook: rb.restart }, false, undefined],
    ['glob * on ids', { subject: support, action: 'run', runbook: rb.restart }, true, 'p/support-restart'],
    ['glob ? matches exactly one character', { subject: nobody, action: 'view', runbook: rb.doc1 }, true, 'p/anyone-views-docs'],
    ['glob ? does not match two', { subject: nobody, action: 'view', runbook: rb.doc12 }, false, undefined],
    ['* subject covers everyone', { subject: { user: 'zed', groups: ['x'] }, action: 'view', runbook: rb.doc1 }, true, 'p/anyone-views-docs'],
    ['a deny in another policy wins', { subject: { user: 'sam', groups: ['support'] }, action: 'cancel', runbook: rb.restart }, false, 'second/no-sam-cancel'],
    ['a target-limited deny does not refuse the runbook as a whole', { subject: support, action: 'run', runbook: rb.restart }, true, 'p/support-restart'],
    ['targets are ignored for view', { subject: support, action: 'view', runbook: rb.diag, targets: sel('role=db', [db1]) }, true, 'p/support-diag'],
  ])('%s', (_name, req, allowed, rule) => {
    const d = decide(P, req);
    expect({ allowed: d.allowed, rule: d.rule }).toEqual({ allowed, rule });
    expect(d.effect).toBe(rule === undefined ? 'default-deny' : allowed ? 'allow' : 'deny');
    expect(d.reason.length).toBeGreaterThan(10);
    if (rule === undefined) expect(d.reason).toMatch(/default deny/);
    else expect(d.reason).toContain(rule);
  });

  it('lists the rules that applied and considers every rule', () => {
    const d = decide(P, { subject: admin, action: 'run', runbook: rb.db });
    expect(d.matchedRules).toEqual(['p/admins', 'p/no-db-team']);
    expect(d.considered.map((t) => t.rule)).toHaveLength(10);
    const deny = d.considered.find((t) => t.rule === 'p/no-db-team');
    expect(deny).toMatchObject({ applies: true, effect: 'deny', runbook: { ok: true, detail: 'restart-db is owned by team-db' } });
    const carol = d.considered.find((t) => t.rule === 'p/carol-approves');
    expect(carol?.action).toEqual({ ok: false, detail: 'run is not in [approve]' });
    expect(carol?.subject.detail).toBe('a (groups: admins) is not among user:carol');
  });

  it('no policies: everything is denied', () => {
    const d: Decision = decide([], { subject: admin, action: 'admin' });
    expect(d).toMatchObject({ allowed: false, effect: 'default-deny', rule: undefined, matchedRules: [], considered: [] });
  });

  it('reports the effective groups', () => {
    expect(decide(P, { subject: { user: 'sam', groups: ['zeta'] }, action: 'view', runbook: rb.diag }).groups).toEqual(['sre', 'support', 'zeta']);
  });
});

describe('per-target decisions (concrete agents)', () => {
  it.each<[string, DecisionRequest, boolean, string | undefined, Record<string, string | null>]>([
    ['every target covered', { subject: support, action: 'run', runbook: rb.restart, targets: sel('role=web', [web1]) }, true, 'p/support-restart', { 'web-1': 'p/support-restart' }],
    [
      'targets covered by different allow rules',
      { subject: support, action: 'run', runbook: rb.restart, targets: sel('*', [web1, db2]) },
      true,
      'p/support-restart',
      { 'web-1': 'p/support-restart', 'db-2': 'p/support-db' },
    ],
    [
      'one target outside every allow selector refuses the whole run',
      { subject: support, action: 'run', runbook: rb.restart, targets: sel('*', [web1, db1]) },
      false,
      undefined,
      { 'web-1': 'p/support-restart', 'db-1': null },
    ],
    [
      'a denied target refuses the whole run and names the deny',
      { subject: support, action: 'run', runbook: rb.restart, targets: sel('role=web', [web1, web2]) },
      false,
      'p/no-canary',
      { 'web-1': 'p/support-restart', 'web-2': 'p/no-canary' },
    ],
    [
      'the deny rule is named even when a default deny came first',
      { subject: support, action: 'run', runbook: rb.restart, targets: sel('*', [db1, web2]) },
      false,
      'p/no-canary',
      { 'db-1': null, 'web-2': 'p/no-canary' },
    ],
    [
      'a deny without targets refuses every target',
      { subject: admin, action: 'run', runbook: rb.db, targets: sel('*', [db1, db2]) },
      false,
      'p/no-db-team',
      { 'db-1': 'p/no-db-team', 'db-2': 'p/no-db-team' },
    ],
    [
      'a deny limited to run does not limit cancel',
      { subject: support, action: 'cancel', runbook: rb.restart, targets: sel('role=web', [web1, web2]) },
      true,
      'p/support-restart',
      { 'web-1': 'p/support-restart', 'web-2': 'p/support-restart' },
    ],
    [
      'a subject no rule covers: each target is default-denied',
      { subject: { user: 'n', groups: [] }, action: 'run', runbook: rb.restart, targets: sel('*', [web1]) },
      false,
      undefined,
      { 'web-1': null },
    ],
  ])('%s', (_name, req, allowed, rule, per) => {
    const d = decide(P, req);
    expect({ allowed: d.allowed, rule: d.rule }).toEqual({ allowed, rule });
    expect(Object.fromEntries((d.perTarget ?? []).map((t) => [t.agent, t.rule ?? null]))).toEqual(per);
    const denies = new Set(P.flatMap((p) => p.rules).filter((r) => r.effect === 'deny').map((r) => r.id));
    for (const t of d.perTarget ?? []) expect(t.allowed).toBe(t.rule !== undefined && !denies.has(t.rule));
  });

  it('says which targets were refused, by what, and that the run is refused as a whole', () => {
    const d = decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel('*', [web1, web2, db1]) });
    expect(d.reason).toBe('s may not run restart-web on *: 2 of 3 targets are not allowed (web-2 denied by p/no-canary; db-1 covered by no allow rule), so the run is refused as a whole');
    expect(d.perTarget?.find((t) => t.agent === 'db-1')).toEqual({ agentId: 'agt-db-1', agent: 'db-1', allowed: false, rule: undefined });
  });

  it('says default deny when no rule refused any target, as every default deny does', () => {
    const d = decide(P, { subject: { user: 'n', groups: [] }, action: 'run', runbook: rb.restart, targets: sel('*', [web1, web2]) });
    expect({ allowed: d.allowed, rule: d.rule, effect: d.effect }).toEqual({ allowed: false, rule: undefined, effect: 'default-deny' });
    expect(d.reason).toBe('n may not run restart-web on *: 2 of 2 targets are not allowed (web-1 covered by no allow rule; web-2 covered by no allow rule), so the run is refused as a whole; default deny');
  });

  it('names a few refused targets and counts the rest', () => {
    const many = Array.from({ length: 6 }, (_, i) => agent(`db-${i}`, { role: 'db' }));
    const d = decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel('role=db', many) });
    expect(d.reason).toMatch(/6 of 6 targets are not allowed \(db-0 covered by no allow rule; db-1 .*; db-2 .*; and 3 more\)/);
  });

  it('counts allowing rules when several allowed', () => {
    const d = decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel('*', [web1, db2]) });
    expect(d.reason).toBe('s may run restart-web on all 2 targets: allowed by p/support-restart (1), p/support-db (1)');
  });

  it('matches name and id pseudo-labels as the engine selects them', () => {
    const named = [policy('n', [{ name: 'only-web-1', effect: 'allow', actions: ['run'], subjects: ['*'], targets: 'name=web-1' }])];
    expect(decide(named, { subject: nobody, action: 'run', runbook: rb.restart, targets: sel('*', [web1]) }).allowed).toBe(true);
    expect(decide(named, { subject: nobody, action: 'run', runbook: rb.restart, targets: sel('*', [web2]) }).allowed).toBe(false);
  });

  it('takes selector text as well as a parsed selector', () => {
    const d = decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: { selector: 'role=web', agents: [web1] } });
    expect(d.allowed).toBe(true);
  });
});

describe('selector-only decisions (no agent list)', () => {
  it.each<[string, string, boolean, string | undefined, RegExp]>([
    ['selector provably inside the allow', 'role=web,zone=a,!canary', true, 'p/support-restart', /within its targets role=web/],
    ['a deny whose targets may overlap wins', 'role=web,zone=a', false, 'p/no-canary', /may include agents matching canary, which p\/no-canary denies/],
    ['a deny whose targets contain the selector', 'role=web,canary=true', false, 'p/no-canary', /all match canary/],
    ['not provably inside: named with the missing requirement', 'zone=a,!canary', false, undefined, /targets zone=a,!canary are not provably within p\/support-restart's selector role=web \(they do not require role=web\), nor within p\/support-db's role=db,env=staging; default deny/],
    ['role=db is not within role=web', 'role=db,!canary', false, undefined, /not provably within p\/support-restart's selector role=web/],
    ['split on in: each part inside some rule', 'role in (web,db),env=staging,!canary', true, 'p/support-restart', /allowed part by part \(role=web,env=staging,!canary by p\/support-restart, role=db,env=staging,!canary by p\/support-db\)/],
    ['split on in: one part uncovered', 'role in (web,db),!canary', false, undefined, /not provably within/],
    ['a selector matching nothing is inside anything', 'role=web,role=db', true, 'p/support-restart', /allowed by/],
  ])('%s: %s', (_name, s, allowed, rule, reason) => {
    const d = decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel(s) });
    expect({ allowed: d.allowed, rule: d.rule }).toEqual({ allowed, rule });
    expect(d.reason).toMatch(reason);
    expect(d.perTarget).toBeUndefined();
  });

  it('an empty agent list is decided on the selector', () => {
    expect(decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel('zone=a', []) }).allowed).toBe(false);
    expect(decide(P, { subject: support, action: 'run', runbook: rb.restart, targets: sel('role=web,!canary', []) }).allowed).toBe(true);
  });

  it('an allow rule without targets covers any selector', () => {
    expect(decide(P, { subject: admin, action: 'run', runbook: rb.restart, targets: sel('*') })).toMatchObject({ allowed: true, rule: 'p/admins' });
  });
});

describe('what a subject may see and do', () => {
  it('shows only the runbooks the subject may view or run', () => {
    const all = [rb.diag, rb.restart, rb.db, rb.doc1];
    // restart-db matches restart-* but its owner's deny takes run away, and support has no view on it
    expect(visibleRunbooks(P, support, all).map((r) => r.id)).toEqual(['diagnostics-bundle', 'restart-web', 'doc-1']);
    expect(visibleRunbooks(P, nobody, all).map((r) => r.id)).toEqual(['doc-1']);
    expect(visibleRunbooks(P, admin, all)).toHaveLength(4);
  });

  it.each<[string, { user: string; groups: string[] }, (typeof rb)[keyof typeof rb] | undefined, PolicyAction[]]>([
    ['support on restart-web', support, rb.restart, ['run', 'cancel']],
    ['support on diagnostics', support, rb.diag, ['run', 'view']],
    ['admin on restart-db (run denied)', admin, rb.db, ['view', 'approve', 'cancel', 'admin']],
    ['admin on no runbook', admin, undefined, ['run', 'view', 'approve', 'cancel', 'admin']],
    ['nobody', nobody, rb.restart, []],
  ])('allowed actions: %s', (_name, subject, runbook, actions) => {
    expect(allowedActions(P, subject, runbook)).toEqual(actions);
  });
});
