import { createHash, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, BundleCheckpoint, BundleItem, BundleRecord } from '../../coordinator/audit/bundle.js';
import { AuditEvents, auditEvent } from '../../coordinator/audit/events.js';
import { sealCheckpoint } from '../../coordinator/audit/record.js';
import { AuditVerifier, verifyBundle, verifyInThread, type VerifyOptions, type VerifyReport } from '../../coordinator/audit/verify.js';
import { verifyItems } from '../../coordinator/audit/verify-stream.js';
import { SignaturePool, workerVerifier } from '../../coordinator/audit/verify-workers.js';
import { auditKey, filler, flipByte, LogBuilder, resign, rewrite, T0, testPki, type AuditKey } from '../helpers/audit-fixture.js';

const KEY = auditKey(7);
const ROGUE = auditKey(9);

/**
 * The base log: 12 records; agent a's result at seq 4 (with stdout and stderr), agent b's at
 * seq 7; a checkpoint of seq 12 kept outside the bundle.
 */
let base: Bundle;
let external: BundleCheckpoint;

function build(): { log: LogBuilder; external: BundleCheckpoint } {
  const { a, b } = testPki();
  const log = new LogBuilder(KEY);
  for (let i = 0; i < 3; i++) log.append(filler(i));
  log.result(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'hello\n', stderr: 'warn\n' });
  log.append(filler(3));
  log.append(filler(4));
  log.result(b, { executionId: 'exe-1', stepRunId: 'sr-2', stdout: 'b out\n' });
  for (let i = 5; i < 10; i++) log.append(filler(i));
  const cp = log.checkpoint();
  log.checkpoints.length = 0;
  return { log, external: cp };
}

beforeAll(() => {
  const built = build();
  base = built.log.bundle();
  external = built.external;
});

const withRecords = (b: Bundle, records: BundleRecord[]): Bundle => ({ ...b, records });
const mapRecord = (b: Bundle, seq: number, f: (r: BundleRecord) => BundleRecord): Bundle => withRecords(b, b.records.map((r) => (r.seq === seq ? f(r) : r)));
const check = (b: Bundle, opts: VerifyOptions & { externalCheckpoints?: BundleCheckpoint[] } = {}): Promise<VerifyReport> => verifyBundle(b, opts);

describe('offline verification of a sound log', () => {
  it('passes, with counts', async () => {
    const r = await check(base, { externalCheckpoints: [external] });
    expect(r.firstBad).toBeUndefined();
    expect(r).toMatchObject({ ok: true, scope: 'full', records: 12, firstSeq: 1, lastSeq: 12, stepResults: 2, outputsChecked: 4, checkpoints: 1, keysUsed: [KEY.kid] });
    expect(r.caFingerprint256).toBe(new X509Certificate(Buffer.from(testPki().caDer, 'base64')).fingerprint256);
  });

  it('passes across an audit key rotation, naming both keys', async () => {
    const log = new LogBuilder(KEY);
    log.append(filler(0));
    log.append(auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'audit', previousKeyId: KEY.kid, keyId: ROGUE.kid }));
    log.rotate(ROGUE);
    log.append(filler(1));
    log.result(testPki().a, { executionId: 'exe-9', stepRunId: 'sr-9', stdout: 'after rotation\n' });
    const r = await check(log.bundle(), { externalCheckpoints: [log.checkpoint()] });
    expect(r.firstBad).toBeUndefined();
    expect(r.keysUsed).toEqual([KEY.kid, ROGUE.kid]);
  });

  it('passes with trust anchors that match, and says which scope it proved', async () => {
    const ca = new X509Certificate(Buffer.from(testPki().caDer, 'base64')).fingerprint256;
    expect((await check(base, { trust: { keyIds: [KEY.kid], caFingerprint256: ca } })).ok).toBe(true);
  });
});

type Case = [name: string, make: () => { bundle: Bundle; opts?: VerifyOptions & { externalCheckpoints?: BundleCheckpoint[] } }, seq: number | null, reason: RegExp];

