import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { allowedActions, decide, executionScope, validatePolicy, visibleRunbooks, type Policy, type PolicyAction, type RunbookRef, type TargetAgent } from '../../coordinator/policy/policy.js';
import { DEMO_USERS } from '../../cli/commands/demo.js';
import { matches, parseSelector } from '../../core/selector.js';
import { auditTrailScope } from '../../coordinator/policy/visibility.js';
import { ROOT } from '../helpers/processes.js';

// The demo's policy against the demo's runbooks, agents and users (cli/commands/demo.ts).
const dir = join(ROOT, 'runbooks');
const docs = readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: Record<string, unknown>; spec: Record<string, unknown> }));
const policies: Policy[] = docs
  .filter((d) => d.kind === 'Policy')
  .map((d) => {
    const r = validatePolicy(d);
    if (!r.policy) throw new Error(JSON.stringify(r.issues));
    return r.policy;
  });
const runbooks = new Map(
  docs
    .filter((d) => d.kind === 'Runbook')
    .map((d) => {
      const ref: RunbookRef = { id: d.metadata['id'] as string, tags: d.metadata['tags'] as string[], owner: d.metadata['owner'] as string };
      return [ref.id, { ref, selector: parseSelector(String((d.spec['targets'] as { selector?: string } | undefined)?.selector ?? '*')) }];
    }),
);
const agents: TargetAgent[] = [
  { id: 'agt-1', name: 'web-1', labels: { role: 'web', env: 'demo', zone: 'a' } },
  { id: 'agt-2', name: 'web-2', labels: { role: 'web', env: 'demo', zone: 'b' } },
  { id: 'agt-3', name: 'db-1', labels: { role: 'db', env: 'demo', zone: 'a' } },
];
const users = {
  alice: { user: 'alice', groups: ['support'] },
  bob: { user: 'bob', groups: [] as string[] },
  carol: { user: 'carol', groups: [] as string[] },
  admin: { user: 'admin', groups: ['admins', 'ops-admins'] },
};

function request(user: keyof typeof users, action: PolicyAction, id: string | undefined) {
  const rb = id === undefined ? undefined : runbooks.get(id);
  if (id !== undefined && !rb) throw new Error(`no demo runbook ${id}`);
  const targets = rb && (action === 'run' || action === 'cancel') ? { selector: rb.selector, agents: agents.filter((a) => matches(rb.selector, { ...a.labels, name: a.name })) } : undefined;
  return { subject: users[user], action, ...(rb ? { runbook: rb.ref } : {}), ...(targets ? { targets } : {}) };
}

describe('the demo policy', () => {
  it('has one policy and the five example runbooks', () => {
    expect(policies.map((p) => p.name)).toEqual(['demo']);
    expect([...runbooks.keys()].sort()).toEqual(['clear-cache', 'diagnostics-bundle', 'free-disk-space', 'restart-web', 'rollback-release']);
  });

  it.each<[keyof typeof users, PolicyAction, string | undefined, boolean, string | undefined]>([
    ['alice', 'run', 'diagnostics-bundle', true, 'demo/support-diagnostics'],
    ['alice', 'run', 'clear-cache', true, 'demo/support-diagnostics'],
    ['alice', 'run', 'free-disk-space', true, 'demo/support-diagnostics'],
    ['alice', 'run', 'restart-web', true, 'demo/support-restarts-web'],
    ['alice', 'cancel', 'restart-web', true, 'demo/support-restarts-web'],
    ['alice', 'run', 'rollback-release', false, 'demo/support-nothing-destructive'],
    ['alice', 'approve', 'restart-web', false, undefined],
    ['alice', 'admin', undefined, false, undefined],
    ['bob', 'approve', 'restart-web', true, 'demo/web-leads-web-runbooks'], // group from the policy itself
    ['bob', 'run', 'rollback-release', true, 'demo/web-leads-web-runbooks'],
    ['bob', 'run', 'diagnostics-bundle', false, undefined],
    // carol (security, a group the policy itself declares): sees everything, runs nothing.
    ['carol', 'view', 'rollback-release', true, 'demo/security-views-everything'],
    ['carol', 'view', 'diagnostics-bundle', true, 'demo/security-views-everything'],
    ['carol', 'view', undefined, true, 'demo/security-views-everything'], // about no runbook in particular: the audit trail
    ['carol', 'run', 'diagnostics-bundle', false, 'demo/security-runs-nothing'],
    ['carol', 'cancel', 'restart-web', false, 'demo/security-runs-nothing'],
    ['carol', 'approve', 'restart-web', false, 'demo/security-runs-nothing'],
    ['carol', 'admin', undefined, false, undefined],
    ['admin', 'admin', undefined, true, 'demo/ops-admins-everything'],
    ['admin', 'run', 'rollback-release', true, 'demo/ops-admins-everything'],
  ])('%s %s %s → %s by %s', (user, action, id, allowed, rule) => {
    const d = decide(policies, request(user, action, id));
    expect({ allowed: d.allowed, rule: d.rule }, d.reason).toEqual({ allowed, rule });
  });

  it('shows each demo user only what they may run or see', () => {
    const refs = [...runbooks.values()].map((r) => r.ref);
    const ids = (u: keyof typeof users): string[] => visibleRunbooks(policies, users[u], refs).map((r) => r.id).sort();
    expect(ids('alice')).toEqual(['clear-cache', 'diagnostics-bundle', 'free-disk-space', 'restart-web']);
    expect(ids('bob')).toEqual(['clear-cache', 'restart-web', 'rollback-release']);
    expect(ids('carol')).toHaveLength(5);
    expect(ids('admin')).toHaveLength(5);
  });

  it('opens the whole audit trail to admins and security, and only their executions\' records to the others', () => {
    const refs = [...runbooks.values()].map((r) => r.ref);
    const whole = (u: keyof typeof users): boolean => auditTrailScope(policies, users[u], refs).all;
    expect([whole('alice'), whole('bob'), whole('carol'), whole('admin')]).toEqual([false, false, true, true]);
  });

  it('lets security see every runbook execution, whoever started it, but not ad-hoc commands (admin only)', () => {
    const refs = [...runbooks.values()].map((r) => r.ref);
    expect(executionScope(policies, users.carol, refs)).toEqual({ all: false, user: 'carol', runbookIds: refs.map((r) => r.id), adhoc: false });
    expect(runbookActions('carol')).toEqual(['view']);
    expect(runbookActions('alice')).toEqual(['run', 'view', 'cancel']);
  });
});

/** Every action a demo user may take on diagnostics-bundle. */
function runbookActions(u: keyof typeof users): PolicyAction[] {
  return allowedActions(policies, users[u], runbooks.get('diagnostics-bundle')?.ref);
}
describe('the demo users', () => {
  it('are the policy\'s subjects, one per role', () => {
    expect(DEMO_USERS.map((u) => u.name)).toEqual(['alice', 'bob', 'carol', 'admin']);
    expect(DEMO_USERS.map((u) => u.role.split(' ')[0])).toEqual(['support', 'approver', 'security', 'ops']);
  });
});
