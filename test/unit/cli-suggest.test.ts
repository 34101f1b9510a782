/**
 * The command line as people type it: "did you mean" for typos (edit distance), group help,
 * --version. Pure functions by table; main() in this process for the messages and exit codes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { editDistance, suggest } from '../../cli/suggest.js';
import { HANDRAIL_VERSION } from '../../core/version.js';
import { ROOT } from '../helpers/processes.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, now: Date.now });
  return { code, out, err };
}

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['ls', 'ls', 0],
    ['', 'abc', 3],
    ['execution', 'executions', 1],
    ['exectuions', 'executions', 1], // a swap of neighbours is one edit
    ['agent ls', 'agents ls', 1],
    ['kitten', 'sitting', 3],
    ['abc', 'cba', 2],
  ] as const)('%j -> %j is %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('suggest', () => {
  const commands = ['agents ls', 'agents revoke', 'executions ls', 'executions show', 'token ls', 'run', 'runbooks ls'];
  it.each([
    ['execution ls', commands, ['executions ls']],
    ['agent ls', commands, ['agents ls']],
    ['EXECUTIONS LS', commands, ['executions ls']],
    ['runn', commands, ['run']],
    ['lss', ['ls', 'show', 'cancel'], ['ls']],
    ['done', ['queued', 'running', 'succeeded', 'failed', 'canceled', 'timed_out'], []],
    ['fialed', ['queued', 'running', 'succeeded', 'failed', 'canceled', 'timed_out'], ['failed']],
    ['x', ['y', 'z'], []], // one letter for another is no typo
    ['zzzzzz', commands, []],
  ] as const)('%j among %j', (word, candidates, expected) => {
    expect(suggest(word, candidates)).toEqual(expected);
  });
});

describe('handrail COMMAND', () => {
  it('prints its version with --version (and `version`), equal to package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(HANDRAIL_VERSION).toBe(pkg.version);
    for (const args of [['--version'], ['version']]) expect(await cli(args)).toEqual({ code: 0, out: `handrail ${pkg.version}\n`, err: '' });
  });

  it('prints a group\'s commands for `GROUP --help` and `help GROUP`, exit 0', async () => {
    for (const args of [['executions', '--help'], ['executions', '-h'], ['help', 'executions']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/^Usage: handrail executions COMMAND/);
      for (const sub of ['ls', 'show', 'cancel', 'approve', 'deny']) expect(r.out).toContain(`executions ${sub}`);
      expect(r.err).toBe('');
    }
  });

  it('asks for a command of the group without one (exit 2), listing them', async () => {
    const r = await cli(['agents']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^handrail agents: give a command: ls, revoke\n/);
  });

  it.each([
    [['execution', 'ls'], 'handrail: unknown command "execution ls"; did you mean "handrail executions ls"?'],
    [['agent', 'ls'], 'handrail: unknown command "agent ls"; did you mean "handrail agents ls"?'],
    [['executions', 'lss'], 'handrail: unknown command "executions lss"; did you mean "handrail executions ls"?'],
    [['exectuions', 'show', 'exe-1'], 'handrail: unknown command "exectuions show"; did you mean "handrail executions show"?'],
    [['runbok', '--json'], 'handrail: unknown command "runbok"; did you mean "handrail runbooks"?'],
    [['frobnicate'], 'handrail: unknown command "frobnicate"'],
  ])('%j: one line saying what was meant, exit 2, no usage dump', async (args, first) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.split('\n')[0]).toBe(first);
    expect(r.err.split('\n').length).toBeLessThanOrEqual(3);
  });

  it('still prints the overview for --help (exit 0) and with no command at all (exit 2)', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('runbooks show');
    expect(help.out).toContain('--version');
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('Usage: handrail COMMAND');
  });
});
