/**
 * agent/runner.ts stopping real process trees: timeout and cancel kill the whole group (TERM,
 * then KILL after the grace period), leftovers holding the pipes do not hang the runner, and a
 * slow sink holds the child back instead of filling the agent's memory.
 *
 * No test here asserts how long something took. "It did not wait out the grace period" is
 * shown by a grace period longer than the test may run; "it was killed" by the process being
 * dead; "the child is held back" by the child being blocked in write() (/proc says so).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runStep, type RunSpec } from '../../agent/runner.js';
import { MAX_SINK_CHUNK } from '../../agent/output-capture.js';
import type * as ProcessGroup from '../../agent/process-group.js';
import { parseStat } from '../../agent/process-group.js';
import { gateWaitSh } from '../helpers/gate.js';
import { BACKSTOP_MS, waitFor } from '../helpers/processes.js';
import { PATH_ENV, isRunning, recordingSink, waitUntil } from '../helpers/runner-sink.js';

/** Every signal the runner sends to a process group, in order (the real signalGroup does the work). */
const groupSignals = vi.hoisted(() => [] as Array<{ pgid: number; signal: NodeJS.Signals | 0 }>);
vi.mock('../../agent/process-group.js', async (importOriginal) => {
  const real = await importOriginal<typeof ProcessGroup>();
  return {
    ...real,
    signalGroup: (pgid: number, signal: NodeJS.Signals | 0): boolean => {
      groupSignals.push({ pgid, signal });
      return real.signalGroup(pgid, signal);
    },
  };
});

/** The runner's signals to group `pgid` so far. */
const signalsTo = (pgid: number): Array<NodeJS.Signals | 0> => groupSignals.filter((g) => g.pgid === pgid).map((g) => g.signal);

// Captured before any test fakes the timers: real waits while the runner's clock is fake.
const realSetTimeout = globalThis.setTimeout;
const realSleep = (ms: number): Promise<void> => new Promise((r) => realSetTimeout(r, ms));

/** Waits in real time (whatever the fake clock does) until `pred` holds. */
async function waitReal(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + BACKSTOP_MS;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await realSleep(5);
  }
}

interface Tracked<T> extends Promise<T> {
  readonly settled: boolean;
}
function track<T>(p: Promise<T>): Tracked<T> {
  const t = p as Promise<T> & { settled: boolean };
  t.settled = false;
  p.then(() => (t.settled = true), () => (t.settled = true));
  return t;
}

/**
 * The runner's timers (step timeout, kill grace, group polls, pipe linger) on a fake clock, so
 * a test starts a step's timeout only once the step is ready and decides exactly when its grace
 * ends. Output and process exits still arrive in real time; `pump…` moves the fake clock on in
 * small steps while it waits for them.
 */
