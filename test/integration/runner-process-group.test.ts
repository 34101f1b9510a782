/**
 * agent/runner.ts stopping real process trees: timeout and cancel kill the whole group (TERM,
 * then KILL after the grace period), leftovers holding the pipes do not hang the runner, and a
 * slow sink holds the child back instead of filling the agent's memory.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runStep, type RunSpec } from '../../agent/runner.js';
import { MAX_SINK_CHUNK } from '../../agent/output-capture.js';
import { PATH_ENV, isRunning, recordingSink, waitUntil } from '../helpers/runner-sink.js';

const NODE = process.execPath;

function spec(argv: readonly string[], extra: Partial<RunSpec> = {}): RunSpec {
  return { argv, env: PATH_ENV, timeoutMs: 0, maxOutputBytes: 1 << 20, ...extra };
}

/** The pids a step printed on stdout, one a line. */
function pids(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

describe('timeout and cancel kill the whole process group', () => {
  it('a timeout kills the main process and its background grandchild', async () => {
    const rec = recordingSink();
    const t0 = Date.now();
    const r = await runStep(spec(['sh', '-c', 'sleep 100 & echo $!; sleep 100'], { timeoutMs: 400, killGraceMs: 10_000 }), rec.sink);
    const elapsed = Date.now() - t0;
    expect(r.status).toBe('timed_out');
    expect(r.error).toBe('timed out after 400 ms');
    expect(r.signal).toBe('SIGTERM');
    const [grandchild] = pids(rec.text('stdout'));
    expect(grandchild).toBeGreaterThan(1);
    expect(isRunning(grandchild ?? 0)).toBe(false);
    expect(isRunning(r.pid ?? 0)).toBe(false);
    // Everything died on TERM, so the 10 s grace was not waited out.
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('aborting the signal cancels the step and kills the group', async () => {
    const ac = new AbortController();
    const rec = recordingSink();
    const seen: string[] = [];
    const running = runStep(spec(['sh', '-c', 'sleep 100 & echo $!; echo ready; sleep 100']), (s, o, d) => {
      rec.sink(s, o, d);
      seen.push(d.toString());
      if (seen.join('').includes('ready')) ac.abort();
    }, { signal: ac.signal });
    const r = await running;
    expect(r.status).toBe('canceled');
    expect(r.error).toBe('canceled');
    expect(r.signal).toBe('SIGTERM');
    const [grandchild] = pids(rec.text('stdout'));
    expect(isRunning(grandchild ?? 0)).toBe(false);
  });

  it('a process that ignores TERM is KILLed after the grace period', async () => {
    const t0 = Date.now();
    const rec = recordingSink();
    // An ignored signal stays ignored across exec, so the sleeps ignore TERM as well.
    const r = await runStep(spec(['sh', '-c', 'trap "" TERM; sleep 100 & echo $!; while :; do sleep 0.05; done'], { timeoutMs: 200, killGraceMs: 700 }), rec.sink);
    const elapsed = Date.now() - t0;
    expect(r.status).toBe('timed_out');
    expect(r.signal).toBe('SIGKILL');
    expect(elapsed).toBeGreaterThanOrEqual(200 + 700);
    expect(elapsed).toBeLessThan(4_000);
    const [grandchild] = pids(rec.text('stdout'));
    expect(isRunning(grandchild ?? 0)).toBe(false);
  });

  it('the rest of the group gets the grace period even when the main process dies at once', async () => {
    // The subshell cleans up for 300 ms after TERM and says so; the main shell dies at TERM.
    const program = '(trap "sleep 0.3; echo cleaned-up; exit 0" TERM; echo ready; while :; do sleep 0.02; done) & wait';
    const rec = recordingSink();
    const ac = new AbortController();
    const r = await runStep(spec(['sh', '-c', program], { killGraceMs: 5_000 }), (s, o, d) => {
      rec.sink(s, o, d);
      if (rec.text('stdout').includes('ready')) ac.abort();
    }, { signal: ac.signal });
    expect(r.status).toBe('canceled');
    expect(rec.text('stdout')).toBe('ready\ncleaned-up\n');
  });

  it('a timeout stops the process even while the sink is stalled', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let pid = 0;
    const running = runStep(spec(['sh', '-c', 'echo first; sleep 100'], { timeoutMs: 300 }), () => gate, { onStarted: (p) => (pid = p) });
    // The process is gone although the sink still holds the first chunk ...
    await waitUntil(() => pid > 0 && !isRunning(pid), 5_000, 'the timed-out process to die');
    // ... and the result waits for the sink, so no output is reported that was not delivered.
    const early = await Promise.race([running.then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 100))]);
    expect(early).toBe('pending');
    release();
    const r = await running;
    expect(r.status).toBe('timed_out');
    expect(r.stdout.capturedBytes).toBe(6);
  });
});

