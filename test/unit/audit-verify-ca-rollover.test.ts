/**
 * Verifying an audit log across a CA roll-over: real CAs made by `ca init` / `ca rotate` /
 * `ca switch` / `ca retire` (coordinator/pki) in a temp certs dir, real agent certificates from
 * each, and real signed records. The export carries every CA (allCaPems); the verifier trusts a
 * CA only when pinned or introduced by a signed ca.rotation_planned / ca.switched record.
 */
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerCas, pemToDer, type Bundle } from '../../coordinator/audit/bundle.js';
import { AuditEvents, auditEvent } from '../../coordinator/audit/events.js';
import { verifyBundle, type VerifyOptions, type VerifyReport } from '../../coordinator/audit/verify.js';
import { initCa, issueAgentCertificate, loadCa, makeCaCertificate, type CertificateAuthority } from '../../coordinator/pki/ca.js';
import { allCaPems, planCaRotation, retireCa, switchCa } from '../../coordinator/pki/ca-rollover.js';
import { auditKey, flipByte, LogBuilder, resign, T0, type TestAgent } from '../helpers/audit-fixture.js';

const KEY = auditKey(21);
const ROGUE = auditKey(22);
const CLI = { kind: 'cli' as const, id: 'root' };
const DAY = 86_400_000;

let dir: string;
let oldFp: string;
let newFp: string;
let foreignFp: string;
/** The CA certificates an export from the certs dir carries after `ca retire`, issuing CA first. */
let exportedCas: { ca: string; cas: string[] };
let foreignDer: string;
let oldAgent: TestAgent;
let newAgent: TestAgent;
let smuggled: TestAgent;
/** Events of the roll-over, as `ca rotate` and `ca switch` record them. */
let planned: ReturnType<typeof auditEvent>;
let switched: ReturnType<typeof auditEvent>;
let retired: ReturnType<typeof auditEvent>;

