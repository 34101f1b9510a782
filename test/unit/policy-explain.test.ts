import { describe, expect, it } from 'vitest';
import { decide, explain, explainJson, validatePolicy, type DecisionRequest, type Policy, type TargetAgent } from '../../coordinator/policy/policy.js';

function policy(rules: unknown[]): Policy {
  const r = validatePolicy({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'p' }, spec: { rules } });
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return r.policy;
}

const P = [
  policy([
    { name: 'ops', effect: 'allow', actions: ['*'], subjects: ['group:ops'] },
    { name: 'support-web', description: 'L1 restarts web hosts', effect: 'allow', actions: ['run'], subjects: ['group:support'], runbooks: { tags: ['web'] }, targets: 'role=web' },
    { name: 'no-canary', effect: 'deny', actions: ['run'], subjects: ['*'], targets: 'canary' },
  ]),
];
const runbook = { id: 'restart-web', tags: ['web'], owner: 'team-web' };
const agent = (name: string, labels: Record<string, string>): TargetAgent => ({ id: `agt-${name}`, name, labels });
const support = { user: 'sue', groups: ['support'] };

describe('policy explain', () => {
  it('prints the decision, the rule, the refused targets and every rule with each check', () => {
    const req: DecisionRequest = { subject: support, action: 'run', runbook, targets: { selector: 'role=web', agents: [agent('web-1', { role: 'web' }), agent('web-2', { role: 'web', canary: 'true' })] } };
    expect(explain(decide(P, req), req)).toEqual([
      'DENY: sue run restart-web on role=web (2 agents)',
      '  decided by: p/no-canary (deny)',
      '  reason: sue may not run restart-web on role=web: 1 of 2 targets is not allowed (web-2 denied by p/no-canary), so the run is refused as a whole',
      '  groups: support',
      '  targets: 1 allowed, 1 refused',
      '    refused  web-2  denied by p/no-canary',
      '    allowed  web-1  by p/support-web',
      '  rules considered (a rule applies when its action, subject and runbook match):',
      '    [no] p/ops (allow)',
      '        action   yes  * covers every action',
      '        subject  no   sue (groups: support) is not among group:ops',
      '        runbook  yes  the rule covers every runbook',
      '        targets  yes  any target (all 2)',
      '    [applies] p/support-web (allow) — L1 restarts web hosts',
      '        action   yes  run is in [run]',
      '        subject  yes  sue is in group:support',
      '        runbook  yes  restart-web is tagged web',
      '        targets  yes  role=web covers all 2 targets',
      '    [decided] p/no-canary (deny)',
      '        action   yes  run is in [run]',
      '        subject  yes  * covers everyone',
      '        runbook  yes  the rule covers every runbook',
      '        targets  yes  canary denies 1 of 2 targets (web-2)',
    ]);
  });

  it.each<[string, DecisionRequest, string[]]>([
    [
      'default deny names no rule',
      { subject: { user: 'nina', groups: [] }, action: 'approve', runbook },
      ['DENY: nina approve restart-web', '  decided by: default deny (no rule allows it)', '  reason: no rule allows nina (groups: none) to approve restart-web; default deny'],
    ],
    [
      'selector only: says the targets are not provably within the rule',
      { subject: support, action: 'run', runbook, targets: { selector: 'zone=a,!canary' } },
      [
        'DENY: sue run restart-web on zone=a,!canary',
        '  decided by: default deny (no rule allows it)',
        "  reason: sue may not run restart-web on zone=a,!canary: targets zone=a,!canary are not provably within p/support-web's selector role=web (they do not require role=web); default deny",
      ],
    ],
    [
      'admin operations',
      { subject: { user: 'olga', groups: ['ops'] }, action: 'admin' },
      ['ALLOW: olga admin', '  decided by: p/ops (allow)', '  reason: olga may perform admin operations: allowed by p/ops'],
    ],
  ])('%s', (_name, req, head) => {
    expect(explain(decide(P, req), req).slice(0, head.length)).toEqual(head);
  });

  it('summarises many allowed targets per rule and lists every refused one', () => {
    const agents = Array.from({ length: 30 }, (_, i) => agent(`web-${i}`, i < 2 ? { role: 'web', canary: 'yes' } : { role: 'web' }));
    const req: DecisionRequest = { subject: support, action: 'run', runbook, targets: { selector: 'role=web', agents } };
    const lines = explain(decide(P, req), req);
    expect(lines).toContain('  targets: 28 allowed, 2 refused');
    expect(lines).toContain('    refused  web-0  denied by p/no-canary');
    expect(lines).toContain('    refused  web-1  denied by p/no-canary');
    expect(lines).toContain('    allowed  28 agents by p/support-web');
  });

  it('says so when no policies are loaded', () => {
    const req: DecisionRequest = { subject: support, action: 'view', runbook };
    expect(explain(decide([], req), req).at(-1)).toBe('    (no policies loaded: everything is denied)');
  });

  it('gives scripts one JSON shape with nulls, not missing keys', () => {
    const req: DecisionRequest = { subject: { user: 'nina', groups: [] }, action: 'run', runbook, targets: { selector: 'role=web', agents: [agent('web-1', { role: 'web' })] } };
    const j = explainJson(decide(P, req), req);
    expect(JSON.parse(JSON.stringify(j))).toEqual({
      allowed: false,
      effect: 'default-deny',
      rule: null,
      reason: 'nina may not run restart-web on role=web: 1 of 1 target is not allowed (web-1 covered by no allow rule), so the run is refused as a whole; default deny',
      request: { user: 'nina', groups: [], action: 'run', runbook: 'restart-web', targets: 'role=web', agents: 1 },
      matchedRules: ['p/no-canary'],
      perTarget: [{ agentId: 'agt-web-1', agent: 'web-1', allowed: false, rule: null }],
      rules: [
        expect.objectContaining({ rule: 'p/ops', applies: false, decisive: false, description: null, subject: { ok: false, detail: 'nina (groups: none) is not among group:ops' } }),
        expect.objectContaining({ rule: 'p/support-web', applies: false, decisive: false, description: 'L1 restarts web hosts' }),
        expect.objectContaining({ rule: 'p/no-canary', applies: true, decisive: false, targets: { ok: false, detail: 'canary matches none of the 1 target' } }),
      ],
    });
  });
});
