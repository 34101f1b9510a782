/**
 * What the race needs from Debian, installed with apt-get when missing: OpenSSH's server (and
 * client), pdsh and ansible-core (the engine that provides the `ansible` command; the full
 * `ansible` package adds only collections the race does not use). Says how long it took.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Needed {
  /** A command (or absolute path) that is there once the package is. */
  readonly command: string;
  readonly pkg: string;
}

export const NEEDED: readonly Needed[] = [
  { command: '/usr/sbin/sshd', pkg: 'openssh-server' },
  { command: 'ssh', pkg: 'openssh-client' },
  { command: 'ssh-keygen', pkg: 'openssh-client' },
  { command: 'pdsh', pkg: 'pdsh' },
  { command: 'ansible', pkg: 'ansible-core' },
];

function present(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
}

function aptGet(args: readonly string[]): { ok: boolean; tail: string } {
  // Another apt run on this machine holds the lock for a while: wait for it instead of failing.
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return { ok: r.status === 0, tail: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n') };
}

/** Installs the missing packages; returns what it installed and how long it took (0 when nothing was missing). */
export function installMissing(needed: readonly Needed[] = NEEDED): { installed: string[]; seconds: number } {
  const pkgs = [...new Set(needed.filter((n) => !present(n.command)).map((n) => n.pkg))];
  if (pkgs.length === 0) return { installed: [], seconds: 0 };
  const t0 = performance.now();
  // No recommends: xauth, ncurses-term and the like are not needed for `ssh host true`.
  let r = aptGet(['install', '-y', '--no-install-recommends', ...pkgs]);
  if (!r.ok) {
    // Stale or missing package lists: refresh once and retry.
    aptGet(['update']);
    r = aptGet(['install', '-y', '--no-install-recommends', ...pkgs]);
  }
  if (!r.ok) throw new Error(`apt-get install ${pkgs.join(' ')} failed (run it by hand to see why):\n${r.tail}`);
  const still = needed.filter((n) => !present(n.command)).map((n) => n.command);
  if (still.length) throw new Error(`after apt-get install ${pkgs.join(' ')}, still missing: ${still.join(', ')}`);
  return { installed: pkgs, seconds: (performance.now() - t0) / 1000 };
}

/** The installed Debian version of a package, or "?" */
export function debVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout.trim() : '?';
}
