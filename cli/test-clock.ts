/**
 * The clock a CLI process hands the coordinator and the agent (io.now): Date.now, unless the
 * test-only HANDRAIL_TEST_CLOCK_FILE names a file holding an offset in whole milliseconds.
 * The clock then runs that far ahead of the real one, the file read again at every call, so an
 * integration test can move a child process forward in time (a restarted coordinator whose
 * re-armed step watchdogs are due, an agent whose certificate is due for renewal) and wait for
 * what it then does, instead of waiting for real seconds to pass. Timers and TLS certificate
 * checks keep real time. Production never sets the variable.
 */
import { readFileSync } from 'node:fs';

export const TEST_CLOCK_FILE_ENV = 'HANDRAIL_TEST_CLOCK_FILE';

/** Throws (one line) if the file is set but does not hold an offset. */
export function processClock(file: string | undefined): () => number {
  if (file === undefined || file === '') return Date.now;
  let offset = readOffset(file);
  if (offset === undefined) throw new Error(`${TEST_CLOCK_FILE_ENV}: ${file} does not hold a whole number of milliseconds (the variable is for tests only: unset it)`);
  let last: number = offset;
  return () => {
    // A file being rewritten (or gone) leaves the last offset read in force.
    offset = readOffset(file);
    if (offset !== undefined) last = offset;
    return Date.now() + last;
  };
}

function readOffset(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (!/^-?\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}
