import { describe, expect, it } from 'vitest';
import { AdmissionQueue } from '../../coordinator/gateway/admission.js';

interface Conn {
  readonly id: string;
  gone?: boolean;
}

function harness(o: { maxActive?: number; maxQueued?: number; maxWaitMs?: number } = {}) {
  let now = 0;
  const served: string[] = [];
  const dropped: string[] = [];
  const releases = new Map<string, () => void>();
  const q = new AdmissionQueue<Conn>({
    maxActive: o.maxActive ?? 2,
    maxQueued: o.maxQueued ?? 10,
    maxWaitMs: o.maxWaitMs ?? 1000,
    now: () => now,
    alive: (c) => !c.gone,
    drop: (c, why) => dropped.push(`${c.id}:${why}`),
  });
  const offer = (c: Conn): string =>
    q.offer(c, (x, release) => {
      served.push(x.id);
      releases.set(x.id, release);
    });
  return { q, offer, served, dropped, release: (id: string) => releases.get(id)?.(), tick: (ms: number) => void (now += ms) };
}

describe('admission of agent-port connections', () => {
  it('serves at once while under the limit, then queues', () => {
    const h = harness();
    expect(h.offer({ id: 'a' })).toBe('served');
    expect(h.offer({ id: 'b' })).toBe('served');
    expect(h.offer({ id: 'c' })).toBe('queued');
    expect(h.q.active).toBe(2);
    expect(h.q.queued).toBe(1);
    expect(h.served).toEqual(['a', 'b']);
  });

  it('serves the newest waiting connection when a slot frees, and a slot frees once per release', () => {
    const h = harness();
    for (const id of ['a', 'b', 'c', 'd', 'e']) h.offer({ id });
    h.release('a');
    h.release('a'); // a second release of the same slot changes nothing
    expect(h.served).toEqual(['a', 'b', 'e']);
    expect(h.q.active).toBe(2);
    h.release('b');
    expect(h.served).toEqual(['a', 'b', 'e', 'd']);
  });

  it('drops, unserved, connections that waited too long or whose peer left', () => {
    const h = harness({ maxWaitMs: 1000 });
    const gone: Conn = { id: 'gone' };
    for (const c of [{ id: 'a' }, { id: 'b' }, { id: 'old' }]) h.offer(c);
    h.tick(1500);
    h.offer({ id: 'fresh' });
    h.offer(gone);
    gone.gone = true;
    expect(h.dropped).toEqual(['old:waited_too_long']);
    h.release('a');
    expect(h.dropped).toEqual(['old:waited_too_long', 'gone:gone']);
    expect(h.served).toEqual(['a', 'b', 'fresh']);
    expect(h.q.dropped).toBe(2);
  });

  it('refuses beyond the queue limit, and hands back what waits on drain', () => {
    const h = harness({ maxActive: 1, maxQueued: 2 });
    expect(h.offer({ id: 'a' })).toBe('served');
    expect(h.offer({ id: 'b' })).toBe('queued');
    expect(h.offer({ id: 'c' })).toBe('queued');
    expect(h.offer({ id: 'd' })).toBe('refused');
    expect(h.q.drain().map((c) => c.id)).toEqual(['b', 'c']);
    expect(h.q.queued).toBe(0);
  });
});
