/**
 * A clock file for child processes (cli/test-clock.ts): the processes started with `env` run
 * their clock `offsetMs` ahead of the real one, and `set` moves them while they run.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEST_CLOCK_FILE_ENV } from '../../cli/test-clock.js';

export class TestClock {
  private constructor(readonly file: string) {}

  static async create(dir: string, name: string, offsetMs = 0): Promise<TestClock> {
    const c = new TestClock(join(dir, `clock-${name}`));
    await c.set(offsetMs);
    return c;
  }

  /** The environment that gives a child process this clock. */
  get env(): Record<string, string> {
    return { [TEST_CLOCK_FILE_ENV]: this.file };
  }

  /** Moves the clock to `offsetMs` ahead of real time; a reader sees the old or the new offset, never a torn write. */
  async set(offsetMs: number): Promise<void> {
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, String(Math.round(offsetMs)));
    await rename(tmp, this.file);
  }
}