function runnerClock(): { advance(ms: number): void; pumpUntil(pred: () => boolean, what: string): Promise<void>; pumpUntilSettled<T>(p: Tracked<T>): Promise<T>; restore(): void } {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const pumpUntil = async (pred: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + BACKSTOP_MS;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      vi.advanceTimersByTime(25);
      await realSleep(5);
    }
  };
  return {
    advance: (ms) => vi.advanceTimersByTime(ms),
    pumpUntil,
    async pumpUntilSettled(p) {
      await pumpUntil(() => p.settled, 'the step to settle');
      return p;
    },
    restore: () => vi.useRealTimers(),
  };
}
const scratch = mkdtempSync(join(tmpdir(), 'hr-runner-group-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

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
    const clock = runnerClock();
    try {
      const rec = recordingSink();
      let pid = 0;
      // A grace far longer than the test may run: the step can only end because TERM killed the group.
      const running = track(runStep(spec(['sh', '-c', 'sleep 1000 & echo $!; echo ready; sleep 1000'], { timeoutMs: 400, killGraceMs: 600_000 }), rec.sink, { onStarted: (p) => (pid = p) }));
      // The step's clock starts only once its background child runs (no fake time has passed yet).
      await waitReal(() => rec.text('stdout').includes('ready'), 'the step to be ready');
      clock.advance(399);
      expect(signalsTo(pid)).toEqual([]);
      clock.advance(1);
      expect(signalsTo(pid)).toEqual(['SIGTERM']);
      const r = await clock.pumpUntilSettled(running);
      expect(r.status).toBe('timed_out');
      expect(r.error).toBe('timed out after 400 ms');
      expect(r.signal).toBe('SIGTERM');
      // TERM was enough: after it only the final KILL of the emptied group, none at a grace's end.
      expect(signalsTo(pid)).toEqual(['SIGTERM', 'SIGKILL']);
      const [grandchild] = pids(rec.text('stdout'));
      expect(grandchild).toBeGreaterThan(1);
      expect(isRunning(grandchild ?? 0)).toBe(false);
      expect(isRunning(r.pid ?? 0)).toBe(false);
    } finally {
      clock.restore();
    }
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
    const clock = runnerClock();
    try {
      const rec = recordingSink();
      let pid = 0;
      // An ignored signal stays ignored across exec, so the sleeps ignore TERM as well.
      const running = track(runStep(spec(['sh', '-c', 'trap "" TERM; sleep 100 & echo $!; echo ready; while :; do sleep 0.05; done'], { timeoutMs: 200, killGraceMs: 700 }), rec.sink, { onStarted: (p) => (pid = p) }));
      await waitReal(() => rec.text('stdout').includes('ready'), 'the step to ignore TERM');
      clock.advance(200);
      expect(signalsTo(pid)).toEqual(['SIGTERM']);
      clock.advance(699);
      expect(signalsTo(pid)).toEqual(['SIGTERM']);
      clock.advance(1); // the grace is over
      expect(signalsTo(pid)).toEqual(['SIGTERM', 'SIGKILL']);
      const r = await clock.pumpUntilSettled(running);
      expect(r.status).toBe('timed_out');
      // Only the runner's KILL could end this group.
      expect(r.signal).toBe('SIGKILL');
      const [grandchild] = pids(rec.text('stdout'));
      // KILL was sent before the result; the process is gone once it is next scheduled.
      await waitReal(() => !isRunning(grandchild ?? 0), 'the KILLed grandchild to be gone');
    } finally {
      clock.restore();
    }
  });

  it('the rest of the group gets the grace period even when the main process dies at once', async () => {
    // The subshell cleans up for 300 ms after TERM and says so; the main shell dies at TERM.
    const program = '(trap "sleep 0.3; echo cleaned-up; exit 0" TERM; echo ready; while :; do sleep 0.02; done) & wait';
    const rec = recordingSink();
    const ac = new AbortController();
    // The grace is a backstop: the runner waits for the subshell to finish, not for the grace to end.
    const r = await runStep(spec(['sh', '-c', program], { killGraceMs: 600_000 }), (s, o, d) => {
      rec.sink(s, o, d);
      if (rec.text('stdout').includes('ready')) ac.abort();
    }, { signal: ac.signal });
    expect(r.status).toBe('canceled');
    expect(rec.text('stdout')).toBe('ready\ncleaned-up\n');
  });

  it('a timeout stops the process even while the sink is stalled', async () => {
    const clock = runnerClock();
    try {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let pid = 0;
      let sinkCalls = 0;
      const running = track(
        runStep(spec(['sh', '-c', 'echo first; sleep 100'], { timeoutMs: 300, killGraceMs: 600_000 }), () => {
          sinkCalls++;
          return gate;
        }, { onStarted: (p) => (pid = p) }),
      );
      await waitReal(() => sinkCalls === 1, 'the first chunk to be in the sink');
      clock.advance(300);
      // The process is gone although the sink still holds the first chunk ...
      await waitReal(() => !isRunning(pid), 'the timed-out process to die');
      // ... and the result waits for the sink, so no output is reported that was not delivered. The
      // runner's last act before it waits on the sink is the final KILL of the emptied group; once
      // that was sent and the microtasks after it have run, a runner not waiting would have settled.
      await clock.pumpUntil(() => signalsTo(pid).includes('SIGKILL'), 'the final kill of the group');
      await new Promise((r) => setImmediate(r));
      expect(running.settled).toBe(false);
      release();
      const r = await clock.pumpUntilSettled(running);
      expect(r.status).toBe('timed_out');
      expect(r.stdout.capturedBytes).toBe(6);
    } finally {
      clock.restore();
    }
  });
});

