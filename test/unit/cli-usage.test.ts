/**
 * Bad usage exits 2 and says what to type: option values outside their choices (from a flag,
 * the environment or a config file), a missing API token, a --server without a scheme. And
 * what admin commands print: `token ls` states, `runbooks lint` summaries and YAML hints.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { loadConfigParser, mayReadConfigFile, parseCommand, UsageError, type CommandSpec } from '../../cli/options.js';
import { tokenState } from '../../cli/commands/token.js';
import { openDataDir } from '../../coordinator/data-dir.js';
import { ROOT } from '../helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-cli-usage-'));
  await loadConfigParser();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, now = Date.now()): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => void (out += t), err: (t) => void (err += t), env, now: () => now });
  return { code, out, err };
}

describe('options with choices', () => {
  const spec: CommandSpec = {
    name: 'test cmd',
    usage: 'test cmd',
    summary: 'A test.',
    options: {
      state: { type: 'string', env: 'T_STATE', configKey: 'state', choices: ['queued', 'running', 'failed'], description: 'a state' },
      kind: { type: 'string', multiple: true, choices: ['a', 'b'], description: 'kinds' },
      level: { type: 'string', default: 'info', choices: ['info', 'warn'], description: 'a level' },
    },
  };
  const usage = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
    try {
      parseCommand(spec, argv, env);
    } catch (e) {
      if (e instanceof UsageError) return e.message;
      throw e;
    }
    return 'ok';
  };

  it.each([
    [['--state', 'running'], {}, 'ok'],
    [[], {}, 'ok'],
    [['--state', 'done'], {}, '--state "done" is not valid: expected one of queued, running, failed'],
    [['--state', 'fialed'], {}, '--state "fialed" is not valid: expected one of queued, running, failed (did you mean "failed"?)'],
    [[], { T_STATE: 'done' }, 'T_STATE "done" is not valid: expected one of queued, running, failed'],
    [['--kind', 'a', '--kind', 'c'], {}, '--kind "c" is not valid: expected one of a, b'],
    [['--help', '--state', 'done'], {}, 'ok'],
  ])('%j %j: %s', (argv, env, expected) => {
    expect(usage(argv, env)).toBe(expected);
  });

  it('checks a config file value too, naming the file and key', async () => {
    const file = join(dir, 'cfg.yaml');
    await writeFile(file, 'state: done\n');
    expect(usage(['--config', file])).toBe(`${file}: state "done" is not valid: expected one of queued, running, failed`);
  });

  it('lists the choices in --help', async () => {
    const r = await cli(['policy', 'explain', '--help']);
    expect(r.out).toMatch(/--action ACTION\s+the action to decide \(one of run, view, approve, cancel, admin; default run\)/);
  });

  it('is used by the commands: a bad --action or --log-level exits 2 with the choices', async () => {
    const a = await cli(['policy', 'explain', '--user', 'alice', '--action', 'execute', '--runbooks-dir', join(ROOT, 'runbooks')]);
    expect(a.code).toBe(2);
    expect(a.err).toContain('--action "execute" is not valid: expected one of run, view, approve, cancel, admin');
    const l = await cli(['coordinator', '--log-level', 'verbose']);
    expect(l.code).toBe(2);
    expect(l.err).toContain('--log-level "verbose" is not valid: expected one of trace, debug, info, warn, error, fatal, silent');
  });
});

describe('talking to the API without what it needs', () => {
  it('a missing token is bad usage (exit 2) that says what to pass', async () => {
    const r = await cli(['runbooks', 'ls']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('handrail runbooks ls: no API token: pass --token TOKEN or set HANDRAIL_TOKEN=TOKEN\n  an admin issues one on the coordinator host with `handrail user token YOUR_NAME`\n');
  });

  it.each(['localhost:8080', '127.0.0.1:8080', 'ftp://host/x', 'http://'])('a --server of %j is bad usage (exit 2) with the URL to type', async (server) => {
    const r = await cli(['runbooks', 'ls', '--token', 'hru_x'], { HANDRAIL_SERVER: server });
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--server "${server}" is not an http(s) URL`);
    expect(r.err).toMatch(/give the scheme, e.g. --server http:\/\//);
  });
});

describe('token ls', () => {
  it.each([
    [{ revokedAt: null, expiresAt: 2_000, uses: 0, usesAllowed: 1 }, 1_000, 'active'],
    [{ revokedAt: null, expiresAt: 2_000, uses: 0, usesAllowed: 1 }, 3_000, 'expired'],
    [{ revokedAt: null, expiresAt: 2_000, uses: 1, usesAllowed: 1 }, 1_000, 'used'],
    [{ revokedAt: null, expiresAt: 2_000, uses: 1, usesAllowed: 1 }, 3_000, 'used'],
    [{ revokedAt: null, expiresAt: 2_000, uses: 1, usesAllowed: 3 }, 3_000, 'expired'],
    [{ revokedAt: 500, expiresAt: 2_000, uses: 1, usesAllowed: 1 }, 3_000, 'revoked'],
  ])('%j at %i is %s', (t, now, state) => {
    expect(tokenState(t, now)).toBe(state);
  });

  it('shows a spent single-use token as used, also after its expiry', async () => {
    const dataDir = join(dir, 'data');
    const now = Date.now();
    const data = await openDataDir(dataDir, () => now);
    let id: string;
    try {
      const t = await data.tokens.create({ labels: {}, ttlMs: 60_000, uses: 1, namePattern: null, description: null, createdBy: 'test' }, now);
      id = t.id;
      const spent = await data.db.write((tx) => data.tokens.consume(tx, t.token, 'web-1', now));
      expect(spent.ok).toBe(true);
    } finally {
      await data.close();
    }
    const r = await cli(['token', 'ls', '--json', '--data-dir', dataDir], {}, now + 3_600_000);
    expect(r.code, r.err).toBe(0);
    expect((JSON.parse(r.out) as { tokens: Array<{ id: string; state: string }> }).tokens).toEqual([expect.objectContaining({ id, state: 'used' })]);
  });
});

describe('runbooks lint', () => {
  it('prints the summary apart from the last problem, and tells a newcomer to quote a YAML boolean', async () => {
    const rb = join(dir, 'rb');
    await (await import('node:fs/promises')).mkdir(rb);
    await writeFile(
      join(rb, 'a.yaml'),
      ['apiVersion: handrail/v1', 'kind: Runbook', 'metadata:', '  id: x', '  title: X', '  owner: t', 'spec:', '  targets: { selector: role=web }', '  steps:', '    - name: true', '      run: [echo]', ''].join('\n'),
    );
    const r = await cli(['runbooks', 'lint', rb]);
    expect(r.code).toBe(1);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/a\.yaml:10:7 "name" must be a string: YAML reads an unquoted true as a boolean; quote it to keep it text \(name: "true"\)$/);
    expect(lines.slice(1)).toEqual(['', '0 runbook(s), 0 policies, 1 problem(s)', '']);
  });

  it('says so when there is nothing wrong', async () => {
    const r = await cli(['runbooks', 'lint', join(ROOT, 'runbooks')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\d+ runbook\(s\), 1 policy, no problems\n$/);
  });
});

describe('option typos and missing values', () => {
  it('says which option was meant, or what value an option needs, on one line, exit 2', async () => {
    const typo = await cli(['coordinator', '--data-dirr', 'x']);
    expect(typo.code).toBe(2);
    expect(typo.err).toBe('handrail coordinator: unknown option --data-dirr; did you mean --data-dir?\n  see `handrail coordinator --help`\n');
    const missing = await cli(['run', 'x', '--opt']);
    expect(missing.code).toBe(2);
    expect(missing.err.split('\n')[0]).toBe('handrail run: --opt needs a value: --opt NAME=VALUE');
    const valued = await cli(['runbooks', 'lint', '--json=yes']);
    expect(valued.code).toBe(2);
    expect(valued.err.split('\n')[0]).toBe('handrail runbooks lint: --json is a switch and takes no value: write --json alone');
  });
});

describe('run --opt', () => {
  it.each([
    { opt: 'reason', line: 'handrail run: --opt "reason" must look like NAME=VALUE, e.g. --opt reason=VALUE (see the runbook\'s options: handrail runbooks show RUNBOOK)' },
    { opt: '=x', line: 'handrail run: --opt "=x" must look like NAME=VALUE, e.g. --opt reason="disk full" (see the runbook\'s options: handrail runbooks show RUNBOOK)' },
  ])('--opt $opt says what to type', async ({ opt, line }) => {
    const r = await cli(['run', 'restart-web', '--opt', opt, '--token', 't']);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(line);
  });
});

describe('when the CLI loads the YAML parser (only when a config file may be read)', () => {
  it.each([
    [['run', 'rb', '--follow'], {}, false],
    [['--config', 'f.yaml'], {}, true],
    [['--config=f.yaml', '--follow'], {}, true],
    [['--follow'], { HANDRAIL_CONFIG: 'f.yaml' }, true],
    [['--follow'], { HANDRAIL_CONFIG: '' }, false],
    [['--configure'], {}, false],
  ] as const)('%j with env %j: %s', (argv, env, expected) => {
    expect(mayReadConfigFile(argv, env)).toBe(expected);
  });

  it('reads a config file given to a command through main()', async () => {
    const file = join(dir, 'run-config.yaml');
    await writeFile(file, 'server: ftp://nope\n');
    const r = await cli(['run', 'rb', '--config', file], { HANDRAIL_TOKEN: 'x' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('ftp://nope');
  });
});
