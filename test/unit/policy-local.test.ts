import { describe, expect, it } from 'vitest';
import { checkLocalPolicy, DEFAULT_LOCAL_POLICY, validateLocalPolicy, type LocalPolicy, type LocalStep } from '../../core/local-policy.js';
import type { ValidationIssue } from '../../core/validation.js';

function local(value: unknown): LocalPolicy {
  const r = validateLocalPolicy(value);
  if (!r.policy) throw new Error(JSON.stringify(r.issues));
  return r.policy;
}
const step = (over: Partial<LocalStep>): LocalStep => ({ runbookId: 'diagnostics-bundle', runbookOwner: 'team-sre', argv: ['uptime'], isScript: false, ...over });
const adhoc = (argv: string[]): LocalStep => step({ runbookId: '', runbookOwner: '', argv });

describe('agent local policy: validation', () => {
  it.each<[string, unknown, LocalPolicy]>([
    ['empty file: any runbook, no ad-hoc commands', null, DEFAULT_LOCAL_POLICY],
    ['empty mapping', {}, { allowAdhoc: false, allowScripts: true, runbooks: null, denyCommands: [] }],
    [
      'everything given',
      { allowAdhoc: true, allowScripts: false, runbooks: { ids: ['diagnostics-*'], owners: ['team-sre'] }, denyCommands: ['rm', 'mkfs*'] },
      { allowAdhoc: true, allowScripts: false, runbooks: { ids: ['diagnostics-*'], owners: ['team-sre'] }, denyCommands: ['rm', 'mkfs*'] },
    ],
    ['owners alone', { runbooks: { owners: ['team-sre'] } }, { allowAdhoc: false, allowScripts: true, runbooks: { ids: [], owners: ['team-sre'] }, denyCommands: [] }],
  ])('%s', (_name, value, expected) => {
    expect(validateLocalPolicy(value)).toEqual({ policy: expected, issues: [] });
  });

  it.each<[string, unknown, ValidationIssue[]]>([
    ['not a mapping', ['allowAdhoc'], [{ path: [], message: 'the local policy must be a mapping (key: value)' }]],
    ['near-miss field', { allowAdHoc: true }, [{ path: ['allowAdHoc'], message: 'unknown field "allowAdHoc" in the local policy; did you mean "allowAdhoc"?' }]],
    ['not a boolean', { allowAdhoc: 'yes' }, [{ path: ['allowAdhoc'], message: '"allowAdhoc" must be true or false' }]],
    ['runbooks without ids or owners', { runbooks: {} }, [{ path: ['runbooks'], message: 'give ids or owners, or leave "runbooks" out to allow the steps of every runbook' }]],
    ['runbooks with both lists empty', { runbooks: { ids: [], owners: [] } }, [{ path: ['runbooks'], message: 'ids and owners are both empty, which would refuse every runbook: list some, or leave "runbooks" out to allow every runbook' }]],
    ['near-miss runbooks field', { runbooks: { id: ['x'], owners: ['t'] } }, [{ path: ['runbooks', 'id'], message: 'unknown field "id" in runbooks; did you mean "ids"?' }]],
    ['bad glob', { runbooks: { ids: ['Diag*'] } }, [{ path: ['runbooks', 'ids', 0], message: '"Diag*" can never match: runbook ids (lower-case letters, digits, -) have no "D"' }]],
    ['denyCommands not a list', { denyCommands: 'rm' }, [{ path: ['denyCommands'], message: '"denyCommands" must be a list' }]],
    ['empty command', { denyCommands: ['rm', ''] }, [{ path: ['denyCommands', 1], message: '"denyCommands" entries must be non-empty strings' }]],
  ])('refuses %s', (_name, value, issues) => {
    expect(validateLocalPolicy(value)).toEqual({ issues });
  });
});

