/**
 * N loopback "hosts" served by Debian's OpenSSH sshd: one sshd process per address
 * (127.0.0.2, 127.0.0.3, …) on one port, a dedicated unprivileged user made for the run (its home
 * in the run's temp dir, no password, not locked), key auth only with a generated Ed25519 key,
 * host keys, config and pid files in the temp dir. Also the client side: an ssh_config and a
 * known_hosts file that pdsh and Ansible share, so host keys are checked strictly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';

export interface BenchUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface SshHosts {
  readonly user: BenchUser;
  readonly addresses: readonly string[];
  readonly port: number;
  /** Client config for `ssh -F`: user, port, key, known_hosts, strict host key checking, batch mode. */
  readonly sshConfig: string;
  readonly keyFile: string;
  readonly sshdPids: readonly number[];
}

export const SSHD = '/usr/sbin/sshd';

function must(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || String(r.error ?? '')).trim()}`);
  return r.stdout;
}

/** The address of loopback host i (0-based): 127.0.0.2 upwards. */
export const hostAddress = (i: number): string => `127.0.0.${i + 2}`;

/** The processes owned by a uid (from /proc): the user's shells and sshd session children. */
export function pidsOfUid(uid: number): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) pids.push(Number(d));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Makes the run's user; the cleanup ends its processes (by pid) and deletes it. */
export async function createBenchUser(dir: string, cleanup: Cleanup): Promise<BenchUser> {
  const name = `hrvs${randomBytes(3).toString('hex')}`;
  const home = join(dir, 'home');
  // '*': no password can match, but the account is not locked: with UsePAM no, sshd refuses
  // even key logins to a locked ('!') account.
  must('useradd', ['--no-create-home', '--home-dir', home, '--shell', '/bin/bash', '--user-group', '--password', '*', '--comment', 'handrail vs-ssh benchmark (temporary)', name]);
  const uid = Number(must('id', ['-u', name]).trim());
  const gid = Number(must('id', ['-g', name]).trim());
  cleanup.add(`delete user ${name}`, async () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const pids = pidsOfUid(uid);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, attempt < 10 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    must('userdel', [name]);
  });
  await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  await chown(home, uid, gid);
  await chown(join(home, '.ssh'), uid, gid);
  await chmod(home, 0o700);
  return { name, uid, gid, home };
}

async function canListenOnAll(addresses: readonly string[], port: number): Promise<boolean> {
  const servers: Server[] = [];
  try {
    for (const a of addresses) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.listen(port, a, () => res());
      });
    }
    return true;
  } catch {
    return false;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(null)))));
  }
}

/** A port free on every address (the other helpers on this machine use ephemeral ports on 127.0.0.1). */
async function freePort(addresses: readonly string[]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListenOnAll(addresses, port)) return port;
  }
  throw new Error(`no port free on all of ${addresses[0]}…${addresses.at(-1)}`);
}

function waitListening(address: string, port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, address);
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd on ${address}:${port} did not start listening`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

export async function startSshHosts(o: { dir: string; count: number; user: BenchUser; cleanup: Cleanup }): Promise<SshHosts> {
  const { dir, count, user, cleanup } = o;
  const sshdDir = join(dir, 'sshd');
  const clientDir = join(dir, 'client');
  await mkdir(sshdDir, { mode: 0o700 });
  await mkdir(clientDir, { mode: 0o700 });
  const addresses = Array.from({ length: count }, (_, i) => hostAddress(i));

  // Keys: one host key shared by the "hosts" (they are clones), one client key for the user.
  must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vs-ssh host', '-f', join(sshdDir, 'host_ed25519')]);
  const keyFile = join(clientDir, 'id_ed25519');
  must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vs-ssh client', '-f', keyFile]);
  const authorized = join(user.home, '.ssh', 'authorized_keys');
  await writeFile(authorized, await readFile(keyFile + '.pub'), { mode: 0o600 });
  await chown(authorized, user.uid, user.gid);

  // sshd wants its privilege separation directory; make it only if this machine has none.
  if (!existsSync('/run/sshd')) {
    await mkdir('/run/sshd', { mode: 0o755 });
    cleanup.add('remove /run/sshd', () => void spawnSync('rmdir', ['/run/sshd']));
  }

  const port = await freePort(addresses);
  const config = join(sshdDir, 'sshd_config');
  await writeFile(
    config,
    [
      '# handrail bench/vs-ssh: loopback only (ListenAddress per instance), key auth only, one user',
      `Port ${port}`,
      `HostKey ${join(sshdDir, 'host_ed25519')}`,
      'AuthorizedKeysFile .ssh/authorized_keys',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'HostbasedAuthentication no',
      'PermitEmptyPasswords no',
      'UsePAM no',
      'StrictModes yes',
      'PermitRootLogin no',
      `AllowUsers ${user.name}`,
      'AllowTcpForwarding no',
      'AllowAgentForwarding no',
      'X11Forwarding no',
      'PermitTunnel no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      // Ansible's command module keeps a session per host; pdsh opens one connection per host.
      'MaxSessions 64',
      'MaxStartups 200:30:400',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  must(SSHD, ['-t', '-f', config, '-o', `ListenAddress=${addresses[0]}:${port}`]);

  const procs: ChildProcess[] = [];
  cleanup.add(`stop ${count} sshd`, async () => void (await Promise.all(procs.map(stop))));
  for (const [i, a] of addresses.entries()) {
    // -D: stays our child (its pid is ours to stop); detached: Ctrl-C reaches this script alone,
    // which then stops everything in order.
    const p = spawn(SSHD, ['-D', '-f', config, '-o', `ListenAddress=${a}:${port}`, '-o', `PidFile=${join(sshdDir, `sshd-${i}.pid`)}`, '-E', join(sshdDir, `sshd-${i}.log`)], { stdio: 'ignore', detached: true });
    procs.push(p);
  }
  const deadline = Date.now() + 30_000;
  await Promise.all(addresses.map((a) => waitListening(a, port, deadline)));

  const hostKey = (await readFile(join(sshdDir, 'host_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const knownHosts = join(clientDir, 'known_hosts');
  await writeFile(knownHosts, addresses.map((a) => `[${a}]:${port} ${hostKey}\n`).join(''), { mode: 0o600 });
  const sshConfig = join(clientDir, 'ssh_config');
  await writeFile(
    sshConfig,
    [
      'Host 127.0.0.*',
      `  User ${user.name}`,
      `  Port ${port}`,
      `  IdentityFile ${keyFile}`,
      '  IdentitiesOnly yes',
      '  IdentityAgent none',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  PasswordAuthentication no',
      '  ConnectTimeout 60',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  // One login proves the whole chain (user, StrictModes, keys, known_hosts) before timing anything.
  const probe = spawnSync('ssh', ['-F', sshConfig, addresses[0] as string, 'id -un'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.status !== 0 || probe.stdout.trim() !== user.name) throw new Error(`ssh to ${addresses[0]}:${port} as ${user.name} failed: ${probe.stderr.trim()}`);
  return { user, addresses, port, sshConfig, keyFile, sshdPids: procs.map((p) => p.pid as number) };
}
