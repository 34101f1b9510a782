/**
 * Private keys stay out of git: this repository ignores every state directory its commands and
 * the demo make, and `ca init` (like a coordinator's first start and an agent's enrollment)
 * refuses to write a key into a work tree where git would not ignore it.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findWorkTree, keyPlacement, type IgnoreAnswer } from '../../cli/git-guard.js';
import { main } from '../../cli/main.js';
import { ROOT } from '../helpers/processes.js';

describe('findWorkTree', () => {
  const trees = new Set(['/srv/repo', '/srv/repo/vendor/sub', '/home/u']);
  it.each([
    ['/srv/repo/certs', '/srv/repo'],
    ['/srv/repo', '/srv/repo'],
    ['/srv/repo/a/b/c', '/srv/repo'],
    ['/srv/repo/vendor/sub/keys', '/srv/repo/vendor/sub'],
    ['/srv/other/certs', null],
    ['/home/u/agent-state', '/home/u'],
    ['/', null],
    ['/srv/repo/../other', null],
  ])('%s is in %s', (path, tree) => {
    expect(findWorkTree(path, (dir) => trees.has(dir))).toBe(tree);
  });
});

describe('keyPlacement', () => {
  const file = '/srv/repo/certs/ca.key';
  it.each([
    [null, 'not_ignored', false, true],
    ['/srv/repo', 'ignored', false, true],
    ['/srv/repo', 'not_ignored', false, false],
    ['/srv/repo', 'unknown', false, false],
    ['/srv/repo', 'not_ignored', true, true],
    ['/srv/repo', 'unknown', true, true],
  ] as Array<[string | null, IgnoreAnswer, boolean, boolean]>)('work tree %s, git says %s, allowed %s: ok %s', (workTree, ignore, allow, ok) => {
    const v = keyPlacement({ file, workTree, ignore, allow });
    expect(v.ok).toBe(ok);
    if (!v.ok) {
      expect(v.message).toContain(`refusing to write the private key ${file}: it is inside the git work tree /srv/repo`);
      expect(v.message).toContain(ignore === 'unknown' ? 'git could not say whether it is ignored' : 'git does not ignore it');
      expect(v.hint).toContain('--allow-keys-in-git');
    }
  });
});

describe('this repository', () => {
  it.each([
    'demo/certs/ca.key',
    'demo/certs/server.key',
    'demo/data/keys/dispatch/k.key',
    'demo/agents/web-1/identity/agent.pem',
    'demo/api-tokens.json',
    'agent-state/identity/agent.pem',
    'data/keys/audit/k.key',
    'certs/ca.key',
    'certs/server.key',
    '.bench/fleet.json',
  ])('ignores %s', (path) => {
    // exit 0: ignored (check-ignore exits 1 for a path git would add)
    expect(() => execFileSync('git', ['-C', ROOT, 'check-ignore', '-q', '--', path])).not.toThrow();
  });
});

describe('ca init in a git work tree', () => {
  let repo: string;
  beforeAll(async () => {
    repo = await mkdtemp(join(tmpdir(), 'hr-git-guard-'));
    execFileSync('git', ['init', '-q', repo]);
    await writeFile(join(repo, '.gitignore'), '/ignored/\n');
    await mkdir(join(repo, 'sub'));
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await main(['ca', 'init', ...args], { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, now: Date.now });
    return { code, out, err };
  };

  it('refuses a directory git would not ignore, and writes nothing', async () => {
    const certs = join(repo, 'sub', 'certs');
    const r = await run(['--certs-dir', certs]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`refusing to write the private key ${join(certs, 'ca.key')}: it is inside the git work tree ${repo} and git does not ignore it`);
    expect(r.err).toContain('--allow-keys-in-git');
    expect(execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=all']).toString()).toBe('?? .gitignore\n');
  });

  it('writes where git ignores the path', async () => {
    const r = await run(['--certs-dir', join(repo, 'ignored', 'certs')]);
    expect(r.code, r.err).toBe(0);
    expect(execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=all']).toString()).toBe('?? .gitignore\n');
  });

  it('writes anywhere with --allow-keys-in-git', async () => {
    const r = await run(['--certs-dir', join(repo, 'sub', 'forced'), '--allow-keys-in-git']);
    expect(r.code, r.err).toBe(0);
    expect(execFileSync('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=all']).toString()).toContain('sub/forced/ca.key');
  });
});