const CASES: Case[] = [
  ['one byte of a record changed', () => ({ bundle: mapRecord(base, 5, (r) => ({ ...r, payload: flipByte(r.payload, r.payload.indexOf('"ts"') + 8) })) }), 5, /^coordinator signature does not verify with key audit-/],
  ['one byte of a signature changed', () => ({ bundle: mapRecord(base, 9, (r) => ({ ...r, sig: flipByte(r.sig, 0) })) }), 9, /^coordinator signature does not verify/],
  ['one byte of stored stdout changed', () => ({ bundle: { ...base, outputs: new Map([...base.outputs, ['sr-1', { stdout: Buffer.from('hellO\n'), stderr: Buffer.from('warn\n') }]]) } }), 4, /^stored stdout does not match the SHA-256 the agent signed/],
  ['stored stderr cut short', () => ({ bundle: { ...base, outputs: new Map([...base.outputs, ['sr-1', { stdout: Buffer.from('hello\n'), stderr: Buffer.from('wa') }]]) } }), 4, /^stored stderr is 2 bytes; the agent signed for 5/],
  ['the output of a result missing', () => ({ bundle: { ...base, outputs: new Map([...base.outputs].filter(([k]) => k !== 'sr-2')) } }), 7, /^stored stdout is 0 bytes; the agent signed for 6/],
  ['a record deleted', () => ({ bundle: withRecords(base, base.records.filter((r) => r.seq !== 6)) }), 7, /^expected record 6 next, found 7: record 6 is missing$/],
  ['two records swapped', () => {
    const rs = [...base.records];
    [rs[7], rs[8]] = [rs[8] as BundleRecord, rs[7] as BundleRecord];
    return { bundle: withRecords(base, rs) };
  }, 9, /^expected record 8 next, found 9: record 8 is missing$/],
  ['the first records deleted (the header still says a whole log)', () => ({ bundle: withRecords(base, base.records.slice(2)) }), 3, /^expected record 1 next, found 3: records 1-2 are missing$/],
  ['a record moved to another seq on its line', () => ({ bundle: withRecords(base, base.records.map((r) => (r.seq === 3 ? { ...base.records[9]!, seq: 3 } : r))) }), 3, /coordinator signature does not verify|says seq 10/],
  ['the tail truncated, against a checkpoint kept elsewhere', () => ({ bundle: withRecords(base, base.records.slice(0, 10)), opts: { externalCheckpoints: [external] } }), null, /^log truncated: a checkpoint signed at .* covers record 12, but the log ends at 10$/],
  ['a record rewritten and the log re-signed with the real key, against a checkpoint', () => ({
    bundle: withRecords(base, rewrite(base.records, 6, (b) => ((b['actor'] as Record<string, string>)['id'] = 'someone-else'), KEY)),
    opts: { externalCheckpoints: [external] },
  }), 12, /^record 12 does not match the checkpoint signed at .* \(rewritten\?\)$/],
  ['a result replaced by one signed with another agent\'s key (log re-signed)', () => {
    const { a, b } = testPki();
    return {
      bundle: withRecords(base, rewrite(base.records, 4, (body) => {
        // Agent b signs a result that claims to be agent a's, naming a's certificate.
        const forged = new LogBuilder(KEY).result(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'hello\n', stderr: 'warn\n', signer: b, recordSerial: a.serial });
        body['data'] = (JSON.parse(forged.payload.toString()) as { data: unknown }).data;
      }, KEY)),
    };
  }, 4, /^agent signature does not verify with agt-a's certificate 7F/],
  ['a result signed with another agent\'s certificate but attributed to agent a', () => {
    const { a, b } = testPki();
    return {
      bundle: withRecords(base, rewrite(base.records, 4, (body) => {
        const forged = new LogBuilder(KEY).result(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'hello\n', stderr: 'warn\n', signer: b });
        body['data'] = (JSON.parse(forged.payload.toString()) as { data: unknown }).data;
      }, KEY)),
    };
  }, 4, /^result attributed to agent agt-a but certificate 7F[0-9A-F]+ belongs to agt-b$/],
  ['a result from a certificate another CA issued', () => {
    const { a, impostor } = testPki();
    const log = new LogBuilder(KEY);
    log.append(filler(0));
    log.result(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'x', signer: impostor });
    return { bundle: log.bundle() };
  }, 2, /^the agent certificate 7F[0-9A-F]+ was not issued by the CA$/],
  ['a result signed after its certificate expired', () => {
    const { a, aExpired } = testPki();
    const log = new LogBuilder(KEY);
    log.result(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'x', signer: aExpired });
    return { bundle: log.bundle() };
  }, 1, /^the result \(finished 2026-11-23T05:00:01.000Z\) was signed outside certificate 7F[0-9A-F]+'s validity$/],
  ['a result whose certificate is not in the bundle', () => ({ bundle: { ...base, header: { ...base.header, agentCertificates: base.header.agentCertificates.filter((c) => c.agentId !== 'agt-b') } } }), 7, /^the agent certificate 7F[0-9A-F]+ is not in the bundle$/],
  ['a result summary that differs from what the agent signed (log re-signed)', () => ({
    bundle: withRecords(base, rewrite(base.records, 4, (b) => ((b['data'] as Record<string, unknown>)['exitCode'] = 1), KEY)),
  }), 4, /^the record says succeeded\/1, the agent signed succeeded\/0$/],
  ['a record re-signed with an unknown key', () => ({ bundle: mapRecord(base, 3, (r) => resign(r, (b) => (b['actor'] = { kind: 'user', id: 'someone-else' }), ROGUE)) }), 3, new RegExp(`^signed with an unknown key ${ROGUE.kid}$`)],
  ['the whole log re-signed with a key the verifier does not trust', () => {
    const log = new LogBuilder(ROGUE);
    log.append(filler(0));
    return { bundle: log.bundle(), opts: { trust: { keyIds: [KEY.kid] } } };
  }, 1, new RegExp(`^signed with key ${ROGUE.kid}, which is not trusted: not pinned`)],
  ['a header key swapped under a real key id', () => ({ bundle: { ...base, header: { ...base.header, keys: [{ ...base.header.keys[0]!, spki: ROGUE.spki }] } } }), null, /is not the key that id names/],
  ['a CA other than the trusted one', () => ({ bundle: base, opts: { trust: { caFingerprint256: 'AA:BB' } } }), null, /is not the trusted CA \(AA:BB\)$/],
  ['a checkpoint with a bad signature', () => ({ bundle: base, opts: { externalCheckpoints: [{ ...external, sig: flipByte(external.sig, 3) }] } }), null, /^an external checkpoint's signature does not verify/],
  ['a checkpoint signed with an unknown key', () => ({ bundle: base, opts: { externalCheckpoints: [{ ...external, kid: ROGUE.kid }] } }), null, /^an external checkpoint is signed with an unknown key/],
];

