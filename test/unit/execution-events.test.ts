import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExecutionEvents } from '../../coordinator/engine/execution-events.js';

/** Whether a promise has settled, without waiting on any clock. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('ExecutionEvents.watchFinished (long-poll waits)', () => {
  afterEach(() => vi.useRealTimers());

  it('wakes on its own execution finishing, not on another', async () => {
    const events = new ExecutionEvents();
    const a = events.watchFinished('exe-a', 60_000);
    const b = events.watchFinished('exe-b', 60_000);
    events.finished({ executionId: 'exe-b', state: 'succeeded' });
    expect(await settled(b.finished)).toBe(true);
    expect(await settled(a.finished)).toBe(false);
    expect(events.waiting).toBe(1);
    events.finished({ executionId: 'exe-a', state: 'failed' });
    expect(await settled(a.finished)).toBe(true);
    expect(events.waiting).toBe(0);
  });

  it('wakes every watch on the same execution', async () => {
    const events = new ExecutionEvents();
    const watches = [1, 2, 3].map(() => events.watchFinished('exe-a', 60_000));
    events.finished({ executionId: 'exe-a', state: 'succeeded' });
    for (const w of watches) expect(await settled(w.finished)).toBe(true);
    expect(events.waiting).toBe(0);
  });

  it('cancel lets go at once: its timer too, and a later finish is harmless', async () => {
    vi.useFakeTimers();
    const events = new ExecutionEvents();
    const w = events.watchFinished('exe-a', 60_000);
    expect(vi.getTimerCount()).toBe(1);
    w.cancel();
    expect(await settled(w.finished)).toBe(true);
    expect(events.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    w.cancel();
    events.finished({ executionId: 'exe-a', state: 'succeeded' });
    expect(events.waiting).toBe(0);
  });

  it('ends at its timeout when the execution does not finish', async () => {
    vi.useFakeTimers();
    const events = new ExecutionEvents();
    const w = events.watchFinished('exe-a', 30_000);
    vi.advanceTimersByTime(29_999);
    expect(await settled(w.finished)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(w.finished)).toBe(true);
    expect(events.waiting).toBe(0);
  });

  it('still tells onFinished listeners (metrics, the feed)', () => {
    const events = new ExecutionEvents();
    const seen: string[] = [];
    events.onFinished((e) => seen.push(`${e.executionId}:${e.state}`));
    events.watchFinished('exe-a', 60_000);
    events.finished({ executionId: 'exe-a', state: 'canceled' });
    expect(seen).toEqual(['exe-a:canceled']);
  });

  it('tells a watch who owns an execution started here until its end is announced, and never after', async () => {
    const events = new ExecutionEvents();
    expect(events.watchFinished('exe-a', 60_000).running).toBeUndefined();
    events.started('exe-a', { kind: 'adhoc', runbookId: null, requestedBy: 'sue' });
    const w = events.watchFinished('exe-a', 60_000);
    expect(w.running).toEqual({ kind: 'adhoc', runbookId: null, requestedBy: 'sue' });
    expect(events.watchFinished('exe-b', 60_000).running).toBeUndefined();
    events.finished({ executionId: 'exe-a', state: 'succeeded' });
    expect(await settled(w.finished)).toBe(true);
    // Ended: a later watch must read the store (it would otherwise wait for an end already announced).
    expect(events.watchFinished('exe-a', 60_000).running).toBeUndefined();
  });
});
