import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RefusalLog, RefusalThrottle, type RefusalRecord } from '../../coordinator/audit/refusal-log.js';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';

describe('refusal throttle (per user, action and rule)', () => {
  it.each([
    // burst, per minute, refusals at these seconds → which are recorded, with what suppressed count
    { burst: 2, perMinute: 2, at: [0, 0, 0, 0, 29, 30, 31], want: ['0', '0', '-', '-', '-', '3', '-'] },
    { burst: 1, perMinute: 1, at: [0, 1, 2, 60, 61, 200], want: ['0', '-', '-', '2', '-', '1'] },
    { burst: 3, perMinute: 60, at: [0, 0, 0, 0, 1, 1], want: ['0', '0', '0', '-', '1', '-'] },
  ])('burst $burst, $perMinute a minute: $at', ({ burst, perMinute, at, want }) => {
    const t = new RefusalThrottle({ burst, perMinute });
    const got = at.map((s) => {
      const a = t.admit('k', s * 1000);
      return a.record ? String(a.suppressed) : '-';
    });
    expect(got).toEqual(want);
  });

  it('keeps keys apart: one user\'s flood does not silence another user, action or rule', () => {
    const t = new RefusalThrottle({ burst: 1, perMinute: 1 });
    expect(t.admit('mallory/cancel/default-deny', 0).record).toBe(true);
    expect(t.admit('mallory/cancel/default-deny', 0).record).toBe(false);
    expect(t.admit('mallory/approve/default-deny', 0).record).toBe(true);
    expect(t.admit('mallory/cancel/two-person-rule', 0).record).toBe(true);
    expect(t.admit('alice/cancel/default-deny', 0).record).toBe(true);
  });
});

describe('refusal log over a real store', () => {
  let dir: string;
  let data: DataDir;
  let now = 1_800_000_000_000;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hr-refusals-'));
    data = await openDataDir(join(dir, 'data'), () => now);
  });
  afterEach(async () => {
    await data.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refusal = (i: number): RefusalRecord => ({ requestId: `req-${i}`, user: 'mallory', action: 'cancel', targetId: 'exe-1', runbookId: 'db-long', rule: 'default-deny', reason: 'no rule allows mallory to cancel db-long; default deny' });
  const refusedRecords = async (): Promise<Array<Record<string, unknown>>> =>
    (await data.db.all<{ payload: Buffer }>('SELECT payload FROM audit_records ORDER BY seq'))
      .map((r) => JSON.parse(r.payload.toString('utf8')) as { type: string; data: Record<string, unknown> })
      .filter((r) => r.type === 'request.refused')
      .map((r) => r.data);

  it('a flood of 1,000 refusals writes a bounded number of records, and the next one says how many it left out', async () => {
    const log = new RefusalLog(data.db, data.audit, pino({ level: 'silent' }), () => now, { burst: 3, perMinute: 3 });
    for (let i = 0; i < 1000; i++) log.record(refusal(i));
    await log.settled();
    let recs = await refusedRecords();
    expect(recs.map((r) => [r['requestId'], r['suppressed']])).toEqual([['req-0', 0], ['req-1', 0], ['req-2', 0]]);
    expect(recs[0]).toEqual({ ...refusal(0), suppressed: 0 });
    now += 20_000; // one token back
    log.record(refusal(1000));
    await log.settled();
    recs = await refusedRecords();
    expect(recs.at(-1)).toMatchObject({ requestId: 'req-1000', suppressed: 997 });
    expect(recs).toHaveLength(4);
  });
});