describe('offline verification names the first bad record', () => {
  it.each(CASES)('%s', async (_name, make, seq, reason) => {
    const { bundle, opts } = make();
    const r = await check(bundle, opts);
    expect(r.ok).toBe(false);
    expect(r.firstBad?.reason).toMatch(reason);
    expect(r.firstBad?.seq).toBe(seq);
  });

  it('reports the earliest of several problems', async () => {
    let b = mapRecord(base, 9, (r) => ({ ...r, sig: flipByte(r.sig, 0) }));
    b = { ...b, outputs: new Map([...b.outputs, ['sr-2', { stdout: Buffer.from('B out\n'), stderr: Buffer.alloc(0) }]]) };
    const r = await check(b);
    expect(r.firstBad).toEqual({ seq: 7, reason: expect.stringMatching(/^stored stdout does not match/) as unknown });
  });

  it('accepts a truncated tail on its own: only a checkpoint kept elsewhere shows it', async () => {
    expect((await check(withRecords(base, base.records.slice(0, 10)))).ok).toBe(true);
  });
});

describe('partial exports', () => {
  const hashOf = (r: BundleRecord): string => createHash('sha256').update(r.payload).digest('hex');

  it('a range verifies, links to the record before it, and is checked against a checkpoint of that record', async () => {
    const built = build();
    const log = built.log;
    const before = log.records[3] as BundleRecord;
    // A checkpoint taken when the log ended at seq 4, the record just before the range.
    const cp4 = sealCheckpoint(4, hashOf(before), T0, KEY);
    const cpBefore: BundleCheckpoint = { kid: KEY.kid, payload: cp4.payload, sig: cp4.signature };
    const range: Bundle = {
      header: log.header({ selection: { from: new Date(T0 + 4000).toISOString(), to: new Date(T0 + 9000).toISOString(), execution: null }, first: { seq: 5, prev: hashOf(before) }, toHead: false }),
      records: log.records.slice(4, 10),
      outputs: new Map([['sr-2', { stdout: Buffer.from('b out\n'), stderr: Buffer.alloc(0) }]]),
      checkpoints: [],
    };
    const asked = { expect: { kind: 'range', from: 5, to: 10 } } as const;
    const ok = await check(range, { ...asked, externalCheckpoints: [cpBefore, built.external] });
    expect(ok.firstBad).toBeUndefined();
    expect(ok).toMatchObject({ ok: true, scope: 'range', records: 6, firstSeq: 5, lastSeq: 10, stepResults: 1 });
    // The checkpoint of record 12 covers a record the range lacks: reported, not failed (the range was asked for).
    expect(ok.unchecked).toEqual([{ seq: 12, ts: expect.any(String) as unknown, external: true, reason: 'past the end of the range 5..10' }]);
    // The first record's signed link, not the header, is checked against the checkpoint of record 4.
    const relinked = await check(withRecords(range, rewrite(range.records, 5, (b) => (b['prev'] = 'ab'.repeat(32)), KEY)), { ...asked, externalCheckpoints: [cpBefore] });
    expect(relinked.firstBad?.seq).toBe(5);
    expect(relinked.firstBad?.reason).toMatch(/^record 5 links to abab.*, but the checkpoint signed at .* says record 4 hashes to/);
    const gap = await check(withRecords(range, range.records.filter((r) => r.seq !== 8)), asked);
    expect(gap.firstBad).toEqual({ seq: 9, reason: 'expected record 8 next, found 9: record 8 is missing' });
    // Without the range asked for, the same bundle is a log missing its first four records.
    const unasked = await check(range);
    expect(unasked.firstBad).toEqual({ seq: 5, reason: 'expected record 1 next, found 5: records 1-4 are missing' });
    expect(unasked.hint).toMatch(/header \(not signed\) says this is a range export .* --range 5\.\.10/);
  });

  it('one execution\'s records verify as a selection: only its records, in order, adjacent links checked', async () => {
    const sel = { ...base, header: { ...base.header, selection: { from: null, to: null, execution: 'exe-1' }, toHead: false } };
    const asked = { expect: { kind: 'execution', executionId: 'exe-1' } } as const;
    const pick = (...seqs: number[]): BundleRecord[] => seqs.map((n) => base.records[n - 1]!);
    const ok = await check(withRecords(sel, pick(2, 4, 7)), { ...asked, externalCheckpoints: [external] });
    expect(ok.firstBad).toBeUndefined();
    expect(ok).toMatchObject({ ok: true, scope: 'selection', records: 3, stepResults: 2 });
    expect(ok.unchecked.map((u) => u.seq)).toEqual([12]);
    const foreign = await check(withRecords(sel, pick(2, 3, 4)), asked);
    expect(foreign.firstBad).toEqual({ seq: 3, reason: 'record 3 is not a record of execution exe-1 (its executionId is "exe-2")' });
    const none = await check(withRecords(sel, pick(4, 5)), asked);
    expect(none.firstBad).toEqual({ seq: 5, reason: 'record 5 is not a record of execution exe-1 (it has no executionId)' });
    const reordered = await check(withRecords(sel, pick(2, 7, 4)), asked);
    expect(reordered.firstBad).toEqual({ seq: 4, reason: 'record 4 is out of order (it follows 7)' });
    const moved = resign(base.records[2]!, (b) => ((b['data'] as Record<string, unknown>)['executionId'] = 'exe-1'), KEY);
    const broken = await check(withRecords(sel, [base.records[1]!, moved, base.records[3]!]), asked);
    expect(broken.firstBad?.seq).toBe(4);
    expect(broken.firstBad?.reason).toMatch(/^hash chain broken/);
    const unasked = await check(withRecords(sel, pick(2, 4, 7)));
    expect(unasked.ok).toBe(false);
    expect(unasked.hint).toMatch(/--execution exe-1/);
  });
});