describe('agent local policy: decisions', () => {
  const locked = local({ runbooks: { ids: ['diagnostics-*', 'clear-cache'], owners: ['team-db'] }, denyCommands: ['rm', '/usr/bin/dd', 'mkfs*'] });
  const open = local({ allowAdhoc: true, denyCommands: ['rm'] });
  const noScripts = local({ allowScripts: false });

  it.each<[string, LocalPolicy, LocalStep, boolean, RegExp]>([
    ['default: any runbook step', DEFAULT_LOCAL_POLICY, step({ runbookId: 'restart-web' }), true, /runbook restart-web is allowed/],
    ['default: no ad-hoc commands', DEFAULT_LOCAL_POLICY, adhoc(['uptime']), false, /ad-hoc commands are not allowed on this host \(local policy allowAdhoc: false\)/],
    ['ad-hoc allowed when the file says so', open, adhoc(['uptime']), true, /ad-hoc commands are allowed/],
    ['runbook id glob', locked, step({}), true, /allowed/],
    ['exact runbook id', locked, step({ runbookId: 'clear-cache', runbookOwner: 'team-web' }), true, /allowed/],
    ['runbook owner', locked, step({ runbookId: 'vacuum', runbookOwner: 'team-db' }), true, /allowed/],
    ['runbook outside the list', locked, step({ runbookId: 'restart-web', runbookOwner: 'team-web' }), false, /runbook restart-web \(owner team-web\) is not among the runbooks this host's local policy allows/],
    ['glob anchors the whole id', locked, step({ runbookId: 'x-diagnostics-bundle', runbookOwner: 'team-web' }), false, /not among/],
    ['denied command', locked, step({ argv: ['rm', '-rf', '/tmp/x'] }), false, /command rm is denied on this host by its local policy \(denyCommands: rm\)/],
    ['denied command by basename', locked, step({ argv: ['/bin/rm', 'x'] }), false, /command \/bin\/rm is denied/],
    ['denied command by full path', locked, step({ argv: ['/usr/bin/dd', 'if=/dev/zero'] }), false, /denyCommands: \/usr\/bin\/dd/],
    ['denied command glob', locked, step({ argv: ['mkfs.ext4', '/dev/sdb'] }), false, /denyCommands: mkfs\*/],
    ['denied command behind sudo', locked, step({ argv: ['sudo', '-n', 'rm', 'x'] }), false, /command rm is denied/],
    ['denied command behind env and timeout', locked, step({ argv: ['env', 'A=1', 'timeout', '5', '/bin/rm', 'x'] }), false, /command \/bin\/rm is denied/],
    ['an argument named like a command is not a command', locked, step({ argv: ['echo', 'rm'] }), true, /allowed/],
    ['denyCommands applies to ad-hoc commands too', open, adhoc(['rm', 'x']), false, /command rm is denied/],
    ['scripts allowed by default', DEFAULT_LOCAL_POLICY, step({ argv: [], isScript: true, interpreter: ['/bin/sh'] }), true, /allowed/],
    ['script interpreter checked against denyCommands', local({ denyCommands: ['python*'] }), step({ argv: [], isScript: true, interpreter: ['/usr/bin/python3'] }), false, /command \/usr\/bin\/python3 is denied/],
    ['scripts refused when allowScripts is false', noScripts, step({ argv: [], isScript: true }), false, /script steps are not allowed on this host \(local policy allowScripts: false\)/],
    ['sh -c is a script by another name', noScripts, step({ argv: ['sh', '-c', 'reboot'] }), false, /sh -c runs a program given inline/],
    ['bash -ec too', noScripts, step({ argv: ['/bin/bash', '-ec', 'reboot'] }), false, /bash -ec runs a program given inline/],
    ['python3 -c behind sudo', noScripts, step({ argv: ['sudo', 'python3', '-c', 'print(1)'] }), false, /python3 -c runs/],
    ['node --eval', noScripts, step({ argv: ['node', '--eval', '1'] }), false, /node --eval runs/],
    ['a script file is not inline', noScripts, step({ argv: ['bash', '/opt/checks/disk.sh'] }), true, /allowed/],
  ])('%s', (_name, policy, s, allowed, reason) => {
    const r = checkLocalPolicy(policy, s);
    expect(r.allowed).toBe(allowed);
    expect(r.reason).toMatch(reason);
  });
});
