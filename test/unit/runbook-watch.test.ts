/**
 * coordinator/runbooks/watch.ts with real file-system events and a fake clock for its timers
 * (debounce, retry), so "one call for a burst" and "no call after stop" do not depend on how
 * fast this machine writes files or runs timers.
 */
import { watch } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchDirectory } from '../../coordinator/runbooks/watch.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'hr-watch-'));
  // Only the watcher's own timers are fake; file-system events and setImmediate stay real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(root, { recursive: true, force: true });
});

/**
 * Resolves once every file-system event caused before the call has been handed to its watcher.
 * All fs.watch handles of this process read one inotify queue, in order: when an event for a
 * file written now arrives, the events queued before it have been delivered. (setImmediate
 * lets the rest of that same batch of events be handled too.)
 */
async function fsEventsDelivered(): Promise<void> {
  const dir = join(root, `barrier-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  const seen = new Promise<void>((resolve) => {
    const w = watch(dir, () => {
      w.close();
      resolve();
    });
  });
  await writeFile(join(dir, 'sentinel'), '');
  await seen;
  await new Promise((r) => setImmediate(r));
}

describe('watching the runbooks directory', () => {
  it('calls back once for a burst of changes, including in subdirectories', async () => {
    const dir = join(root, 'runbooks');
    await mkdir(join(dir, 'team'), { recursive: true });
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 300 });
    try {
      for (let i = 0; i < 5; i++) await writeFile(join(dir, 'team', `r${i}.yaml`), 'kind: Runbook\n');
      await fsEventsDelivered();
      // However long the writes took, no watcher time has passed: the whole burst is one debounce.
      expect(calls).toBe(0);
      vi.advanceTimersByTime(300);
      expect(calls).toBe(1);
      vi.advanceTimersByTime(60_000);
      expect(calls).toBe(1);
    } finally {
      stop();
    }
  });

  it('starts watching a directory that appears later, and reports it', async () => {
    const dir = join(root, 'runbooks');
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 20, retryMs: 50 });
    try {
      vi.advanceTimersByTime(120); // two retries find nothing
      expect(calls).toBe(0);
      await mkdir(dir);
      vi.advanceTimersByTime(50); // the next retry finds it and reports what it may have missed
      vi.advanceTimersByTime(20);
      expect(calls).toBe(1);
      await writeFile(join(dir, 'a.yaml'), 'kind: Runbook\n');
      await fsEventsDelivered();
      vi.advanceTimersByTime(20);
      expect(calls).toBe(2);
    } finally {
      stop();
    }
  });

  it('does not call back after it is stopped', async () => {
    const dir = join(root, 'runbooks');
    await mkdir(dir);
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 50 });
    await writeFile(join(dir, 'a.yaml'), 'x: 1\n');
    stop();
    await fsEventsDelivered();
    vi.advanceTimersByTime(60_000);
    expect(calls).toBe(0);
  });
});