function agentOf(ca: CertificateAuthority, id: string): TestAgent {
  const { publicKey, privateKey }: { publicKey: KeyObject; privateKey: KeyObject } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const issued = issueAgentCertificate(ca, { commonName: id, publicKeyPem, publicKeyBits: 2048 }, id, { notBefore: T0 - DAY, notAfter: T0 + DAY });
  return { id, key: privateKey, serial: issued.serial, der: pemToDer(issued.pem).toString('base64') };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-ca-rollover-audit-'));
  await initCa({ certsDir: dir, now: T0 - 10 * DAY });
  const oldCa = await loadCa(dir);
  oldAgent = agentOf(oldCa, 'agt-old');
  const plan = await planCaRotation(dir, T0 - 9 * DAY);
  planned = auditEvent(AuditEvents.caRotationPlanned, CLI, { currentFingerprint256: plan.current.fingerprint256, nextFingerprint256: plan.next.fingerprint256, nextSubject: plan.next.subject, nextNotAfter: plan.next.notAfter, bundleVersion: plan.bundle.version });
  const sw = await switchCa(dir, T0 - 8 * DAY);
  switched = auditEvent(AuditEvents.caSwitched, CLI, { currentFingerprint256: sw.current.fingerprint256, previousFingerprint256: sw.previous.fingerprint256, bundleVersion: plan.bundle.version, serverNames: sw.sans, forced: false, agentsLacking: [] });
  const newCa = await loadCa(dir);
  newAgent = agentOf(newCa, 'agt-new');
  const ret = await retireCa(dir, T0 - 7 * DAY);
  retired = auditEvent(AuditEvents.caRetired, CLI, { retiredFingerprint256: ret.retired.fingerprint256, currentFingerprint256: sw.current.fingerprint256, bundleVersion: ret.bundle.version, forced: false, agentsLeftBehind: [] });
  oldFp = plan.current.fingerprint256;
  newFp = plan.next.fingerprint256;
  exportedCas = headerCas([newCa.caCertPem, ...(await allCaPems(dir))]);
  // A CA no roll-over record names, as someone editing the unsigned header would add it.
  const foreign = makeCaCertificate('Handrail', T0 - 10 * DAY, 3650);
  foreignDer = pemToDer(foreign.caCertPem).toString('base64');
  foreignFp = new X509Certificate(foreign.caCertPem).fingerprint256;
  const foreignCa = { caCert: foreign.caCert, caKey: foreign.caKeys.privateKey } as unknown as CertificateAuthority;
  smuggled = agentOf(foreignCa, 'agt-new');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A log across the roll-over: old-CA results, the roll-over records, new-CA results. */
function rolloverLog(opts: { withoutRolloverRecords?: boolean } = {}): { log: LogBuilder; seqOf: Record<string, number> } {
  const log = new LogBuilder(KEY);
  const seqOf: Record<string, number> = {};
  seqOf['oldResult'] = log.result(oldAgent, { executionId: 'exe-1', stepRunId: 'srn-1', stdout: 'old ca\n' }).seq;
  if (!opts.withoutRolloverRecords) seqOf['planned'] = log.append(planned).seq;
  seqOf['oldDuringOverlap'] = log.result(oldAgent, { executionId: 'exe-2', stepRunId: 'srn-2', stdout: 'overlap\n' }).seq;
  if (!opts.withoutRolloverRecords) seqOf['switched'] = log.append(switched).seq;
  seqOf['newResult'] = log.result(newAgent, { executionId: 'exe-3', stepRunId: 'srn-3', stdout: 'new ca\n' }).seq;
  if (!opts.withoutRolloverRecords) seqOf['retired'] = log.append(retired).seq;
  seqOf['newAfterRetire'] = log.result(newAgent, { executionId: 'exe-4', stepRunId: 'srn-4', stdout: 'after retire\n' }).seq;
  return { log, seqOf };
}

const check = (b: Bundle, opts: VerifyOptions = {}): Promise<VerifyReport> => verifyBundle(b, opts);
const pinOld: VerifyOptions = { trust: { keyIds: [KEY.kid], caFingerprints256: [] } };

describe('audit export and verify across a CA roll-over', () => {
  it('the certs dir keeps every CA after `ca retire`, and the export carries both (issuing CA first)', async () => {
    expect((await readdir(dir)).filter((f) => f.startsWith('ca-retired-'))).toHaveLength(1);
    const fps = exportedCas.cas.map((der) => new X509Certificate(Buffer.from(der, 'base64')).fingerprint256);
    expect(fps).toEqual([newFp, oldFp]);
    expect(new X509Certificate(Buffer.from(exportedCas.ca, 'base64')).fingerprint256).toBe(newFp);
  });

  it('verifies old-CA and new-CA results with the old CA pinned: the new CA is introduced by the signed rotation record', async () => {
    const { log, seqOf } = rolloverLog();
    const r = await check(log.bundle(exportedCas), { trust: { ...pinOld.trust, caFingerprint256: oldFp } });
    expect(r.firstBad).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.stepResults).toBe(4);
    expect(r.trust.cas).toEqual([
      { fingerprint256: oldFp, how: 'pinned', seq: null, event: null, by: null },
      { fingerprint256: newFp, how: 'rotation', seq: seqOf['planned'], event: 'ca.rotation_planned', by: oldFp },
    ]);
  });

  it('verifies with nothing pinned: the old CA on first use at the first result, the new one through the records', async () => {
    const { log, seqOf } = rolloverLog();
    const r = await check(log.bundle(exportedCas));
    expect(r.ok).toBe(true);
    expect(r.trust.cas).toEqual([
      { fingerprint256: oldFp, how: 'first-use', seq: seqOf['oldResult'], event: null, by: null },
      { fingerprint256: newFp, how: 'rotation', seq: seqOf['planned'], event: 'ca.rotation_planned', by: oldFp },
    ]);
  });

  it('verifies with both CAs pinned, and with the new CA pinned the switch record introduces the old one from there on', async () => {
    const { log } = rolloverLog();
    expect((await check(log.bundle(exportedCas), { trust: { caFingerprints256: [oldFp, newFp] } })).ok).toBe(true);
    // Pinned new CA only: the old CA's results before any roll-over record fail.
    const r = await check(log.bundle(exportedCas), { trust: { caFingerprint256: newFp } });
    expect(r.firstBad?.seq).toBe(1);
    expect(r.firstBad?.reason).toMatch(/was issued by CA .* which is not trusted: not pinned/);
  });

  it('fails when the ca.switched record is tampered with, re-signed with another key, or removed', async () => {
    const { log, seqOf } = rolloverLog();
    const at = seqOf['switched'] as number;
    const bundle = log.bundle(exportedCas);
    const flipped = { ...bundle, records: bundle.records.map((r) => (r.seq === at ? { ...r, payload: flipByte(r.payload, 40) } : r)) };
    expect((await check(flipped, { trust: { caFingerprint256: oldFp } })).firstBad).toEqual({ seq: at, reason: `coordinator signature does not verify with key ${KEY.kid}` });
    const rogueKey = { kid: ROGUE.kid, alg: 'ed25519' as const, spki: ROGUE.spki, created: new Date(T0).toISOString(), retired: null };
    const resigned = { ...bundle, header: { ...bundle.header, keys: [...bundle.header.keys, rogueKey] }, records: bundle.records.map((r) => (r.seq === at ? resign(r, () => undefined, ROGUE) : r)) };
    expect((await check(resigned, { trust: { caFingerprint256: oldFp } })).firstBad?.seq).toBe(at);
    const removed = { ...bundle, records: bundle.records.filter((r) => r.seq !== at) };
    expect((await check(removed, { trust: { caFingerprint256: oldFp } })).firstBad).toEqual({ seq: at + 1, reason: `expected record ${at} next, found ${at + 1}: record ${at} is missing` });
  });

  it('fails at the first new-CA result when no signed roll-over record introduces the new CA', async () => {
    const { log, seqOf } = rolloverLog({ withoutRolloverRecords: true });
    const at = seqOf['newResult'] as number;
    for (const opts of [{ trust: { caFingerprint256: oldFp } }, {}] as VerifyOptions[]) {
      const r = await check(log.bundle(exportedCas), opts);
      expect(r.ok).toBe(false);
      expect(r.firstBad?.seq).toBe(at);
      expect(r.firstBad?.reason).toContain(`the agent certificate ${newAgent.serial} was issued by CA ${newFp}, which is not trusted`);
      expect(r.firstBad?.reason).toContain('no ca.rotation_planned or ca.switched record signed with a trusted audit key introduces');
    }
  });

  it('fails a result whose certificate chains to a foreign CA the header smuggles in, pinned or not', async () => {
    const log = new LogBuilder(KEY);
    log.result(oldAgent, { executionId: 'exe-1', stepRunId: 'srn-1' });
    log.append(planned);
    log.append(switched);
    const at = log.result(smuggled, { executionId: 'exe-2', stepRunId: 'srn-2' }).seq;
    const bundle = log.bundle({ ca: exportedCas.ca, cas: [...exportedCas.cas, foreignDer] });
    for (const opts of [{ trust: { caFingerprint256: oldFp } }, {}] as VerifyOptions[]) {
      const r = await check(bundle, opts);
      expect(r.firstBad?.seq).toBe(at);
      expect(r.firstBad?.reason).toMatch(new RegExp(`^the agent certificate ${smuggled.serial} was issued by CA ${foreignFp}, which is not trusted`));
      expect(r.trust.cas.map((c) => c.fingerprint256)).toEqual([oldFp, newFp]);
    }
    // The same foreign CA as the header's own `ca` is not trusted either when the old CA is pinned.
    const asCa = await check(log.bundle({ ca: foreignDer, cas: [foreignDer, ...exportedCas.cas] }), { trust: { caFingerprint256: oldFp } });
    expect(asCa.firstBad?.seq).toBe(at);
  });

  it('a pinned CA the bundle does not carry fails the bundle as a whole', async () => {
    const { log } = rolloverLog();
    const r = await check(log.bundle(exportedCas), { trust: { caFingerprint256: foreignFp } });
    expect(r.firstBad).toEqual({ seq: null, reason: `none of the bundle's CA certificates (${newFp}, ${oldFp}) is a trusted CA (${foreignFp})` });
  });
});