describe('a bundle\'s unsigned claims about its own scope prove nothing (truncation)', () => {
  // A whole log of 358 records, with a checkpoint of record 358 kept outside the bundle.
  let full: Bundle;
  let cp358: BundleCheckpoint;
  beforeAll(() => {
    const log = new LogBuilder(KEY);
    for (let i = 0; i < 358; i++) log.append(filler(i));
    cp358 = log.checkpoint();
    log.checkpoints.length = 0;
    full = log.bundle();
  });
  /** Cut to 300 records, its checkpoint lines dropped, and relabelled in the header as a range export. */
  const relabelled = (): Bundle => ({
    ...full,
    records: full.records.slice(0, 300),
    checkpoints: [],
    header: { ...full.header, selection: { from: null, to: new Date(T0 + 299_000).toISOString(), execution: null }, toHead: false },
  });

  it('a full export cut to 300 records and relabelled as a range fails against the checkpoint of record 358', async () => {
    const r = await check(relabelled(), { externalCheckpoints: [cp358] });
    expect(r).toMatchObject({ ok: false, scope: 'full', records: 300, firstSeq: 1, lastSeq: 300 });
    expect(r.firstBad).toEqual({ seq: null, reason: expect.stringMatching(/^log truncated: a checkpoint signed at .* covers record 358, but the log ends at 300$/) as unknown });
    expect(r.hint).toMatch(/only if you exported exactly that range/);
  });

  it('relabelling the header to start mid-log does not excuse the missing head of the log', async () => {
    const b = relabelled();
    const r = await check({ ...b, records: b.records.slice(58), header: { ...b.header, first: { seq: 59, prev: createHash('sha256').update(b.records[57]!.payload).digest('hex') } } });
    expect(r.firstBad).toEqual({ seq: 59, reason: 'expected record 1 next, found 59: records 1-58 are missing' });
  });

  it('verifies as a range only when that range is asked for, and names the checkpoint it could not check', async () => {
    const r = await check(relabelled(), { externalCheckpoints: [cp358], expect: { kind: 'range', from: 1, to: 300 } });
    expect(r.firstBad).toBeUndefined();
    expect(r).toMatchObject({ ok: true, scope: 'range', records: 300, expected: { kind: 'range', from: 1, to: 300 } });
    expect(r.unchecked).toEqual([{ seq: 358, ts: new Date(T0 + 3_600_000).toISOString(), external: true, reason: 'past the end of the range 1..300' }]);
  });

  it('a range asked for up to the head still fails against a checkpoint past its end', async () => {
    const r = await check(relabelled(), { externalCheckpoints: [cp358], expect: { kind: 'range', from: 1, to: null } });
    expect(r.firstBad?.reason).toMatch(/^log truncated: a checkpoint signed at .* covers record 358, but the log ends at 300$/);
  });

  type RangeCase = [name: string, from: number, to: number | null, firstBad: { seq: number | null; reason: string }];
  const RANGE_CASES: RangeCase[] = [
    ['ends before the range asked for', 1, 358, { seq: null, reason: 'the bundle ends at record 300, but the range asked for runs to 358: records 301-358 are missing' }],
    ['runs past the range asked for', 1, 200, { seq: 201, reason: 'record 201 is past the end of the range asked for (1..200)' }],
    ['starts before the range asked for', 2, 300, { seq: 1, reason: 'record 1 is before the start of the range asked for (2..300)' }],
    ['starts after the range asked for', 1, 300, { seq: 2, reason: 'expected record 1 next, found 2: record 1 is missing' }],
  ];
  it.each(RANGE_CASES)('a bundle that %s fails', async (name, from, to, firstBad) => {
    const b = relabelled();
    const bundle = name.startsWith('starts after') ? withRecords(b, b.records.slice(1)) : b;
    const r = await check(bundle, { expect: { kind: 'range', from, to } });
    expect(r.firstBad).toEqual(firstBad);
  });
});

