/**
 * `handrail audit verify` and friends, run in this process: the flags that say what a bundle
 * must hold (--range, --execution), what to trust (--trust-key, --trust-ca-fingerprint,
 * --trust-file), where the store is (--data-dir, --db), and what the report prints.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, BundleCheckpoint } from '../../coordinator/audit/bundle.js';
import { AuditEvents, auditEvent } from '../../coordinator/audit/events.js';
import { openDataDir } from '../../coordinator/data-dir.js';
import { main } from '../../cli/main.js';
import { auditKey, bundleText, checkpointLine, filler, LogBuilder, rewrite, T0, testPki } from '../helpers/audit-fixture.js';

const KEY = auditKey(7);
const NEXT = auditKey(11);
const ROGUE = auditKey(9);

let dir: string;
let full: Bundle;
let cp358: BundleCheckpoint;
let caFingerprint: string;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, now: () => T0 + 7_200_000 });
  return { code, out, err };
}

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-audit-cli-'));
  // A whole log of 358 records; its checkpoint of record 358 is kept outside the bundle.
  const log = new LogBuilder(KEY);
  for (let i = 0; i < 358; i++) log.append(filler(i));
  cp358 = log.checkpoint();
  full = log.bundle();
  caFingerprint = new X509Certificate(Buffer.from(testPki().caDer, 'base64')).fingerprint256;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('audit verify: what the bundle must hold', () => {
  /** Cut from 358 to 300 records, its checkpoint lines dropped, relabelled in the unsigned header as a range export. */
  const relabelled = (): Bundle => ({
    ...full,
    records: full.records.slice(0, 300),
    checkpoints: [],
    header: { ...full.header, selection: { from: null, to: new Date(T0 + 299_000).toISOString(), execution: null }, toHead: false },
  });

  it('fails a full export cut to 300 records and relabelled as a range, against a checkpoint of record 358', async () => {
    const bundle = await file('relabelled.jsonl', bundleText(relabelled()));
    const cps = await file('cps.jsonl', checkpointLine(cp358) + '\n');
    const r = await cli(['audit', 'verify', bundle, '--checkpoints', cps]);
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.out).toMatch(/^FAILED at the log as a whole: log truncated: a checkpoint signed at .* covers record 358, but the log ends at 300\n/);
    expect(r.out).toMatch(/\nhint: the bundle's header \(not signed\) says this is a range export \(records 1\.\.300\): verify it with --range 1\.\.300 only if you exported exactly that range\n/);
  });

  it('verifies it as the range 1..300 when that is asked for, and names the checkpoint past its end', async () => {
    const bundle = await file('relabelled.jsonl', bundleText(relabelled()));
    const cps = await file('cps.jsonl', checkpointLine(cp358) + '\n');
    const r = await cli(['audit', 'verify', bundle, '--checkpoints', cps, '--range', '1..300']);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^OK: 300 records \(seq 1\.\.300, the range 1\.\.300 asked for\)/);
    expect(r.out).toContain(`WARNING: a checkpoint from --checkpoints (signed at ${new Date(T0 + 3_600_000).toISOString()}) covers record 358, past the end of the range 1..300: not checked`);
    const json = await cli(['audit', 'verify', bundle, '--checkpoints', cps, '--range', '1..300', '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, scope: 'range', expected: { kind: 'range', from: 1, to: 300 }, unchecked: [{ seq: 358, external: true }] });
    // A range to the head of the log is not excused a missing tail.
    expect((await cli(['audit', 'verify', bundle, '--checkpoints', cps, '--range', '1..'])).code).toBe(1);
  });

  it('verifies a legitimate range export only as that range', async () => {
    const range: Bundle = { ...full, records: full.records.slice(99, 200), checkpoints: [], header: { ...full.header, first: { seq: 100, prev: 'x' }, toHead: false } };
    const bundle = await file('range.jsonl', bundleText(range));
    const asked = await cli(['audit', 'verify', bundle, '--range', '100..200']);
    expect(asked.code, asked.out).toBe(0);
    expect(asked.out).toMatch(/^OK: 101 records \(seq 100\.\.200, the range 100\.\.200 asked for\)/);
    const unasked = await cli(['audit', 'verify', bundle]);
    expect(unasked.code).toBe(1);
    expect(unasked.out).toMatch(/^FAILED at record 100: expected record 1 next, found 100: records 1-99 are missing\nhint: .*--range 100\.\.200/);
    expect((await cli(['audit', 'verify', bundle, '--range', '100..250'])).out).toMatch(/^FAILED at the log as a whole: the bundle ends at record 200, but the range asked for runs to 250/);
  });

  it.each([
    [['--range', '5-9'], /--range "5-9" is not a range of record numbers/],
    [['--range', '9..5'], /--range "9..5" is not a range/],
    [['--range', '0..5'], /--range "0..5" is not a range/],
    [['--range', '1..2', '--execution', 'exe-1'], /either --range or --execution/],
  ])('refuses %j as bad usage (exit 2)', async (args, message) => {
    const bundle = await file('whole.jsonl', bundleText(full));
    const r = await cli(['audit', 'verify', bundle, ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe('audit verify: what is trusted', () => {
  it('trusts the first key on first use and says so, with the flags that pin it', async () => {
    const r = await cli(['audit', 'verify', await file('whole.jsonl', bundleText(full))]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`\ntrusted audit key ${KEY.kid} (unpinned, trusted on first use at record 1: pass --trust-key ${KEY.kid} to pin)\n`);
    expect(r.out).toContain(`\ntrusted CA ${caFingerprint} (unpinned: pass --trust-ca-fingerprint ${caFingerprint} to pin)\n`);
    const json = JSON.parse((await cli(['audit', 'verify', await file('whole.jsonl', bundleText(full)), '--json'])).out) as { trust: unknown };
    expect(json.trust).toEqual({ keys: [{ kid: KEY.kid, how: 'first-use', seq: 1, by: null }], ca: { fingerprint256: caFingerprint, pinned: false }, cas: [] });
  });

  it('rejects a tail re-signed with a new key listed in the header, naming the first re-signed record', async () => {
    const tampered: Bundle = {
      ...full,
      header: { ...full.header, keys: [...full.header.keys, { kid: ROGUE.kid, alg: 'ed25519', spki: ROGUE.spki, created: new Date(T0).toISOString(), retired: null }] },
      records: rewrite(full.records, 301, () => undefined, ROGUE),
      checkpoints: [],
    };
    const r = await cli(['audit', 'verify', await file('resigned.jsonl', bundleText(tampered))]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAILED at record 301: signed with key ${ROGUE.kid}, which is not trusted`));
    expect(r.out).toContain(`trusted audit key ${KEY.kid} (unpinned`);
  });

  it('follows a legitimate rotation, and pins keys and the CA from flags or a trust file', async () => {
    const log = new LogBuilder(KEY);
    log.append(filler(0));
    log.append(auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'audit', previousKeyId: KEY.kid, keyId: NEXT.kid }));
    log.rotate(NEXT);
    log.append(filler(1));
    const bundle = await file('rotated.jsonl', bundleText(log.bundle()));
    const pinned = await cli(['audit', 'verify', bundle, '--trust-key', KEY.kid, '--trust-ca-fingerprint', caFingerprint]);
    expect(pinned.code, pinned.out).toBe(0);
    expect(pinned.out).toContain(`\ntrusted audit key ${KEY.kid} (pinned)\ntrusted audit key ${NEXT.kid} (introduced at record 2 by a key.rotated record signed with ${KEY.kid})\ntrusted CA ${caFingerprint} (pinned)\n`);
    const trustFile = await file('trust.txt', `# audit keys and CA of prod\n${KEY.kid}\n${caFingerprint.replace(/:/g, '').toLowerCase()}  # the CA\n`);
    expect((await cli(['audit', 'verify', bundle, '--trust-file', trustFile])).code).toBe(0);
  });

  it.each([
    ['a wrong pinned key', () => ['--trust-key', ROGUE.kid], new RegExp(`^FAILED at record 1: signed with key ${KEY.kid}, which is not trusted: not pinned`)],
    ['a wrong CA fingerprint', () => ['--trust-ca-fingerprint', 'AB'.repeat(32)], /^FAILED at the log as a whole: the bundle's CA certificate \(.*\) is not the trusted CA/],
  ])('fails with %s', async (_name, args, message) => {
    const r = await cli(['audit', 'verify', await file('whole.jsonl', bundleText(full)), ...args()]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(message);
  });

  it.each([
    [['--trust-key', 'K1'], /--trust-key "K1" is not an audit key id/],
    [['--trust-ca-fingerprint', 'AA:BB'], /--trust-ca-fingerprint "AA:BB" is not a SHA-256 fingerprint/],
  ])('refuses %j as bad usage (exit 2)', async (args, message) => {
    const r = await cli(['audit', 'verify', await file('whole.jsonl', bundleText(full)), ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('names the line of a trust file that holds neither a key id nor a fingerprint', async () => {
    const trustFile = await file('bad-trust.txt', `${KEY.kid}\nsomething else\n`);
    const r = await cli(['audit', 'verify', await file('whole.jsonl', bundleText(full)), '--trust-file', trustFile]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bad-trust\.txt:2: "something else" is neither an audit key id/);
  });

  it('documents the flags in --help', async () => {
    const r = await cli(['audit', 'verify', '--help']);
    for (const flag of ['--range FROM..TO', '--execution ID', '--trust-key KEYID', '--trust-ca-fingerprint SHA256', '--trust-file FILE', '--data-dir DIR']) expect(r.out).toContain(flag);
  });
});

describe('audit verify --data-dir', () => {
  let dataDir: string;
  let certsDir: string;
  beforeAll(async () => {
    dataDir = join(dir, 'data');
    certsDir = join(dir, 'certs');
    const data = await openDataDir(dataDir, () => T0);
    try {
      await data.db.write((tx) => data.audit.append(tx, [filler(0), filler(1), filler(2)]));
    } finally {
      await data.close();
    }
    await mkdir(certsDir, { recursive: true });
    await writeFile(join(certsDir, 'ca.pem'), testPki().caPem);
  });

  it('verifies the store in a data dir, as every other admin command names it', async () => {
    const r = await cli(['audit', 'verify', '--data-dir', dataDir, '--certs-dir', certsDir]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/^OK: 3 records \(seq 1\.\.3\)/);
  });

  it('keeps --db working, with a deprecation warning', async () => {
    const r = await cli(['audit', 'verify', '--db', dataDir, '--certs-dir', certsDir]);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.err).toMatch(/--db is deprecated; use --data-dir/);
  });

  it('says where it looked when there is no store', async () => {
    const r = await cli(['audit', 'verify', '--data-dir', join(dir, 'nowhere'), '--certs-dir', certsDir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no Handrail store at .*nowhere\/handrail\.db/);
  });

  it('a rotation made with `audit rotate-key` is signed with the retiring key, so the new key is trusted through it', async () => {
    const rot = await cli(['audit', 'rotate-key', '--data-dir', dataDir]);
    expect(rot.code, rot.err).toBe(0);
    const data = await openDataDir(dataDir, () => T0 + 1000);
    try {
      await data.db.write((tx) => data.audit.append(tx, filler(3)));
    } finally {
      await data.close();
    }
    const r = await cli(['audit', 'verify', '--data-dir', dataDir, '--certs-dir', certsDir, '--json']);
    expect(r.code, r.out).toBe(0);
    const report = JSON.parse(r.out) as { records: number; trust: { keys: Array<{ how: string; seq: number | null }> } };
    expect(report.records).toBe(5);
    expect(report.trust.keys.map((k) => [k.how, k.seq])).toEqual([['first-use', 1], ['rotation', 4]]);
  });
});