describe('leftovers do not hang the runner', () => {
  it('a background grandchild holding the pipes is killed shortly after the main process exits', async () => {
    const rec = recordingSink();
    const t0 = Date.now();
    const r = await runStep(spec(['sh', '-c', 'sleep 100 & echo $!; echo main-done']), rec.sink);
    const elapsed = Date.now() - t0;
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    const [grandchild] = pids(rec.text('stdout'));
    expect(rec.text('stdout')).toBe(`${grandchild}\nmain-done\n`);
    expect(isRunning(grandchild ?? 0)).toBe(false);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('a background grandchild that closed its output is killed too: nothing outlives the step', async () => {
    const rec = recordingSink();
    const r = await runStep(spec(['sh', '-c', 'sleep 100 >/dev/null 2>&1 & echo $!']), rec.sink);
    expect(r.status).toBe('succeeded');
    const [grandchild] = pids(rec.text('stdout'));
    await waitUntil(() => !isRunning(grandchild ?? 0), 2_000, 'the grandchild to be killed');
  });

  it('a process that left the group (setsid) but holds the pipes is cut off, and output before that is kept', async () => {
    const rec = recordingSink();
    const t0 = Date.now();
    const r = await runStep(spec(['sh', '-c', "setsid sh -c 'echo $$; exec sleep 30' & sleep 0.2; echo main-done"]), rec.sink);
    const elapsed = Date.now() - t0;
    const [escaped] = pids(rec.text('stdout'));
    try {
      expect(r.status).toBe('succeeded');
      expect(escaped).toBeGreaterThan(1);
      expect(rec.text('stdout')).toBe(`${escaped}\nmain-done\n`);
      expect(elapsed).toBeLessThan(3_000);
    } finally {
      if (escaped && isRunning(escaped)) process.kill(escaped, 'SIGKILL');
    }
  });
});

describe('backpressure', () => {
  it('a stalled sink stalls the child: it gets at most a pipe buffer and a few chunks ahead', async () => {
    const TOTAL = 50 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    // Writes TOTAL bytes to stdout in blocking writes and, after each, its progress to stderr.
    const program = `
      const fs = require('node:fs');
      const b = Buffer.alloc(${CHUNK});
      for (let i = 0; i < b.length; i++) b[i] = i & 0xff;
      let written = 0;
      while (written < ${TOTAL}) {
        let n;
        try { n = fs.writeSync(1, b); } catch (e) { if (e.code === 'EAGAIN') continue; throw e; }
        written += n;
        if (n < b.length) throw new Error('short write');
        fs.writeSync(2, written + '\\n');
      }`;
    let progress = 0;
    let stdoutCalls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const hash = createHash('sha256');
    let captured = 0;
    let largest = 0;
    const running = runStep(spec([NODE, '-e', program], { maxOutputBytes: TOTAL, timeoutMs: 60_000 }), (stream, offset, data) => {
      if (stream === 'stderr') {
        const lines = data.toString().trim().split('\n');
        progress = Number(lines[lines.length - 1]);
        return undefined;
      }
      expect(offset).toBe(captured);
      stdoutCalls++;
      captured += data.length;
      largest = Math.max(largest, data.length);
      hash.update(data);
      // The first chunk stalls until released; after that the sink is slow but moving.
      return stdoutCalls === 1 ? gate : new Promise<void>((r) => setImmediate(r));
    });

    await waitUntil(() => progress > 0, 10_000, 'the child to start writing');
    await new Promise((r) => setTimeout(r, 1_000));
    const stalledAt = progress;
    await new Promise((r) => setTimeout(r, 300));
    // The child is blocked in write(): no progress, and only a pipe buffer (64 KiB) plus what the
    // runner holds (one read, and the chunk in the sink) is ahead of the sink.
    expect(progress).toBe(stalledAt);
    expect(stdoutCalls).toBe(1);
    expect(stalledAt).toBeLessThanOrEqual(8 * CHUNK);

    release();
    const r = await running;
    expect(r.status).toBe('succeeded');
    expect(progress).toBe(TOTAL);
    expect(captured).toBe(TOTAL);
    expect(largest).toBeLessThanOrEqual(MAX_SINK_CHUNK);
    expect(r.stdout).toEqual({ sha256: hash.digest(), capturedBytes: TOTAL, totalBytes: TOTAL, truncated: false });
  });
});