describe('audit key trust', () => {
  const rogueEntry = { kid: ROGUE.kid, alg: 'ed25519' as const, spki: ROGUE.spki, created: new Date(T0).toISOString(), retired: null };
  const rotation = (from: AuditKey, to: AuditKey) => auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'audit', previousKeyId: from.kid, keyId: to.kid });

  it('rejects a tail re-signed with a new key that the unsigned header lists, naming the first re-signed record', async () => {
    const tampered: Bundle = { ...base, header: { ...base.header, keys: [...base.header.keys, rogueEntry] }, records: rewrite(base.records, 8, () => undefined, ROGUE) };
    const r = await check(tampered);
    expect(r.firstBad).toEqual({ seq: 8, reason: `signed with key ${ROGUE.kid}, which is not trusted: the chain starts with ${KEY.kid} (trusted on first use) and no key.rotated record signed by a trusted key introduces ${ROGUE.kid}` });
    expect(r.trust.keys).toEqual([{ kid: KEY.kid, how: 'first-use', seq: 1, by: null }]);
  });

  it('trusts a key introduced by a key.rotated record signed with the previous key, and says how it trusted each', async () => {
    const log = new LogBuilder(KEY);
    log.append(filler(0));
    log.append(rotation(KEY, ROGUE));
    log.rotate(ROGUE);
    log.append(filler(1));
    const r = await check(log.bundle(), { externalCheckpoints: [log.checkpoint()] });
    expect(r.firstBad).toBeUndefined();
    expect(r.trust.keys).toEqual([
      { kid: KEY.kid, how: 'first-use', seq: 1, by: null },
      { kid: ROGUE.kid, how: 'rotation', seq: 2, by: KEY.kid },
    ]);
    const pinned = await check(log.bundle(), { trust: { keyIds: [KEY.kid] } });
    expect(pinned.firstBad).toBeUndefined();
    expect(pinned.trust.keys).toEqual([
      { kid: KEY.kid, how: 'pinned', seq: null, by: null },
      { kid: ROGUE.kid, how: 'rotation', seq: 2, by: KEY.kid },
    ]);
  });

  it('refuses a key.rotated record signed with the key it introduces', async () => {
    const log = new LogBuilder(KEY);
    log.append(filler(0));
    log.rotate(ROGUE);
    log.append(rotation(KEY, ROGUE));
    log.append(filler(1));
    const r = await check(log.bundle());
    expect(r.firstBad?.seq).toBe(2);
    expect(r.firstBad?.reason).toMatch(new RegExp(`^signed with key ${ROGUE.kid}, which is not trusted: .*this key.rotated record introduces it but is signed with it`));
  });

  it('a rotation record signed with a trusted key is honoured only for audit keys', async () => {
    const log = new LogBuilder(KEY);
    log.append(auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'dispatch', previousKeyId: null, keyId: ROGUE.kid }));
    log.rotate(ROGUE);
    log.append(filler(1));
    expect((await check(log.bundle())).firstBad?.seq).toBe(2);
  });

  it('with pinned keys the chain must start with one: a wrong pin fails at the first record', async () => {
    const r = await check(base, { trust: { keyIds: [ROGUE.kid] } });
    expect(r.firstBad).toEqual({ seq: 1, reason: `signed with key ${KEY.kid}, which is not trusted: not pinned (trusted: ${ROGUE.kid}) and no key.rotated record signed by a trusted key introduces it` });
    expect(r.trust.keys).toEqual([{ kid: ROGUE.kid, how: 'pinned', seq: null, by: null }]);
  });

  it('a checkpoint must be signed with a trusted key', async () => {
    const cp = sealCheckpoint(12, createHash('sha256').update(base.records[11]!.payload).digest('hex'), T0, ROGUE);
    const r = await check({ ...base, header: { ...base.header, keys: [...base.header.keys, rogueEntry] } }, { externalCheckpoints: [{ kid: ROGUE.kid, payload: cp.payload, sig: cp.signature }] });
    expect(r.firstBad).toEqual({ seq: null, reason: `an external checkpoint is signed with key ${ROGUE.kid}, which is not trusted` });
  });

  it('says whether the CA was pinned', async () => {
    const fp = new X509Certificate(Buffer.from(testPki().caDer, 'base64')).fingerprint256;
    expect((await check(base)).trust.ca).toEqual({ fingerprint256: fp, pinned: false });
    expect((await check(base, { trust: { caFingerprint256: fp.replace(/:/g, '').toLowerCase() } })).trust.ca).toEqual({ fingerprint256: fp, pinned: true });
    const wrong = await check(base, { trust: { caFingerprint256: 'AB'.repeat(32) } });
    expect(wrong.firstBad).toEqual({ seq: null, reason: `the bundle's CA certificate (${fp}) is not the trusted CA (${'AB'.repeat(32)})` });
  });
});

