/**
 * Handrail's side of the race: a real coordinator process (bench/harness.ts) with its own data
 * dir and a one-step runbook (argv ["true"]) in its own runbooks dir, and real agent processes
 * (`handrail agent`, --lite-mode as shipped) run as the race's unprivileged user, as the sshd
 * sessions are. Agents enroll in batches (each makes an RSA key first, which a 2-core machine
 * feels) and carry labels inN=yes for every N they are among the first N of.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { CLI, sleep, startBench, type Bench } from '../harness.js';
import type { Cleanup } from './cleanup.js';
import type { BenchUser } from './ssh-hosts.js';

export const RUNBOOK_ID = 'vs-ssh-true';

const RUNBOOK = `apiVersion: handrail/v1
kind: Runbook
metadata:
  id: ${RUNBOOK_ID}
  title: Run true on the selected hosts (bench/vs-ssh)
  owner: bench
spec:
  targets:
    selector: bench=true
  strategy: parallel
  concurrency: 100%
  steps:
    - name: "true"
      run: ["true"]
      timeout: 1m
`;

const POLICY = `apiVersion: handrail/v1
kind: Policy
metadata:
  name: vs-ssh
spec:
  rules:
    - name: bench-admins
      effect: allow
      actions: ["*"]
      subjects: [group:admins]
`;

export interface HandrailFleet {
  readonly bench: Bench;
  readonly agents: ChildProcess[];
  /** Starts agents until `n` are online; returns how long the new ones took. */
  grow(n: number): Promise<{ started: number; seconds: number }>;
}

const hostName = (i: number): string => `host-${String(i + 1).padStart(3, '0')}`;

export async function startHandrailFleet(o: { dir: string; user: BenchUser; sizes: readonly number[]; batch: number; cleanup: Cleanup; log: (s: string) => void }): Promise<HandrailFleet> {
  const { dir, user, sizes, cleanup } = o;
  const runbooks = join(dir, 'runbooks');
  await mkdir(runbooks);
  await writeFile(join(runbooks, `${RUNBOOK_ID}.yaml`), RUNBOOK);
  await writeFile(join(runbooks, 'policy.yaml'), POLICY);
  const max = Math.max(...sizes);
  const bench = await startBench({ bootstrapUses: max + 10, logLevel: 'warn', coordinatorArgs: ['--runbooks-dir', runbooks] });
  cleanup.add('remove the coordinator data dir', () => rm(bench.dir, { recursive: true, force: true }));
  cleanup.add('stop the coordinator', () => stopProcess(bench.coord));
  // The agents run as the race's user: the CA certificate must be readable by it.
  const ca = join(dir, 'ca.pem');
  await copyFile(join(bench.certsDir, 'ca.pem'), ca);
  const agentLog = openSync(join(dir, 'agents.log'), 'a');
  const agents: ChildProcess[] = [];
  cleanup.add(`stop the agents`, async () => {
    await Promise.all(agents.map(stopProcess));
    closeSync(agentLog);
  });

  const online = async (): Promise<number> => {
    const { agents: list } = await bench.api<{ agents: Array<{ name: string; status: string }> }>('GET', '/api/v1/agents');
    return list.filter((a) => a.name.startsWith('host-') && a.status === 'online').length;
  };

  return {
    bench,
    agents,
    async grow(n) {
      const t0 = performance.now();
      const from = agents.length;
      while (agents.length < n) {
        const upTo = Math.min(n, agents.length + o.batch);
        for (let i = agents.length; i < upTo; i++) {
          const labels = sizes.filter((s) => i < s).map((s) => `in${s}=yes`).join(',');
          const args = [
            ...AGENT_NODE_FLAGS, CLI, 'agent', '--coordinator', bench.address, '--token', bench.bootstrap, '--ca', ca, '--state-dir', join(user.home, 'agents', hostName(i)), '--name', hostName(i),
            '--labels', labels, '--log-level', 'warn', '--stop-grace', '2s', '--stop-on-stdin-close',
          ];
          // stdin a pipe: if this script dies, the agents see it close and stop.
          agents.push(spawn(process.execPath, args, { uid: user.uid, gid: user.gid, cwd: user.home, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: user.home }, stdio: ['pipe', 'ignore', agentLog], detached: true }));
        }
        const deadline = Date.now() + 180_000;
        while ((await online()) < upTo) {
          const dead = agents.find((a) => a.exitCode !== null);
          if (dead) throw new Error(`agent ${agents.indexOf(dead) + 1} exited ${dead.exitCode} (see ${join(dir, 'agents.log')})`);
          if (Date.now() > deadline) throw new Error(`only ${await online()} of ${upTo} agents came online in 180 s (see ${join(dir, 'agents.log')})`);
          await sleep(200);
        }
      }
      return { started: agents.length - from, seconds: (performance.now() - t0) / 1000 };
    },
  };
}

export function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}
