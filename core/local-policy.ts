/**
 * The agent's local policy: the host owner's last word, enforced on the agent even for steps
 * the coordinator signed. Pure validation and decision; the agent reads the YAML file.
 *
 *   allowAdhoc: false          # ad-hoc commands (outside any runbook); default false
 *   runbooks:                  # absent: steps of any runbook may run
 *     ids: ["diagnostics-*"]   # globs on runbook ids
 *     owners: [team-sre]       # or runbooks owned by these teams
 *   denyCommands: ["rm", "/usr/bin/dd"]   # argv[0] (or its basename) that never runs here
 */
import type { ValidationIssue } from './validation.js';

export interface LocalPolicy {
  readonly allowAdhoc: boolean;
  /** null: any runbook. */
  readonly runbooks: { readonly ids: readonly string[]; readonly owners: readonly string[] } | null;
  readonly denyCommands: readonly string[];
}

export const DEFAULT_LOCAL_POLICY: LocalPolicy = { allowAdhoc: false, runbooks: null, denyCommands: [] };

export interface LocalStep {
  readonly runbookId: string;
  readonly runbookOwner: string;
  readonly argv: readonly string[];
  readonly isScript: boolean;
}

const TOP_KEYS = ['allowAdhoc', 'runbooks', 'denyCommands'];

export function validateLocalPolicy(value: unknown): { policy?: LocalPolicy; issues: ValidationIssue[] } {
  const issues: ValidationIssue[] = [];
  if (value === null || value === undefined) return { policy: DEFAULT_LOCAL_POLICY, issues };
  if (typeof value !== 'object' || Array.isArray(value)) return { issues: [{ path: [], message: 'the local policy must be a mapping' }] };
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!TOP_KEYS.includes(k)) issues.push({ path: [k], message: `unknown field "${k}" (expected one of ${TOP_KEYS.join(', ')})` });
  let allowAdhoc = false;
  if (v['allowAdhoc'] !== undefined) {
    if (typeof v['allowAdhoc'] === 'boolean') allowAdhoc = v['allowAdhoc'];
    else issues.push({ path: ['allowAdhoc'], message: 'must be true or false' });
  }
  let runbooks: LocalPolicy['runbooks'] = null;
  if (v['runbooks'] !== undefined && v['runbooks'] !== null) {
    const r = v['runbooks'];
    if (typeof r !== 'object' || Array.isArray(r)) issues.push({ path: ['runbooks'], message: 'must be a mapping with ids and/or owners' });
    else {
      const rr = r as Record<string, unknown>;
      for (const k of Object.keys(rr)) if (k !== 'ids' && k !== 'owners') issues.push({ path: ['runbooks', k], message: `unknown field "${k}" (expected ids or owners)` });
      const ids = stringList(rr['ids'], ['runbooks', 'ids'], issues);
      const owners = stringList(rr['owners'], ['runbooks', 'owners'], issues);
      runbooks = { ids, owners };
    }
  }
  const denyCommands = stringList(v['denyCommands'], ['denyCommands'], issues);
  return issues.length > 0 ? { issues } : { policy: { allowAdhoc, runbooks, denyCommands }, issues };
}

function stringList(v: unknown, path: (string | number)[], issues: ValidationIssue[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    issues.push({ path, message: 'must be a list of strings' });
    return [];
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x === 'string' && x.length > 0) out.push(x);
    else issues.push({ path: [...path, i], message: 'must be a non-empty string' });
  });
  return out;
}

function glob(pattern: string, text: string): boolean {
  const re = new RegExp('^' + pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('') + '$');
  return re.test(text);
}

export function checkLocalPolicy(policy: LocalPolicy, step: LocalStep): { allowed: boolean; reason: string } {
  if (step.runbookId === '') {
    if (!policy.allowAdhoc) return { allowed: false, reason: 'ad-hoc commands are not allowed on this host (local policy allowAdhoc: false)' };
  } else if (policy.runbooks) {
    const byId = policy.runbooks.ids.some((p) => glob(p, step.runbookId));
    const byOwner = policy.runbooks.owners.includes(step.runbookOwner);
    if (!byId && !byOwner) {
      return { allowed: false, reason: `runbook ${step.runbookId} (owner ${step.runbookOwner || 'none'}) is not allowed on this host by its local policy` };
    }
  }
  const argv0 = step.argv[0];
  if (argv0 !== undefined) {
    const base = argv0.split('/').pop() ?? argv0;
    const hit = policy.denyCommands.find((d) => glob(d, argv0) || glob(d, base));
    if (hit) return { allowed: false, reason: `command ${argv0} is denied on this host by its local policy (${hit})` };
  }
  return { allowed: true, reason: step.runbookId === '' ? 'ad-hoc commands allowed' : 'runbook allowed' };
}
