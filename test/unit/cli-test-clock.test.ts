import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { processClock, TEST_CLOCK_FILE_ENV } from '../../cli/test-clock.js';

describe('the CLI process clock', () => {
  it('is the real clock when no test clock file is named', () => {
    expect(processClock(undefined)).toBe(Date.now);
    expect(processClock('')).toBe(Date.now);
  });

  it('runs ahead by the offset in the file, and follows the file when it changes', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-clock-')), 'clock');
    await writeFile(file, '60000\n');
    const now = processClock(file);
    const before = Date.now();
    const t = now();
    expect(t).toBeGreaterThanOrEqual(before + 60_000);
    expect(t).toBeLessThanOrEqual(Date.now() + 60_000);
    await writeFile(file, '-5000');
    expect(now()).toBeLessThanOrEqual(Date.now() - 5_000);
  });

  it('keeps the last offset while the file is being rewritten or is gone', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-clock-')), 'clock');
    await writeFile(file, '3600000');
    const now = processClock(file);
    for (const torn of ['', '36x', '-']) {
      await writeFile(file, torn);
      const before = Date.now();
      expect(now()).toBeGreaterThanOrEqual(before + 3_600_000);
    }
    await rm(file);
    const before = Date.now();
    expect(now()).toBeGreaterThanOrEqual(before + 3_600_000);
  });

  it.each([['missing', null], ['empty', ''], ['not a number', 'soon'], ['a fraction', '1.5'], ['too large', '9'.repeat(20)]])('refuses a file that is %s, in one line naming the variable', async (_what, content) => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-clock-')), 'clock');
    if (content !== null) await writeFile(file, content);
    expect(() => processClock(file)).toThrow(new RegExp(`^${TEST_CLOCK_FILE_ENV}: .*clock does not hold a whole number of milliseconds \\(the variable is for tests only: unset it\\)$`));
  });
});