describe('signature verdicts computed elsewhere', () => {
  let big: Bundle;
  let tampered: Bundle;
  beforeAll(() => {
    const log = new LogBuilder(KEY);
    for (let i = 0; i < 5000; i++) {
      if (i % 500 === 250) log.result(testPki().a, { executionId: `exe-${i}`, stepRunId: `sr-${i}`, stdout: `line ${i}\n` });
      else log.append(filler(i));
    }
    big = log.bundle();
    tampered = mapRecord(big, 4321, (r) => ({ ...r, sig: flipByte(r.sig, 10) }));
  });

  it('a worker pool gives the same verdicts as this thread', async () => {
    const keys = new Map([[KEY.kid, KEY.spki]]);
    const items = tampered.records.slice(4000, 4500);
    const pool = new SignaturePool(keys, 2);
    try {
      expect(pool.threads).toBe(2);
      const [fromPool, unknown] = await Promise.all([pool.verify(items), pool.verify([{ ...items[0]!, kid: 'audit-nope' }])]);
      expect(Array.from(fromPool, (v) => v === 1)).toEqual(await verifyInThread(keys, items));
      expect(fromPool[320]).toBe(0); // seq 4321
      expect(fromPool.filter((v) => v === 1)).toHaveLength(499);
      expect(unknown[0]).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('streams through the pool and stops signature work at the first bad record', async () => {
    async function* items(b: Bundle): AsyncGenerator<BundleItem> {
      yield { t: 'header', header: b.header };
      for (const r of b.records) yield { t: 'record', record: r };
      for (const [id, o] of b.outputs) {
        yield { t: 'output', stepRunId: id, stream: 'stdout', data: o.stdout };
        yield { t: 'output', stepRunId: id, stream: 'stderr', data: o.stderr };
      }
    }
    const ok = await verifyItems(items(big), { threads: 2, batchSize: 256 });
    expect(ok).toMatchObject({ ok: true, records: 5000, stepResults: 10, outputsChecked: 20 });
    const bad = await verifyItems(items(tampered), { threads: 2, batchSize: 256 });
    expect(bad.firstBad).toEqual({ seq: 4321, reason: expect.stringMatching(/^coordinator signature does not verify/) as unknown });
    expect(bad.records).toBe(5000);
    const viaWorkers = await verifyBundle(tampered, { verifier: workerVerifier(2) });
    expect(viaWorkers.firstBad).toEqual(bad.firstBad);
  });

  it('the checker takes precomputed verdicts and believes them', () => {
    const v = new AuditVerifier(base.header);
    base.records.forEach((r) => v.record(r, r.seq !== 3));
    expect(v.settled).toBe(true);
    expect(v.report().firstBad?.seq).toBe(3);
  });
});

// Keys used by the fixtures above: a fixed seed gives a fixed key id.
it('fixture keys come from fixed seeds', () => {
  const again: AuditKey = auditKey(7);
  expect(again.kid).toBe(KEY.kid);
  expect(KEY.kid).toMatch(/^audit-[0-9a-f]{16}$/);
});

describe('bundle lines', () => {
  const line = (payload: string, sig = Buffer.alloc(64, 1).toString('base64')): string => JSON.stringify({ t: 'record', seq: 5, kid: 'audit-1', payload, sig });
  const good = Buffer.from('{"v":1}').toString('base64');
  it('parses a record line into its bytes', async () => {
    const { parseBundleLine } = await import('../../coordinator/audit/bundle.js');
    const item = parseBundleLine(line(good), 3);
    expect(item).toMatchObject({ t: 'record', record: { seq: 5, kid: 'audit-1' } });
  });
  it.each([
    ['a character outside the alphabet', good.slice(0, 2) + '*' + good.slice(3)],
    ['missing padding', good.replace(/=+$/, '')],
    ['whitespace inside', good.slice(0, 4) + ' ' + good.slice(4)],
    ['a URL-safe alphabet', Buffer.from([0xfb, 0xff, 0xbf]).toString('base64url')],
  ])('refuses base64 with %s, naming the line', async (_name, payload) => {
    const { parseBundleLine } = await import('../../coordinator/audit/bundle.js');
    expect(payload).not.toBe(good);
    expect(() => parseBundleLine(line(payload), 3)).toThrow(/^line 3: payload is not base64$/);
  });
});
