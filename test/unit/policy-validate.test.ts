import { describe, expect, it } from 'vitest';
import { validatePolicy } from '../../coordinator/policy/policy.js';
import type { ValidationIssue } from '../../core/validation.js';

const doc = (rules: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { rules, ...extra } });
const rule = (over: Record<string, unknown>): Record<string, unknown> => ({ name: 'r', effect: 'allow', actions: ['run'], subjects: ['*'], ...over });
const R = ['spec', 'rules', 0];

describe('policy validation: every problem, with a path into the document', () => {
  it.each<[string, unknown, ValidationIssue[]]>([
    ['bad effect', doc([rule({ effect: 'maybe' })]), [{ path: [...R, 'effect'], message: 'effect must be allow or deny' }]],
    ['near-miss effect', doc([rule({ effect: 'alow' })]), [{ path: [...R, 'effect'], message: 'effect must be allow or deny; did you mean "allow"?' }]],
    ['missing effect', doc([rule({ effect: undefined })]), [{ path: [...R, 'effect'], message: '"effect" is required: allow or deny' }]],
    ['unknown action', doc([rule({ actions: ['fly'] })]), [{ path: [...R, 'actions'], message: 'unknown action "fly" (use run, view, approve, cancel, admin or *)' }]],
    ['near-miss action', doc([rule({ actions: ['view', 'runn'] })]), [{ path: [...R, 'actions'], message: 'unknown action "runn" (use run, view, approve, cancel, admin or *); did you mean "run"?' }]],
    ['empty actions', doc([rule({ actions: [] })]), [{ path: [...R, 'actions'], message: '"actions" is empty: list at least one of run, view, approve, cancel, admin or *' }]],
    ['missing actions', doc([rule({ actions: undefined })]), [{ path: R, message: '"actions" is required (run, view, approve, cancel, admin, or "*")' }]],
    ['bare subject', doc([rule({ subjects: ['group:ok', 'alice'] })]), [{ path: [...R, 'subjects', 1], message: '"alice" is invalid: use user:NAME, group:NAME or *' }]],
    ['near-miss subject kind', doc([rule({ subjects: ['usr:alice'] })]), [{ path: [...R, 'subjects', 0], message: '"usr:alice" is invalid: use user:NAME, group:NAME or *; did you mean "user:alice"?' }]],
    ['subject name alphabet', doc([rule({ subjects: ['group:Web Leads'] })]), [{ path: [...R, 'subjects', 0], message: '"group:Web Leads" is invalid: group names are lower-case letters, digits, . _ - (at most 63)' }]],
    ['empty subjects', doc([rule({ subjects: [] })]), [{ path: [...R, 'subjects'], message: '"subjects" is empty: list at least one of user:NAME, group:NAME or *' }]],
    ['bad selector, with its column', doc([rule({ targets: 'role in (web' })]), [{ path: [...R, 'targets'], message: 'invalid selector: expected ",", found end of selector (column 13)' }]],
    ['selector as a mapping', doc([rule({ targets: { selector: 'role=web' } })]), [{ path: [...R, 'targets'], message: 'targets is a selector string here, e.g. targets: "role=web,env in (demo,staging)"' }]],
    ['selector matching nothing', doc([rule({ targets: 'env=prod,env=staging' })]), [{ path: [...R, 'targets'], message: 'targets "env=prod,env=staging" can match no agent (a key required to have two values? use "key in (a,b)")' }]],
    [
      'targets on a rule whose actions ignore them',
      doc([rule({ actions: ['approve', 'view'], targets: 'role=web' })]),
      [{ path: [...R, 'targets'], message: "targets only limit run and cancel; this rule's actions (approve, view) ignore them: remove targets or add run/cancel" }],
    ],
    ['glob with characters ids never have', doc([rule({ runbooks: { ids: ['Restart-*'] } })]), [{ path: [...R, 'runbooks', 'ids', 0], message: '"Restart-*" can never match: runbook ids (lower-case letters, digits, -) have no "R"' }]],
    ['glob with a character class', doc([rule({ runbooks: { ids: ['restart-[ab]'] } })]), [{ path: [...R, 'runbooks', 'ids', 0], message: '"restart-[ab]": only * and ? are wildcards here (no [..] or {..})' }]],
    ['empty glob', doc([rule({ runbooks: { ids: [''] } })]), [{ path: [...R, 'runbooks', 'ids', 0], message: '"ids" entries must be non-empty strings' }]],
    ['tag with a glob', doc([rule({ runbooks: { tags: ['web*'] } })]), [{ path: [...R, 'runbooks', 'tags', 0], message: '"web*" is invalid: tags are exact lower-case words (only ids take * and ?)' }]],
    ['owner with a glob', doc([rule({ runbooks: { owners: ['team-*'] } })]), [{ path: [...R, 'runbooks', 'owners', 0], message: '"team-*" is invalid: owners are exact team names such as team-web (only ids take * and ?)' }]],
    ['empty runbooks matcher', doc([rule({ runbooks: {} })]), [{ path: [...R, 'runbooks'], message: 'give ids, tags or owners (or leave "runbooks" out to cover every runbook)' }]],
    ['near-miss matcher field', doc([rule({ runbooks: { tag: ['web'] } })]), [{ path: [...R, 'runbooks', 'tag'], message: 'unknown field "tag" in runbooks; did you mean "tags"?' }, { path: [...R, 'runbooks'], message: 'give ids, tags or owners (or leave "runbooks" out to cover every runbook)' }]],
    ['near-miss rule field', doc([rule({ efect: 'deny' })]), [{ path: [...R, 'efect'], message: 'unknown field "efect" in a rule; did you mean "effect"?' }]],
    ['singular subjects', doc([{ name: 'r', effect: 'allow', actions: ['run'], subject: ['*'] }]), [{ path: [...R, 'subject'], message: 'unknown field "subject" in a rule; did you mean "subjects"?' }, { path: R, message: '"subjects" is required (user:NAME, group:NAME or *)' }]],
    [
      'duplicate rule names',
      doc([rule({}), rule({ effect: 'deny' })]),
      [{ path: ['spec', 'rules', 1, 'name'], message: 'duplicate rule name "r": decisions name rules as p/r, so names must be unique within a policy' }],
    ],
    ['bad rule name', doc([rule({ name: 'Support/All' })]), [{ path: [...R, 'name'], message: '"name" value "Support/All" is invalid: lower-case letters, digits, . _ - (at most 63)' }]],
    ['no rules', doc([]), [{ path: ['spec', 'rules'], message: 'a policy needs a non-empty list of rules (everything not allowed by a rule is denied)' }]],
    ['rules missing', doc(undefined), [{ path: ['spec', 'rules'], message: 'a policy needs a non-empty list of rules (everything not allowed by a rule is denied)' }]],
    [
      'duplicate group and bad member',
      doc([rule({})], { groups: [{ name: 'g', members: ['ann'] }, { name: 'g', members: ['Bob'] }] }),
      [
        { path: ['spec', 'groups', 1, 'members', 0], message: '"Bob" is invalid: members are user names (lower-case letters, digits, . _ -)' },
        { path: ['spec', 'groups', 1, 'name'], message: 'duplicate group "g": list all its members in one entry' },
      ],
    ],
    ['group without members', doc([rule({})], { groups: [{ name: 'g' }] }), [{ path: ['spec', 'groups', 0], message: 'group "g" needs "members" (a list of user names)' }]],
    [
      'wrong header',
      { apiVersion: 'v1', kind: 'Polcy', metadata: { name: 'p' }, spec: { rules: [rule({})] } },
      [
        { path: ['apiVersion'], message: 'apiVersion must be "handrail/v1"' },
        { path: ['kind'], message: 'kind must be "Policy"' },
      ],
    ],
    ['unknown top-level field', { ...doc([rule({})]), specs: {} }, [{ path: ['specs'], message: 'unknown field "specs" in a policy; did you mean "spec"?' }]],
  ])('%s', (_name, value, issues) => {
    const r = validatePolicy(value);
    expect(r.issues).toEqual(issues);
    expect(r.policy).toBeUndefined();
  });

  it('reads a valid policy into rules named <policy>/<rule>', () => {
    const r = validatePolicy(
      doc(
        [
          { name: 'everything', description: 'ops', effect: 'allow', actions: ['*', 'run'], subjects: ['group:ops', 'user:ann'] },
          { name: 'web', effect: 'deny', actions: ['run', 'run', 'cancel'], subjects: ['*'], runbooks: { ids: ['restart-*', 'a?c'], tags: ['web'], owners: ['team-web'] }, targets: 'role = web , env in (prod)' },
          { name: 'all-targets', effect: 'allow', actions: ['run'], subjects: ['*'], targets: '*' },
        ],
        { groups: [{ name: 'ops', members: ['ann', 'bob'] }] },
      ),
    );
    expect(r.issues).toEqual([]);
    expect(r.policy?.groups).toEqual({ ops: ['ann', 'bob'] });
    expect(r.policy?.rules.map((x) => [x.id, x.actions, x.targetsText])).toEqual([
      ['p/everything', '*', null],
      ['p/web', ['run', 'cancel'], 'role=web,env in (prod)'],
      ['p/all-targets', ['run'], null],
    ]);
    expect(r.policy?.rules[1]?.runbooks).toEqual({ ids: ['restart-*', 'a?c'], tags: ['web'], owners: ['team-web'] });
    expect(r.policy?.rules[0]?.description).toBe('ops');
  });

  it('reports every problem of a document at once', () => {
    const r = validatePolicy(doc([rule({ effect: 'x', actions: ['fly'], subjects: ['bob'], targets: 'role in (' }), rule({ name: 'r' })]));
    expect(r.issues.map((i) => i.path.join('.'))).toEqual(['spec.rules.0.effect', 'spec.rules.0.actions', 'spec.rules.0.subjects.0', 'spec.rules.0.targets', 'spec.rules.1.name']);
  });
});
