import { appendFile, mkdtemp, readFile, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StepJournal } from '../../agent/step-journal.js';
import { decodeRecords, encodeRecord, type JournalRecord } from '../../agent/journal-record.js';

const FUTURE = 10 ** 13;
const fresh = async (): Promise<string> => join(await mkdtemp(join(tmpdir(), 'hr-journal-')), 'journal.log');
const step = (stepId: string) => ({ key: stepId.padStart(32, '0'), executionId: 'exe-1', stepId, startedAtMs: 1_000, maxOutputBytes: 1024, request: new Uint8Array([1, 2, 3]) });
const loaded = async (file: string, now = 0): Promise<StepJournal> => {
  const j = new StepJournal(file);
  await j.load(now);
  return j;
};

describe('journal records', () => {
  const records: JournalRecord[] = [
    { kind: 'nonce', nonce: 'ab'.repeat(16), notAfterMs: 5 },
    { kind: 'begin', key: 'k'.repeat(32), nonce: 'cd'.repeat(16), notAfterMs: 9, executionId: 'exe', stepId: 'st', startedAtMs: 3, maxOutputBytes: 10, request: new Uint8Array([0, 255, 7]) },
    { kind: 'pid', key: 'k'.repeat(32), pid: 42, processStart: '100', bootId: 'boot' },
    { kind: 'pid', key: 'k'.repeat(32), pid: 43 },
    { kind: 'result', key: 'k'.repeat(32), result: new Uint8Array(300).fill(9) },
    { kind: 'done', key: 'k'.repeat(32) },
    { kind: 'pruned', throughMs: 77 },
  ];
  const all = Buffer.concat(records.map(encodeRecord));

  it('decodes what it encodes, every kind', () => {
    expect(decodeRecords(all)).toEqual({ records, validBytes: all.length });
  });

  it.each([
    ['cut short by one byte', (b: Buffer) => b.subarray(0, b.length - 1)],
    ['cut inside the frame', (b: Buffer) => b.subarray(0, b.length - (encodeRecord(records[6]!).length - 3))],
    ['a flipped bit in the last body', (b: Buffer) => Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([b[b.length - 1]! ^ 1])])],
    ['a length far past the end', (b: Buffer) => Buffer.concat([b.subarray(0, b.length - encodeRecord(records[6]!).length), Buffer.from([255, 255, 255, 0, 0, 0, 0, 0])])],
    ['zeroes where the last record was (a power loss)', (b: Buffer) => Buffer.concat([b.subarray(0, b.length - encodeRecord(records[6]!).length), Buffer.alloc(40)])],
  ])('stops before a damaged last record: %s', (_name, damage) => {
    const { records: got, validBytes } = decodeRecords(damage(all));
    expect(got).toEqual(records.slice(0, -1));
    expect(validBytes).toBe(all.length - encodeRecord(records[6]!).length);
  });
});

