/**
 * Test helpers for agent/runner.ts: a sink that records what it is given (and checks offsets
 * are contiguous per stream), and process-liveness checks that treat zombies as dead, because
 * this machine's init does not reap reparented grandchildren.
 */
import { readFileSync } from 'node:fs';
import type { OutputStreamName } from '../../agent/runner.js';

export const PATH_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' } as const;

export interface Recorded {
  /** An OutputSink that never returns a promise, so callers need not handle one. */
  readonly sink: (stream: OutputStreamName, offset: number, data: Buffer) => void;
  readonly calls: Array<{ stream: OutputStreamName; offset: number; length: number }>;
  bytes(stream: OutputStreamName): Buffer;
  text(stream: OutputStreamName): string;
}

export function recordingSink(): Recorded {
  const chunks: Record<OutputStreamName, Buffer[]> = { stdout: [], stderr: [] };
  const next: Record<OutputStreamName, number> = { stdout: 0, stderr: 0 };
  const calls: Recorded['calls'] = [];
  const sink: Recorded['sink'] = (stream, offset, data) => {
    if (offset !== next[stream]) throw new Error(`${stream}: offset ${offset}, expected ${next[stream]}`);
    next[stream] += data.length;
    // Copy: the assertion must not depend on the runner leaving the buffer alone afterwards.
    chunks[stream].push(Buffer.from(data));
    calls.push({ stream, offset, length: data.length });
  };
  const bytes = (s: OutputStreamName): Buffer => Buffer.concat(chunks[s]);
  return { sink, calls, bytes, text: (s) => bytes(s).toString('utf8') };
}

/** True if `pid` exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
