import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { watchDirectory } from '../../coordinator/runbooks/watch.js';

const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('watching the runbooks directory', () => {
  it('calls back once for a burst of changes, including in subdirectories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-watch-'));
    await mkdir(join(dir, 'team'));
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 300 });
    try {
      await new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 5; i++) await writeFile(join(dir, 'team', `r${i}.yaml`), 'kind: Runbook\n');
      await until(() => calls > 0);
      await new Promise((r) => setTimeout(r, 700));
      expect(calls).toBe(1);
    } finally {
      stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts watching a directory that appears later, and reports it', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'hr-watch-'));
    const dir = join(parent, 'runbooks');
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 20, retryMs: 50 });
    try {
      await new Promise((r) => setTimeout(r, 120));
      expect(calls).toBe(0);
      await mkdir(dir);
      await until(() => calls === 1);
      await writeFile(join(dir, 'a.yaml'), 'kind: Runbook\n');
      await until(() => calls === 2);
    } finally {
      stop();
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('does not call back after it is stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-watch-'));
    let calls = 0;
    const stop = watchDirectory(dir, () => calls++, { debounceMs: 50 });
    await writeFile(join(dir, 'a.yaml'), 'x: 1\n');
    stop();
    await new Promise((r) => setTimeout(r, 200));
    expect(calls).toBe(0);
    await rm(dir, { recursive: true, force: true });
  });
});
