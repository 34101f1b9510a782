/**
 * Private keys do not belong in a git work tree: `ca init`, a coordinator's first start and an
 * agent's enrollment refuse to write one inside a work tree unless git ignores that path (the
 * demo's ./demo and a clone's ./data, ./certs/* are), or unless told to with
 * --allow-keys-in-git. Without git installed, "ignored" cannot be checked, so any path in a
 * work tree is refused. The decision is pure (table-tested in test/unit/cli-git-guard.test.ts);
 * the walk and `git check-ignore` are the thin I/O around it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { UsageError, type OptionSpec } from './options.js';

export const ALLOW_KEYS_IN_GIT: OptionSpec = {
  type: 'boolean',
  env: 'HANDRAIL_ALLOW_KEYS_IN_GIT',
  configKey: 'allowKeysInGit',
  description: 'write private keys inside a git work tree even where git does not ignore them',
};

/**
 * The work tree `path` lies in: the nearest of it and its parents holding a `.git` entry (a
 * directory, or the file a linked work tree or submodule has). null outside any.
 */
export function findWorkTree(path: string, hasGitEntry: (dir: string) => boolean): string | null {
  let dir = resolve(path);
  for (;;) {
    if (hasGitEntry(dir)) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** What `git check-ignore` said about a path: ignored, not ignored, or no answer (no git, broken repo). */
export type IgnoreAnswer = 'ignored' | 'not_ignored' | 'unknown';

export type KeyPlacement = { readonly ok: true } | { readonly ok: false; readonly message: string; readonly hint: string };

export function keyPlacement(input: { readonly file: string; readonly workTree: string | null; readonly ignore: IgnoreAnswer; readonly allow: boolean }): KeyPlacement {
  if (input.workTree === null || input.allow || input.ignore === 'ignored') return { ok: true };
  const why = input.ignore === 'unknown' ? 'and git could not say whether it is ignored (is git installed?)' : 'and git does not ignore it';
  return {
    ok: false,
    message: `refusing to write the private key ${input.file}: it is inside the git work tree ${input.workTree} ${why}, so it could be committed`,
    hint: `choose a directory outside ${input.workTree}, add it to ${join(input.workTree, '.gitignore')}, or pass --allow-keys-in-git`,
  };
}

/** `git check-ignore` for one path inside a work tree. */
function checkIgnore(workTree: string, file: string): Promise<IgnoreAnswer> {
  return new Promise((done) => {
    execFile('git', ['-C', workTree, 'check-ignore', '-q', '--', relative(workTree, file)], { timeout: 10_000 }, (err) => {
      if (!err) return done('ignored');
      const code = (err as { code?: unknown }).code;
      done(code === 1 ? 'not_ignored' : 'unknown');
    });
  });
}

/** Throws a usage error if any of `files` (private keys about to be written) would land unprotected in a work tree. */
export async function refuseKeysInWorkTree(files: readonly string[], allow: boolean): Promise<void> {
  if (allow) return;
  for (const f of files) {
    const file = resolve(f);
    const workTree = findWorkTree(dirname(file), (dir) => existsSync(join(dir, '.git')));
    if (workTree === null) continue;
    const verdict = keyPlacement({ file, workTree, ignore: await checkIgnore(workTree, file), allow });
    if (!verdict.ok) throw new UsageError(verdict.message, verdict.hint);
  }
}
