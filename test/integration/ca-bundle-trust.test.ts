import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { spawnCli, type Proc } from '../helpers/processes.js';
import { caBundle, foreignCa, wireCaBundle, type CertificateAuthority } from '../helpers/forged-pki.js';
import { caSignerName, splitPems, type SignedCaBundle } from '../../core/ca-bundle.js';
import { StateDir } from '../../agent/state-dir.js';

/**
 * What CAs an agent trusts changes only through a CA bundle signed by a CA it trusts, newer
 * than its own, that keeps the CA of its own certificate. A fake coordinator holding only the
 * server TLS key (and whatever else an attacker can make) pushes bundles over a real mTLS
 * stream to a real agent process: each is refused, reported, and the agent's trust files stay
 * byte for byte what they were. The genuine bundle is taken, and after it no older one.
 */
describe('an agent takes a CA bundle only when a CA it trusts signed it', () => {
  let fleet: Fleet;
  let fake: FakeCoordinator;
  let agent: Proc;
  let realCaPem: string;
  let nextCaPem: string;
  let realSigner: { caPem: string; privateKey: ReturnType<typeof createPrivateKey> };
  let nextSigner: { caPem: string; privateKey: ReturnType<typeof createPrivateKey> };
  let attacker: CertificateAuthority;
  let version: number;
  const state = (): StateDir => new StateDir(join(fleet.dir, 'agent-bundled'));
  const trustFiles = async (): Promise<string[]> => Promise.all([state().caFile, state().identityFile, state().credentialsFile].map((f) => readFile(f, 'utf8')));

  let refusalsSeen = 0;
  /** Sends a bundle and returns the reason of the agent's next refusal. */
  const refusalOf = async (bundle: SignedCaBundle): Promise<string> => {
    const n = refusalsSeen++;
    fake.sendMessage({ $case: 'caBundle', value: wireCaBundle(bundle) });
    const all = (): Array<{ what: string; reason: string }> => fake.received.flatMap((m) => (m.$case === 'trustRefused' ? [m.value] : []));
    await fake.waitFor('trustRefused', () => all().length > n);
    const r = all()[n]!;
    expect(r.what).toBe('ca_bundle');
    return r.reason;
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('bundled');
    await fleet.waitOnline('bundled');
    await fleet.agents.get('bundled')!.proc.stop();
    const r = await fleet.admin(['ca', 'rotate', '--certs-dir', fleet.certsDir]);
    expect(r.code, r.stderr).toBe(0);
    realCaPem = await readFile(join(fleet.certsDir, 'ca.pem'), 'utf8');
    nextCaPem = await readFile(join(fleet.certsDir, 'ca-next.pem'), 'utf8');
    realSigner = { caPem: realCaPem, privateKey: createPrivateKey(await readFile(join(fleet.certsDir, 'ca.key'), 'utf8')) };
    nextSigner = { caPem: nextCaPem, privateKey: createPrivateKey(await readFile(join(fleet.certsDir, 'ca-next.key'), 'utf8')) };
    version = (JSON.parse(await readFile(join(fleet.certsDir, 'ca-bundle.json'), 'utf8')) as { version: number }).version;
    attacker = await foreignCa();
    await fleet.coordinator!.proc.stop();
    // The fake holds what an attacker who stole the server TLS key holds: server.pem, server.key, ca.pem.
    fake = await FakeCoordinator.start(fleet.certsDir, { acceptsCaBundleHeld: true });
    agent = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', state().root, '--log-level', 'debug', '--allow-adhoc']);
    await fake.waitFor('hello', () => true);
  });
  afterAll(async () => {
    await agent?.stop();
    await fake?.close();
    await fleet?.close();
  });

  it('refuses bundles a CA it trusts did not sign, and changes no file', async () => {
    const before = await trustFiles();
    const serverKey = createPrivateKey(await readFile(join(fleet.certsDir, 'server.key'), 'utf8'));
    const genuine = caBundle(version, [realCaPem, nextCaPem], [realSigner, nextSigner]);
    const flipped = Buffer.from(genuine.payload);
    flipped[flipped.length - 40] = (flipped[flipped.length - 40] as number) ^ 1;
    const cases: Array<[string, SignedCaBundle, RegExp]> = [
      ['unsigned', caBundle(version, [realCaPem, attacker.caCertPem], []), /not signed/],
      ['signed by a foreign CA (which it adds)', caBundle(version, [realCaPem, attacker.caCertPem], [{ caPem: attacker.caCertPem, privateKey: attacker.caKey }]), /not signed by a CA this agent trusts/],
      ['signed with the stolen server.key under the real CA’s signer name', { ...caBundle(version, [realCaPem, attacker.caCertPem], [{ caPem: realCaPem, privateKey: serverKey }]) }, /not signed by a CA this agent trusts/],
      ['signed by the next CA alone (not trusted yet)', caBundle(version, [realCaPem, nextCaPem], [nextSigner]), /not signed by a CA this agent trusts/],
      ['changed after signing', { payload: flipped, signatures: genuine.signatures }, /not signed by a CA this agent trusts|malformed/],
    ];
    expect(caSignerName(realCaPem)).toMatch(/^ca:[0-9a-f]{64}$/);
    for (const [label, bundle, why] of cases) expect(await refusalOf(bundle), label).toMatch(why);
    expect(await trustFiles()).toEqual(before);
    expect(agent.events('agent.ca_bundle_updated')).toHaveLength(0);
    expect(fake.received.filter((m) => m.$case === 'caBundleHeld')).toEqual([]);
  });

  it('refuses a properly signed bundle that holds something other than root CAs, or drops the CA of its certificate', async () => {
    const before = await trustFiles();
    const ownCert = (await state().readCredentials()).certPem;
    const cases: Array<[string, SignedCaBundle, RegExp]> = [
      ['its own agent certificate as a CA', caBundle(version, [realCaPem, ownCert], [realSigner]), /is not a CA certificate/],
      ['the same CA twice', caBundle(version, [realCaPem, realCaPem], [realSigner]), /twice/],
      ['no CA at all', caBundle(version, [], [realSigner]), /names no CA/],
      ['the next CA alone, before retirement', caBundle(version, [nextCaPem], [realSigner, nextSigner]), /drops the CA that issued this agent's certificate/],
    ];
    for (const [label, bundle, why] of cases) expect(await refusalOf(bundle), label).toMatch(why);
    expect(await trustFiles()).toEqual(before);
  });

  it('takes the genuine bundle, writes it before use, and then refuses an older one or the same version with other CAs', async () => {
    const files = await trustFiles();
    fake.sendMessage({ $case: 'caBundle', value: wireCaBundle(caBundle(version, [realCaPem, nextCaPem], [realSigner, nextSigner])) });
    await agent.waitForLog((l) => l.event === 'agent.ca_bundle_updated' && l['version'] === version);
    const held = await fake.waitFor('caBundleHeld', (h) => h.version === version);
    expect(held.fingerprints).toHaveLength(2);
    expect(splitPems(await readFile(state().caFile, 'utf8'))).toHaveLength(2);
    expect((await state().readIdentity()).caBundleVersion).toBe(version);
    // Its identity (key and certificate) did not move.
    expect(await readFile(state().credentialsFile, 'utf8')).toBe(files[2]);

    const after = await trustFiles();
    const cases: Array<[string, SignedCaBundle, RegExp]> = [
      ['an older version (rollback to the CA alone)', caBundle(version - 1, [realCaPem], [realSigner]), /older than the trusted version/],
      ['the trusted version with the attacker’s CA', caBundle(version, [realCaPem, attacker.caCertPem], [realSigner]), /trusted version .* other CAs/],
    ];
    for (const [label, bundle, why] of cases) expect(await refusalOf(bundle), label).toMatch(why);
    expect(await trustFiles()).toEqual(after);
  });
});
