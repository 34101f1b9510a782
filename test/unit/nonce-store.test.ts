import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NonceStore } from '../../agent/nonce-store.js';

describe('the replay log on disk', () => {
  it('keeps every nonce added while it compacts, across a restart', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-nonce-')), 'nonces.log');
    const store = new NonceStore(file);
    await store.load(0);
    for (let i = 0; i < 1100; i++) await store.add(randomBytes(16), 1000);
    store.prune(2000); // all expired: the log is now mostly dead lines
    const fresh = Array.from({ length: 50 }, () => randomBytes(16));
    // Adds racing the rewrite, on both sides of it.
    await Promise.all([...fresh.slice(0, 25).map((n) => store.add(n, 10 ** 13)), store.compactIfLarge(), ...fresh.slice(25).map((n) => store.add(n, 10 ** 13))]);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.length).toBeLessThan(200); // compacted
    const again = new NonceStore(file);
    await again.load(3000);
    for (const n of fresh) expect(again.has(n)).toBe(true);
  });

  it('ignores damaged lines and expired entries when it loads', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-nonce-')), 'nonces.log');
    const a = new NonceStore(file);
    await a.load(0);
    const live = randomBytes(16);
    const old = randomBytes(16);
    await a.add(live, 10 ** 13);
    await a.add(old, 5);
    const { appendFile } = await import('node:fs/promises');
    await appendFile(file, 'zz not-a-number\n\ngarbage\n');
    const b = new NonceStore(file);
    await b.load(10);
    expect(b.has(live)).toBe(true);
    expect(b.has(old)).toBe(false);
  });

  it('remembers, across a restart, how far it pruned, so a clock set back cannot revive old envelopes', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-nonce-')), 'nonces.log');
    const a = new NonceStore(file);
    await a.load(0);
    await a.add(randomBytes(16), 5_000);
    await a.add(randomBytes(16), 9_000);
    const live = randomBytes(16);
    await a.add(live, 50_000);
    expect(a.prunedThroughMs).toBe(0);
    // Restart at t=10 s: the two expired nonces leave the log, and the watermark goes with it.
    const b = new NonceStore(file);
    await b.load(10_000);
    expect(b.prunedThroughMs).toBe(9_000);
    expect(await readFile(file, 'utf8')).toMatch(/^pruned-through 9000\n/);
    // Restart with the clock set back to t=1 s: the watermark holds, nothing is forgotten twice.
    const c = new NonceStore(file);
    await c.load(1_000);
    expect(c.prunedThroughMs).toBe(9_000);
    expect(c.has(live)).toBe(true);
    c.prune(60_000);
    expect(c.prunedThroughMs).toBe(50_000);
  });

  it('has every added nonce in the file once add resolves, also for adds that share a sync', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-nonce-')), 'nonces.log');
    const s = new NonceStore(file);
    await s.load(0);
    const nonces = Array.from({ length: 40 }, () => randomBytes(16));
    await Promise.all(
      nonces.map(async (n) => {
        await s.add(n, 10 ** 13);
        expect(await readFile(file, 'utf8')).toContain(n.toString('hex'));
      }),
    );
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(40); // one line each, no more
  });

  it('keeps appending to the new log after a compaction replaced the file, and after close', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'hr-nonce-')), 'nonces.log');
    const s = new NonceStore(file);
    await s.load(0);
    for (let i = 0; i < 1100; i++) await s.add(randomBytes(16), 1000);
    s.prune(2000);
    await s.compactIfLarge(); // the file is replaced (rename) under the open append handle
    const after = randomBytes(16);
    await s.add(after, 10 ** 13);
    await s.close();
    const late = randomBytes(16);
    await s.add(late, 10 ** 13); // a closed store reopens the log
    await s.close();
    const text = await readFile(file, 'utf8');
    expect(text).toContain(after.toString('hex'));
    expect(text).toContain(late.toString('hex'));
  });
});
