import { describe, expect, it } from 'vitest';
import { validatePolicy, type Policy, type RunbookRef, type Subject, type TargetAgent } from '../../coordinator/policy/policy.js';
import { canViewExecution, executionScope, viewExecutionDecision, viewRunbookDecision, visibleAgents, type ExecutionRef, type TargetableRunbook } from '../../coordinator/policy/visibility.js';
import { EVERYTHING, parseSelector } from '../../core/selector.js';

function policy(rules: unknown[], groups?: unknown[]): Policy {
  const r = validatePolicy({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { rules, ...(groups ? { groups } : {}) } });
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return r.policy;
}

const P = [
  policy([
    { name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] },
    { name: 'web-team', effect: 'allow', actions: ['run', 'view', 'cancel'], subjects: ['group:web'], runbooks: { tags: ['web'] }, targets: 'role=web' },
    { name: 'web-canary-never', effect: 'deny', actions: ['run'], subjects: ['group:web'], targets: 'canary' },
    { name: 'web-leads', effect: 'allow', actions: ['approve'], subjects: ['group:web-leads'], runbooks: { tags: ['web'] } },
    { name: 'db-team', effect: 'allow', actions: ['run', 'view'], subjects: ['group:db'], runbooks: { owners: ['team-db'] } },
    { name: 'auditors', effect: 'allow', actions: ['view'], subjects: ['group:auditors'] },
    { name: 'no-secret-view', effect: 'deny', actions: ['view', 'approve'], subjects: ['*'], runbooks: { ids: ['secret-*'] } },
    { name: 'sre-diagnostics', effect: 'allow', actions: ['run'], subjects: ['group:sre'], runbooks: { ids: ['diag'] } },
  ]),
];

const rb = {
  web: { id: 'web-echo', tags: ['web'], owner: 'team-web' },
  db: { id: 'db-echo', tags: ['db'], owner: 'team-db' },
  secret: { id: 'secret-rotate', tags: ['web'], owner: 'team-web' },
  diag: { id: 'diag', tags: [], owner: 'team-sre' },
} satisfies Record<string, RunbookRef>;

const s = (user: string, ...groups: string[]): Subject => ({ user, groups });
const admin = s('root', 'admins');
const wendy = s('wendy', 'web');
const will = s('will', 'web-leads');
const dora = s('dora', 'db');
const ada = s('ada', 'auditors');
const nina = s('nina');
const sam = s('sam', 'sre');

const run = (runbook: RunbookRef, requestedBy: string): ExecutionRef => ({ kind: 'runbook', runbook, requestedBy });
const adhoc = (requestedBy: string): ExecutionRef => ({ kind: 'adhoc', runbook: null, requestedBy });

describe('who may see an execution', () => {
  it.each<[string, Subject, ExecutionRef, boolean]>([
    ['the requester, whatever it ran', nina, run(rb.db, 'nina'), true],
    ['the requester of an ad-hoc command', nina, adhoc('nina'), true],
    ['view on the runbook (by tag)', wendy, run(rb.web, 'someone'), true],
    ['view on the runbook (by owner)', dora, run(rb.db, 'someone'), true],
    ['approve on the runbook: approvers see what they are asked to approve', will, run(rb.web, 'wendy'), true],
    ['another team\'s runbook', wendy, run(rb.db, 'dora'), false],
    ['another team\'s runbook, for their approver', will, run(rb.db, 'dora'), false],
    ['view over every runbook', ada, run(rb.db, 'dora'), true],
    ['a deny on view wins over view everywhere', ada, run(rb.secret, 'wendy'), false],
    ['a deny on view and approve wins over the team\'s view', wendy, run(rb.secret, 'will'), false],
    ['run alone does not show others\' runs', sam, run(rb.diag, 'someone'), false],
    ['ad-hoc commands: admins', admin, adhoc('root2'), true],
    ['ad-hoc commands: nobody else', ada, adhoc('root'), false],
    ['nobody sees anything of others', nina, run(rb.web, 'wendy'), false],
  ])('%s', (_what, who, e, expected) => {
    expect(canViewExecution(P, who, e)).toBe(expected);
  });
});