describe('the step journal on disk', () => {
  it('keeps every nonce added while it compacts, across a restart', async () => {
    const file = await fresh();
    const j = await loaded(file);
    for (let i = 0; i < 1100; i++) await j.add(randomBytes(16), 1000);
    j.prune(2000); // all expired: the file is now mostly dead records
    const live = Array.from({ length: 50 }, () => randomBytes(16));
    // Adds racing the rewrite, on both sides of it.
    await Promise.all([...live.slice(0, 25).map((n) => j.add(n, FUTURE)), j.compactIfLarge(), ...live.slice(25).map((n) => j.add(n, FUTURE))]);
    expect(decodeRecords(await readFile(file)).records.length).toBeLessThan(200); // compacted
    const again = await loaded(file, 3000);
    for (const n of live) expect(again.has(n)).toBe(true);
  });

  it('has a step, and its nonce, in the file once begin resolves; a restart without a clean close still refuses the nonce', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const nonce = randomBytes(16);
    await j.begin(step('s1'), nonce, FUTURE);
    // No close: as after a kill -9, only what write() handed the kernel is there.
    const again = await loaded(file);
    expect(again.has(nonce)).toBe(true);
    expect(again.steps().map((s) => [s.stepId, Buffer.from(s.request).toString('hex'), s.result])).toEqual([['s1', '010203', undefined]]);
  });

  it('forgets an acknowledged step but not its nonce, across a restart and a compaction', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const nonce = randomBytes(16);
    const s = await j.begin(step('s2'), nonce, FUTURE);
    await j.setResult(s.key, new Uint8Array([5]));
    await j.done(s.key);
    const again = await loaded(file); // load compacts
    expect(again.steps()).toEqual([]);
    expect(again.has(nonce)).toBe(true);
    expect((await loaded(file)).has(nonce)).toBe(true);
  });

  it('marks a result written (in the file, safe from a kill) before it is synced, and durable after', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const s = await j.begin(step('s5'), randomBytes(16), FUTURE);
    const order: string[] = [];
    const { written, durable } = j.setResult(s.key, new Uint8Array([6, 6]));
    await Promise.all([written.then(async () => {
      order.push('written');
      // Read by another process's view of the file, as a restarted agent would.
      expect((await StepJournal.readSteps(file))[0]?.result).toEqual(new Uint8Array([6, 6]));
    }), durable.then(() => order.push('durable'))]);
    expect(order).toEqual(['written', 'durable']);
    expect(j.steps()[0]?.result).toEqual(new Uint8Array([6, 6]));
  });

  it('drops a torn record at the end, and appends after what stands', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const kept = randomBytes(16);
    await j.begin(step('s3'), kept, FUTURE);
    await j.close();
    const torn = encodeRecord({ kind: 'result', key: step('s3').key, result: new Uint8Array(100) });
    await appendFile(file, torn.subarray(0, 60)); // a result write cut short
    const again = await loaded(file);
    expect(again.steps()[0]?.result).toBeUndefined(); // the step reads as interrupted, not as finished
    const later = randomBytes(16);
    await again.add(later, FUTURE);
    const third = await loaded(file);
    expect(third.has(kept)).toBe(true);
    expect(third.has(later)).toBe(true);
  });

  it('ignores expired nonces when it loads', async () => {
    const file = await fresh();
    const a = await loaded(file);
    const live = randomBytes(16);
    const old = randomBytes(16);
    await a.add(live, FUTURE);
    await a.add(old, 5);
    const b = await loaded(file, 10);
    expect(b.has(live)).toBe(true);
    expect(b.has(old)).toBe(false);
  });

  it('remembers, across a restart, how far it pruned, so a clock set back cannot revive old envelopes', async () => {
    const file = await fresh();
    const a = await loaded(file);
    await a.add(randomBytes(16), 5_000);
    await a.begin(step('s4'), randomBytes(16), 9_000); // a step's nonce counts too
    const live = randomBytes(16);
    await a.add(live, 50_000);
    expect(a.prunedThroughMs).toBe(0);
    // Restart at t=10 s: the two expired nonces are forgotten, and the watermark is kept.
    const b = await loaded(file, 10_000);
    expect(b.prunedThroughMs).toBe(9_000);
    expect(decodeRecords(await readFile(file)).records[0]).toEqual({ kind: 'pruned', throughMs: 9_000 });
    // Restart with the clock set back to t=1 s: the watermark holds, nothing is forgotten twice.
    const c = await loaded(file, 1_000);
    expect(c.prunedThroughMs).toBe(9_000);
    expect(c.has(live)).toBe(true);
    c.prune(60_000);
    expect(c.prunedThroughMs).toBe(50_000);
  });

  it('has every added nonce in the file once add resolves, also for adds that share a sync', async () => {
    const file = await fresh();
    const s = await loaded(file);
    const nonces = Array.from({ length: 40 }, () => randomBytes(16));
    await Promise.all(
      nonces.map(async (n) => {
        await s.add(n, FUTURE);
        const onDisk = decodeRecords(await readFile(file)).records;
        expect(onDisk.some((r) => r.kind === 'nonce' && r.nonce === n.toString('hex'))).toBe(true);
      }),
    );
    expect(decodeRecords(await readFile(file)).records.filter((r) => r.kind === 'nonce')).toHaveLength(40); // one record each, no more
  });

  it('keeps appending to the new file after a compaction replaced it, and after close', async () => {
    const file = await fresh();
    const s = await loaded(file);
    for (let i = 0; i < 1100; i++) await s.add(randomBytes(16), 1000);
    s.prune(2000);
    await s.compactIfLarge(); // the file is replaced (rename) under the open append handle
    const after = randomBytes(16);
    await s.add(after, FUTURE);
    await s.close();
    const late = randomBytes(16);
    await s.add(late, FUTURE); // a closed journal reopens the file
    await s.close();
    const again = await loaded(file);
    expect(again.has(after)).toBe(true);
    expect(again.has(late)).toBe(true);
  });

  it('cuts back a failed append, so the records after it are not lost behind half a record', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const first = randomBytes(16);
    await j.add(first, FUTURE);
    const size = (await stat(file)).size;
    // Damage the tail as a failed write would, behind the journal's back, then keep using it.
    await appendFile(file, Buffer.from([9, 9, 9]));
    await truncate(file, size + 3);
    (j as unknown as { torn: boolean }).torn = true;
    const second = randomBytes(16);
    await j.add(second, FUTURE);
    const again = await loaded(file);
    expect(again.has(first)).toBe(true);
    expect(again.has(second)).toBe(true);
  });
});

describe('journal appends, small and large', () => {
  it('writes small records from the event loop and large ones through the pool, in order, both read back', async () => {
    const file = await fresh();
    const j = await loaded(file);
    const large = new Uint8Array(200 * 1024).fill(7); // a long script in a request: over the synchronous-write size
    await j.begin({ ...step('small-1') }, randomBytes(16), FUTURE);
    await j.begin({ ...step('large'), request: large }, randomBytes(16), FUTURE);
    await j.begin({ ...step('small-2') }, randomBytes(16), FUTURE);
    const { written } = j.setResult(step('large').key, new Uint8Array([9]));
    await written;
    await j.written();
    const steps = await StepJournal.readSteps(file);
    expect(steps.map((s) => s.stepId)).toEqual(['small-1', 'large', 'small-2']);
    expect(Buffer.from(steps[1]!.request).equals(Buffer.from(large))).toBe(true);
    expect(steps[1]!.result).toEqual(new Uint8Array([9]));
    expect(decodeRecords(await readFile(file)).validBytes).toBe((await stat(file)).size);
    await j.close();
  });
});
