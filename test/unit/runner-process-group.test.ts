/**
 * agent/process-group.ts: /proc/PID/stat parsing, and group liveness that does not count
 * zombies (this machine's init does not reap reparented grandchildren promptly).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { groupHasLiveMembers, parseStat, signalGroup } from '../../agent/process-group.js';
import { BACKSTOP_MS } from '../helpers/processes.js';
import { isRunning, waitUntil } from '../helpers/runner-sink.js';

describe('parseStat', () => {
  it.each([
    ['123 (sleep) S 1 123 123 0 -1', { state: 'S', pgrp: 123 }],
    ['77 (a) b (c) Z 1 42 42 0', { state: 'Z', pgrp: 42 }],
    ['9 (with space) R 8 9000 9 0', { state: 'R', pgrp: 9000 }],
    ['garbage', undefined],
    ['', undefined],
  ])('%j', (line, expected) => {
    expect(parseStat(line)).toEqual(expected);
  });
});

/** The pids whose process group is `pgid`, read from /proc. */
async function groupMembers(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const stat = parseStat(await readFile(`/proc/${name}/stat`, 'latin1').catch(() => ''));
    if (stat?.pgrp === pgid) pids.push(Number(name));
  }
  return pids;
}

describe('group signals and liveness', () => {
  it('refuses to signal group 0 or 1 (our own group, init)', () => {
    expect(signalGroup(0, 0)).toBe(false);
    expect(signalGroup(1, 0)).toBe(false);
    expect(signalGroup(-5, 0)).toBe(false);
  });

  it('a group of running processes is live; once they are dead (zombies or reaped) it is not', async () => {
    const child = spawn('sh', ['-c', 'sleep 100 & echo $!; sleep 100'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const [first] = (await once(child.stdout, 'data')) as [Buffer];
    const pgid = child.pid ?? 0;
    const background = Number(first.toString().trim());
    // The background sleep is in the shell's group (pids may wrap: compare groups, not numbers).
    expect(parseStat(await readFile(`/proc/${background}/stat`, 'latin1'))?.pgrp).toBe(pgid);
    expect(await groupHasLiveMembers(pgid)).toBe(true);
    // Every member: the shell, the background sleep and the foreground one (dash does not exec it).
    const members = await groupMembers(pgid);
    expect(members).toContain(background);
    expect(members.length).toBeGreaterThanOrEqual(2);

    const exited = once(child, 'exit');
    expect(signalGroup(pgid, 'SIGKILL')).toBe(true);
    await exited;
    // kill() only queues the signal: each member dies when it is next scheduled, which on a loaded
    // machine can be after the shell's exit is reported. Wait until every member is dead (they may
    // linger as unreaped zombies that kill(-pgid, 0) still finds), then ask about the group.
    await waitUntil(() => members.every((pid) => !isRunning(pid)), BACKSTOP_MS, 'every member of the group to die');
    expect(await groupHasLiveMembers(pgid)).toBe(false);
  });
});