describe('leftovers do not hang the runner', () => {
  it('a background grandchild holding the pipes is killed shortly after the main process exits', async () => {
    const rec = recordingSink();
    // The grandchild would hold the pipes for longer than the test may run: the step ends only
    // because the runner kills it.
    const r = await runStep(spec(['sh', '-c', 'sleep 1000 & echo $!; echo main-done']), rec.sink);
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    const [grandchild] = pids(rec.text('stdout'));
    expect(rec.text('stdout')).toBe(`${grandchild}\nmain-done\n`);
    // KILL was sent before the result; the process is gone once it is next scheduled.
    await waitUntil(() => !isRunning(grandchild ?? 0), BACKSTOP_MS, 'the KILLed grandchild to be gone');
  });

  it('a background grandchild that closed its output is killed too: nothing outlives the step', async () => {
    const rec = recordingSink();
    const r = await runStep(spec(['sh', '-c', 'sleep 100 >/dev/null 2>&1 & echo $!']), rec.sink);
    expect(r.status).toBe('succeeded');
    const [grandchild] = pids(rec.text('stdout'));
    await waitUntil(() => !isRunning(grandchild ?? 0), BACKSTOP_MS, 'the grandchild to be killed');
  });

  it('a process that left the group (setsid) but holds the pipes is cut off, and output before that is kept', async () => {
    const rec = recordingSink();
    // The escaped process prints its pid before the main shell goes on, so its line comes first.
    const printed = join(scratch, 'escaped-printed');
    const r = await runStep(spec(['sh', '-c', `setsid sh -c 'echo $$; : > "$1"; exec sleep 1000' escaped "$1" & ${gateWaitSh('"$1"')}; echo main-done`, 'main', printed]), rec.sink);
    const [escaped] = pids(rec.text('stdout'));
    try {
      expect(r.status).toBe('succeeded');
      expect(escaped).toBeGreaterThan(1);
      expect(rec.text('stdout')).toBe(`${escaped}\nmain-done\n`);
      // Cut off, not waited for: it is still running (outside the group, it is not the runner's to kill).
      expect(isRunning(escaped ?? 0)).toBe(true);
    } finally {
      if (escaped && isRunning(escaped)) process.kill(escaped, 'SIGKILL');
    }
  });
});

/** write(2)'s syscall number, where /proc/PID/syscall can tell a blocked write. */
const WRITE_SYSCALL: Partial<Record<string, string>> = { x64: '1', arm64: '64' };

/** Whether `pid` is blocked in write() to fd 1, and how many bytes it has written so far (all fds). */
async function stdoutWriteState(pid: number): Promise<{ blocked: boolean; written: number } | undefined> {
  try {
    const [syscall, stat, io] = await Promise.all(['syscall', 'stat', 'io'].map((f) => readFile(`/proc/${pid}/${f}`, 'latin1')));
    const [nr, fd] = (syscall ?? '').trim().split(' ');
    const state = parseStat(stat ?? '')?.state;
    const written = Number(/^wchar: (\d+)$/m.exec(io ?? '')?.[1]);
    return { blocked: nr === WRITE_SYSCALL[process.arch] && fd === '0x1' && (state === 'S' || state === 'D'), written };
  } catch {
    return undefined;
  }
}

describe('backpressure', () => {
  it.runIf(WRITE_SYSCALL[process.arch] !== undefined)('a stalled sink stalls the child: it gets at most a pipe buffer and a few chunks ahead', async () => {
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
    let pid = 0;
    const running = runStep(spec([NODE, '-e', program], { maxOutputBytes: TOTAL, timeoutMs: 0 }), (stream, offset, data) => {
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
    }, { onStarted: (p) => (pid = p) });

    // Held back: the child sits in write() to its stdout, and stays there with nothing more
    // written while this process goes through its event loop (where the runner would read).
    const stall = await waitFor(async () => {
      const a = await stdoutWriteState(pid);
      if (!a?.blocked) return undefined;
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      const b = await stdoutWriteState(pid);
      return b?.blocked && b.written === a.written ? b : undefined;
    }, BACKSTOP_MS, 'the child to be held in write()');
    // Only the socket buffer plus what the runner holds (one read, and the chunk in the sink)
    // is ahead of the sink. Each completed write is one CHUNK; the progress lines are far smaller.
    const stalledAt = Math.floor(stall.written / CHUNK) * CHUNK;
    expect(stdoutCalls).toBe(1);
    expect(stalledAt).toBeGreaterThan(0);
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