describe('the history scope', () => {
  const all = [rb.web, rb.db, rb.secret, rb.diag];
  it.each<[string, Subject, ReturnType<typeof executionScope>]>([
    ['a team: own executions and its runbooks', wendy, { all: false, user: 'wendy', runbookIds: ['web-echo'], adhoc: false }],
    ['an approver: the runbooks they approve', will, { all: false, user: 'will', runbookIds: ['web-echo'], adhoc: false }],
    ['an auditor: every runbook but the denied one, no ad-hoc', ada, { all: false, user: 'ada', runbookIds: ['web-echo', 'db-echo', 'diag'], adhoc: false }],
    ['nobody: only their own', nina, { all: false, user: 'nina', runbookIds: [], adhoc: false }],
    ['admins, if nothing is denied to them: everything, unfiltered', admin, { all: false, user: 'root', runbookIds: ['web-echo', 'db-echo', 'diag'], adhoc: true }],
  ])('%s', (_what, who, expected) => {
    expect(executionScope(P, who, all)).toEqual(expected);
  });

  it('is unfiltered for a subject who sees every runbook and ad-hoc commands', () => {
    expect(executionScope(P, admin, [rb.web, rb.db, rb.diag])).toEqual({ all: true });
  });
});

describe('which agents a user sees', () => {
  const agent = (name: string, labels: Record<string, string>): TargetAgent => ({ id: `agt-${name}`, name, labels });
  const agents = [agent('web-1', { role: 'web' }), agent('web-2', { role: 'web', canary: 'true' }), agent('db-1', { role: 'db' }), agent('lb-1', { role: 'lb' })];
  const runbooks: TargetableRunbook[] = [
    { ref: rb.web, selector: parseSelector('role in (web,lb)') },
    { ref: rb.db, selector: parseSelector('role=db') },
    { ref: rb.diag, selector: EVERYTHING },
  ];
  it.each<[string, Subject, 'all' | string[]]>([
    ['admins: all', admin, 'all'],
    ['a team: what its runbooks select and its rules allow (not the canary it may not run on, not lb the rule excludes)', wendy, ['agt-web-1']],
    ['another team: its own hosts', dora, ['agt-db-1']],
    ['a runbook over every host: every host', sam, ['agt-web-1', 'agt-web-2', 'agt-db-1', 'agt-lb-1']],
    ['approve or view alone: no hosts', will, []],
    ['view everywhere: no hosts', ada, []],
    ['nobody: none', nina, []],
  ])('%s', (_what, who, expected) => {
    const v = visibleAgents(P, who, runbooks, agents);
    expect(v === 'all' ? 'all' : [...v].sort()).toEqual(expected === 'all' ? 'all' : [...expected].sort());
  });
});

describe('the view decision names what refused it (for the audit record of a hidden 404)', () => {
  const ex = (runbook: RunbookRef | null, requestedBy = 'someone'): ExecutionRef => ({ kind: runbook ? 'runbook' : 'adhoc', runbook, requestedBy });
  it.each([
    { who: 'wendy on a db execution', subject: wendy, e: ex(rb.db), allowed: false, rule: undefined },
    { who: 'wendy on a web execution', subject: wendy, e: ex(rb.web), allowed: true, rule: 'p/web-team' },
    { who: 'a web lead, through approve', subject: will, e: ex(rb.web), allowed: true, rule: 'p/web-leads' },
    { who: 'a web lead on a secret runbook (deny wins)', subject: will, e: ex(rb.secret), allowed: false, rule: 'p/no-secret-view' },
    { who: 'dora on an ad-hoc execution', subject: dora, e: ex(null), allowed: false, rule: undefined },
    { who: 'nina on her own', subject: nina, e: ex(rb.db, 'nina'), allowed: true, rule: undefined },
  ])('$who', ({ subject, e, allowed, rule }) => {
    const d = viewExecutionDecision(P, subject, e);
    expect({ allowed: d.allowed, rule: d.rule }).toEqual({ allowed, rule });
    expect(canViewExecution(P, subject, e)).toBe(allowed);
    if (!allowed && rule === undefined) expect(d.reason).toMatch(/default deny$/);
  });
});

describe('viewRunbookDecision: who may see a runbook at all (a run of one they may not is "not found")', () => {
  it.each([
    ['an admin sees every runbook', admin, rb.db, true, 'p/admins'],
    ['the web team views its runbooks', wendy, rb.web, true, 'p/web-team'],
    ['the web team does not see the db team\'s', wendy, rb.db, false, undefined],
    ['a runner without view still sees what it may run', sam, rb.diag, true, 'p/sre-diagnostics'],
    ['auditors view everything', ada, rb.db, true, 'p/auditors'],
    ['a deny on view hides it, whatever allows it elsewhere', ada, rb.secret, false, 'p/no-secret-view'],
    ['no rule at all: the default deny', nina, rb.web, false, undefined],
    ['approving alone does not show a runbook to run', will, rb.web, false, undefined],
  ] as const)('%s', (_what, subject, runbook, allowed, rule) => {
    const d = viewRunbookDecision(P, subject, runbook);
    expect({ allowed: d.allowed, rule: d.rule }).toEqual({ allowed, rule });
    if (!allowed) expect(d.reason).not.toBe('');
  });
});
