/**
 * The contenders: how each tool runs `true` on the first N hosts, as its users run it, and how
 * a run is checked (every host answered, exit 0). Inventory files are written per N.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SshHosts } from './ssh-hosts.js';

export interface Invocation {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export interface Tool {
  readonly id: string;
  /** How the README names it. */
  readonly label: string;
  /** Run once untimed at each N before the timed rounds (opens ControlPersist masters). */
  readonly warm: boolean;
  invocation(n: number): Invocation;
  /** Null when the run is good, else what was wrong. */
  check(n: number, exitCode: number | null, stdout: string, stderr: string): string | null;
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

function exitProblem(exitCode: number | null, stderr: string): string | null {
  return exitCode === 0 ? null : `exit ${exitCode}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
}

export interface SshToolsSetup {
  readonly dir: string;
  readonly hosts: SshHosts;
  readonly sizes: readonly number[];
}

/** pdsh plain (a new SSH connection per host per run, as pdsh is used), and with warm ControlMaster connections. */
export async function sshTools(o: SshToolsSetup): Promise<Tool[]> {
  const { dir, hosts, sizes } = o;
  const inv = join(dir, 'inventory');
  const cmPdsh = join(dir, 'cm-pdsh');
  const cmAnsible = join(dir, 'cm-ansible');
  const ansibleHome = join(dir, 'ansible-home');
  await mkdir(inv, { recursive: true });
  await mkdir(cmPdsh, { mode: 0o700 });
  await mkdir(cmAnsible, { mode: 0o700 });
  await mkdir(join(ansibleHome, 'tmp'), { recursive: true, mode: 0o700 });
  for (const n of sizes) {
    const list = hosts.addresses.slice(0, n);
    await writeFile(join(inv, `pdsh-${n}`), list.join('\n') + '\n');
    await writeFile(
      join(inv, `ansible-${n}.ini`),
      ['[hosts]', ...list, '', '[hosts:vars]', `ansible_user=${hosts.user.name}`, `ansible_port=${hosts.port}`, `ansible_ssh_private_key_file=${hosts.keyFile}`, 'ansible_python_interpreter=/usr/bin/python3', ''].join('\n'),
    );
  }
  const ansibleCfg = join(dir, 'ansible.cfg');
  await writeFile(
    ansibleCfg,
    [
      '# handrail bench/vs-ssh: the fastest common Ansible settings (pipelining, warm ControlPersist, forks = N)',
      '[defaults]',
      'host_key_checking = True',
      'retry_files_enabled = False',
      'interpreter_python = /usr/bin/python3',
      `local_tmp = ${join(ansibleHome, 'tmp')}`,
      'deprecation_warnings = False',
      '[ssh_connection]',
      `ssh_args = -F ${hosts.sshConfig} -o ControlMaster=auto -o ControlPersist=30m`,
      `control_path_dir = ${cmAnsible}`,
      'control_path = %(directory)s/%%C',
      'pipelining = True',
      '',
    ].join('\n'),
  );
  const ansibleEnv = { ANSIBLE_CONFIG: ansibleCfg, HOME: ansibleHome, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0' };
  // pdsh's own ssh arguments stay ("-2 -a -x -l%u %h"); ours add the shared client config.
  const pdsh = (n: number, extra: string): Invocation => ({
    cmd: 'pdsh',
    args: ['-R', 'ssh', '-S', '-f', String(n), '-l', hosts.user.name, '-w', `^${join(inv, `pdsh-${n}`)}`, 'true'],
    env: { PDSH_SSH_ARGS_APPEND: `-F ${hosts.sshConfig}${extra}` },
  });
  const ansible = (n: number, module: string): Invocation => ({
    cmd: 'ansible',
    args: ['all', '-i', join(inv, `ansible-${n}.ini`), '-f', String(n), '-o', '-m', module, '-a', 'true'],
    env: ansibleEnv,
  });
  const checkPdsh = (_n: number, code: number | null, _out: string, err: string): string | null => exitProblem(code, err) ?? (err.trim() ? `stderr: ${err.trim().slice(0, 200)}` : null);
  const checkAnsible = (n: number, code: number | null, out: string, err: string): string | null => {
    const problem = exitProblem(code, err || out);
    if (problem) return problem;
    const ok = count(out, /^\S+ \| (CHANGED|SUCCESS) \| rc=0/gm);
    return ok === n ? null : `${ok} of ${n} hosts answered rc=0: ${out.slice(0, 300)}`;
  };
  return [
    { id: 'pdsh', label: 'pdsh -R ssh', warm: false, invocation: (n) => pdsh(n, ''), check: checkPdsh },
    {
      id: 'pdsh-cm',
      label: 'pdsh -R ssh, warm ControlMaster',
      warm: true,
      invocation: (n) => pdsh(n, ` -o ControlMaster=auto -o ControlPath=${cmPdsh}/%C -o ControlPersist=30m`),
      check: checkPdsh,
    },
    { id: 'ansible-raw', label: 'ansible -m raw (warm ControlPersist, pipelining)', warm: true, invocation: (n) => ansible(n, 'raw'), check: checkAnsible },
    { id: 'ansible-command', label: 'ansible -m command (warm ControlPersist, pipelining)', warm: true, invocation: (n) => ansible(n, 'command'), check: checkAnsible },
  ];
}

/** `handrail run RUNBOOK --targets inN=yes --follow`, as a user types it (HANDRAIL_SERVER/HANDRAIL_TOKEN in the environment). */
export function handrailTool(o: { cli: string; runbook: string; server: string; token: string; nodeArgs?: readonly string[] }): Tool {
  return {
    id: 'handrail',
    label: 'handrail run --follow',
    warm: true,
    invocation: (n) => ({
      cmd: process.execPath,
      args: [...(o.nodeArgs ?? []), o.cli, 'run', o.runbook, '--targets', `in${n}=yes`, '--follow'],
      env: { HANDRAIL_SERVER: o.server, HANDRAIL_TOKEN: o.token },
    }),
    check(n, code, out, err) {
      const problem = exitProblem(code, err);
      if (problem) return problem;
      // One "[host] succeeded" line per node; the last line says the execution succeeded.
      const nodes = count(err, /^\[[^\]]+\] succeeded$/gm);
      if (nodes !== n) return `${nodes} of ${n} nodes succeeded`;
      return /succeeded\s*$/.test(out) ? null : `last line: ${out.trim().split('\n').at(-1) ?? ''}`;
    },
  };
}

/** Where ControlPersist masters keep their sockets, to close them at the end (`ssh -O exit`). */
export const controlDirs = (dir: string): string[] => [join(dir, 'cm-pdsh'), join(dir, 'cm-ansible')];
