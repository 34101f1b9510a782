/**
 * Signals and liveness checks for a step's process group (the step's main process leads it,
 * spawned with `detached: true`). Killing the group rather than the pid is what reaches the
 * grandchildren a shell or a service script leaves behind.
 */
import { readFile, readdir } from 'node:fs/promises';

/**
 * Sends `signal` to every process in group `pgid` (0 only probes); false when the group has
 * no members left.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  // A pgid of 0 or 1 would address our own group or init's: never a step's group.
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // ESRCH: nothing left in the group. EPERM: a member changed uid (setuid binary); nothing we can do.
    return false;
  }
}

/**
 * True while some process of group `pgid` is still running. A zombie does not count: a killed
 * grandchild is reparented to init, and an init that does not reap (common in containers and
 * micro-VMs) would otherwise make the group look alive for as long as the host is up.
 */
export async function groupHasLiveMembers(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  let pids: string[];
  try {
    pids = await readdir('/proc');
  } catch {
    // No procfs (macOS): the kill(-pgid, 0) above is the best answer we have.
    return true;
  }
  for (const name of pids) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'latin1').catch(() => '');
    const member = parseStat(stat);
    if (member && member.pgrp === pgid && member.state !== 'Z' && member.state !== 'X') return true;
  }
  return false;
}

/** Fields of /proc/PID/stat after the command name, which may itself hold spaces and parentheses. */
export function parseStat(line: string): { state: string; pgrp: number } | undefined {
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = line.slice(close + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  if (!state || !Number.isInteger(pgrp)) return undefined;
  return { state, pgrp };
}
