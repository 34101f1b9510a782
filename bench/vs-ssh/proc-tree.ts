/**
 * CPU time of everything a race run involves, on both sides of the wire, from /proc: this
 * process's reaped children (the CLI, pdsh and its ssh clients, ansible and its workers), every
 * live descendant (sshd listeners and their connection processes, the coordinator, the agents,
 * and through their reaped children the shells and `true` processes) and every process whose
 * command line names the run's temp dir (ssh ControlPersist masters, which detach and leave the
 * tree). Other helpers' load on the shared machine does not count, unlike wall time.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface Stat {
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly own: number;
  /** cutime + cstime (children already reaped), in clock ticks. */
  readonly reaped: number;
}

const TICK_MS = 10; // CLK_TCK is 100 on Linux

function readStat(pid: string): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Milliseconds of CPU used so far by the processes of this run (see the module comment). */
export function runCpuMs(marker: string): number {
  const stats = new Map<number, Stat>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (st) stats.set(Number(d), st);
  }
  const self = process.pid;
  const inRun = new Map<number, boolean>();
  const member = (pid: number): boolean => {
    const known = inRun.get(pid);
    if (known !== undefined) return known;
    inRun.set(pid, false); // guards against a cycle while /proc changes under us
    const st = stats.get(pid);
    const yes = pid === self || (st !== undefined && st.ppid > 1 && member(st.ppid)) || cmdline(pid).includes(marker);
    inRun.set(pid, yes);
    return yes;
  };
  let ticks = 0;
  for (const [pid, st] of stats) {
    if (!member(pid)) continue;
    // This script's own work (timing, reading /proc) is not part of any tool's run.
    ticks += pid === self ? st.reaped : st.own + st.reaped;
  }
  return ticks * TICK_MS;
}

/** One process's CPU so far, its own and its reaped children's (the `true` an agent spawned), in ms. */
export function pidCpuMs(pid: number, which: 'own+reaped' | 'reaped' = 'own+reaped'): number {
  const st = readStat(String(pid));
  if (!st) return 0;
  return (which === 'reaped' ? st.reaped : st.own + st.reaped) * TICK_MS;
}

/** Processes whose command line names `marker` (the run's unique temp dir), other than this one. */
export function pidsNaming(marker: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => pid !== process.pid && cmdline(pid).includes(marker));
}
