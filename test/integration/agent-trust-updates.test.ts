import { randomBytes } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { spawnCli, type Proc } from '../helpers/processes.js';
import { certFor, foreignCa, keySet, loadCa, newDispatchKey, parseCsr, realDispatchKey, rsaPublicKeyPem, wire, type CertificateAuthority, type DispatchKey } from '../helpers/forged-pki.js';
import { signEnvelope } from '../../core/envelope.js';
import { CA_SIGNER } from '../../core/dispatch-key-set.js';
import { STEP_REQUEST_TYPE, type StepRequest } from '../../core/step.js';
import { StateDir } from '../../agent/state-dir.js';
import { decodeStepResult, encodeStepRequest } from '../../proto/codec/step-codec.js';
import { RejectReason } from '../../proto/gen/handrail/v1/gateway.js';

/**
 * An attacker who holds only the coordinator's server TLS key runs a fake coordinator and waits
 * for a real agent's certificate renewal. Whatever it answers — a foreign CA's certificate,
 * another agent's, an expired one, dispatch keys unsigned or signed by a key the agent does not
 * trust — the agent keeps its identity and keys byte for byte, reports why, and still refuses
 * the attacker's steps. A properly signed rotation and a genuine renewal are taken.
 */
describe('what an agent trusts changes only through statements signed by what it trusts', () => {
  let fleet: Fleet;
  let fake: FakeCoordinator;
  let agent: Proc;
  let agentId: string;
  let otherCertPem: string;
  let realCa: CertificateAuthority;
  let attackerCa: CertificateAuthority;
  let real: DispatchKey;
  let version: number;
  let csrKeyPem: string;
  const attacker = newDispatchKey('dispatch-a77ac4e7a77ac4e7');
  const state = (): StateDir => new StateDir(join(fleet.dir, 'agent-target'));
  const identityFiles = async (): Promise<string[]> => Promise.all([state().credentialsFile, state().identityFile, state().caFile].map((f) => readFile(f, 'utf8')));

  const startAgentAgainstFake = async (): Promise<Proc> => {
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', state().root, '--log-level', 'debug', '--allow-adhoc']);
    await fake.waitFor('hello', () => true);
    return p;
  };

  let refusalsSeen = 0;
  /** The agent's next report that it refused a trust update. */
  const nextRefusal = async (what: 'certificate' | 'dispatch_keys'): Promise<string> => {
    const n = refusalsSeen++;
    const all = (): Array<{ what: string; reason: string }> => fake.received.flatMap((m) => (m.$case === 'trustRefused' ? [m.value] : []));
    await fake.waitFor('trustRefused', () => all().length > n);
    const r = all()[n]!;
    expect(r.what).toBe(what);
    return r.reason;
  };

  const request = (over: Partial<StepRequest> = {}): StepRequest => ({
    executionId: 'exe-trust',
    stepId: `sr-${randomBytes(4).toString('hex')}`,
    agentId,
    argv: ['true'],
    script: undefined,
    env: {},
    workingDir: '',
    timeoutMs: 30_000,
    issuedAtMs: Date.now(),
    notAfterMs: Date.now() + 60_000,
    nonce: randomBytes(16),
    runbookId: '',
    runbookOwner: '',
    maxOutputBytes: 65536,
    ...over,
  });
  const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('target');
    agentId = await fleet.waitOnline('target');
    await fleet.startAgent('other');
    await fleet.waitOnline('other');
    await fleet.agents.get('target')!.proc.stop();
    await fleet.agents.get('other')!.proc.stop();
    otherCertPem = (await new StateDir(join(fleet.dir, 'agent-other')).readCredentials()).certPem;
    realCa = await loadCa(fleet.certsDir);
    attackerCa = await foreignCa();
    const identity = await state().readIdentity();
    expect(identity.dispatchKeys).toHaveLength(1);
    expect(identity.dispatchKeySetVersion).toBeGreaterThan(0);
    version = identity.dispatchKeySetVersion!;
    real = await realDispatchKey(fleet.dataDir, identity.dispatchKeys[0]!.keyId);
    // Put the agent in its renewal window now (five sixths of its lifetime gone, ten minutes
    // left), with a certificate from the real CA for its own key: no waiting for the clock.
    const creds = await state().readCredentials();
    const now = Date.now();
    const pub = (await import('node:crypto')).createPublicKey(creds.privateKey).export({ type: 'spki', format: 'pem' }).toString();
    await state().writeCredentials(creds.keyPem, certFor(realCa, pub, agentId, { notBefore: now - 50 * 60_000, notAfter: now + 10 * 60_000 }));
    fake = await FakeCoordinator.start(fleet.certsDir);
    agent = await startAgentAgainstFake();
    const renew = await fake.waitFor('renew', () => true);
    csrKeyPem = parseCsr(renew.csrPem).publicKeyPem;
  });
  afterAll(async () => {
    await agent?.stop();
    await fake?.close();
    await fleet?.close();
  });

  it('refuses forged renewal answers and keeps its identity and keys on disk, byte for byte', async () => {
    const before = await identityFiles();
    const now = Date.now();
    const hour = { notBefore: now - 60_000, notAfter: now + 3_600_000 };
    // The attack as reported: a foreign-CA certificate for the agent's new key, and the attacker's key as the only dispatch key.
    fake.sendMessage({
      $case: 'renewed',
      value: { certificatePem: certFor(attackerCa, csrKeyPem, agentId, hour), dispatchKeys: [{ keyId: attacker.keyId, publicKeyPem: attacker.publicKeyPem }], dispatchKeySet: wire(keySet(version + 1, [attacker], [{ signer: attacker.keyId, privateKey: attacker.privateKey }])), caBundle: undefined },
    });
    expect(await nextRefusal('certificate')).toMatch(/not issued by the pinned CA/);
    expect(await nextRefusal('dispatch_keys')).toMatch(/not signed by a trusted dispatch key/);

    const certificates: Array<[string, string, RegExp]> = [
      ['another agent’s real certificate', otherCertPem, /names "agt-[0-9a-z]+", not this agent/],
      ['an expired one from the real CA', certFor(realCa, csrKeyPem, agentId, { notBefore: now - 7_200_000, notAfter: now - 3_600_000 }), /expired/],
      ['one not yet valid', certFor(realCa, csrKeyPem, agentId, { notBefore: now + 86_400_000, notAfter: now + 2 * 86_400_000 }), /in the future/],
      ['one for another key', certFor(realCa, rsaPublicKeyPem(), agentId, hour), /another key/],
      ['the pinned CA’s own certificate', realCa.caCertPem, /not issued by the pinned CA|CA certificate/],
      ['two certificates', certFor(realCa, csrKeyPem, agentId, hour) + otherCertPem, /exactly one PEM certificate/],
      ['garbage', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /does not parse/],
    ];
    for (const [label, certificatePem, why] of certificates) {
      fake.sendMessage({ $case: 'renewed', value: { certificatePem, dispatchKeys: [], dispatchKeySet: undefined, caBundle: undefined } });
      expect(await nextRefusal('certificate'), label).toMatch(why);
    }

    const tampered = keySet(version + 1, [real, attacker], [{ signer: real.keyId, privateKey: real.privateKey }]);
    const flipped = Buffer.from(tampered.payload);
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 1;
    const sets: Array<[string, ReturnType<typeof keySet>, RegExp]> = [
      ['unsigned', keySet(version + 1, [attacker], []), /not signed/],
      ['signed by an unknown key under the trusted key’s id', keySet(version + 1, [attacker], [{ signer: real.keyId, privateKey: attacker.privateKey }]), /not signed by a trusted dispatch key/],
      ['signed by the CA alone, without --allow-ca-key-recovery', keySet(version + 1, [attacker], [{ signer: CA_SIGNER, privateKey: realCa.caKey }]), /--allow-ca-key-recovery/],
      ['an older version signed by the trusted key', keySet(1, [real, attacker], [{ signer: real.keyId, privateKey: real.privateKey }]), /older than the trusted version/],
      ['the trusted version with other keys', keySet(version, [attacker], [{ signer: real.keyId, privateKey: real.privateKey }]), /trusted version .* other keys/],
      ['changed after signing', { payload: flipped, signatures: tampered.signatures }, /not signed by a trusted dispatch key|malformed/],
    ];
    for (const [label, set, why] of sets) {
      fake.sendMessage({ $case: 'dispatchKeys', value: wire(set) });
      expect(await nextRefusal('dispatch_keys'), label).toMatch(why);
    }
    expect(await identityFiles()).toEqual(before);
    expect(agent.events('agent.renewed')).toHaveLength(0);
    expect(agent.events('agent.dispatch_keys_updated')).toHaveLength(0);

    // The attacker's steps are still refused, under its own key id and under the trusted one.
    const ran = join(fleet.dir, `ran-attacker-${randomBytes(4).toString('hex')}`);
    const r1 = request({ argv: ['touch', ran] });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(r1), attacker));
    expect((await fake.waitFor('rejected', (r) => r.stepId === r1.stepId)).reason).toBe(RejectReason.REJECT_REASON_UNKNOWN_KEY);
    const r2 = request({ argv: ['touch', ran] });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(r2), { keyId: real.keyId, privateKey: attacker.privateKey }));
    expect((await fake.waitFor('rejected', (r) => r.stepId === r2.stepId)).reason).toBe(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    // A step signed by the trusted key still runs (the checks above can fail).
    const r3 = request({ argv: ['touch', ran + '-control'] });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(r3), real));
    expect(decodeStepResult((await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === r3.stepId)).payload).status).toBe('succeeded');
    fake.ack(r3.executionId, r3.stepId);
    expect(await exists(ran)).toBe(false);
    expect(await exists(ran + '-control')).toBe(true);
  });

  it('takes a rotation signed by its trusted key, then one signed by the new key, and a genuine renewal', async () => {
    const next = newDispatchKey('dispatch-0e7ed15c0e7ed15c');
    fake.sendMessage({ $case: 'dispatchKeys', value: wire(keySet(version + 1, [real, next], [{ signer: real.keyId, privateKey: real.privateKey }])) });
    await agent.waitForLog((l) => l.event === 'agent.dispatch_keys_updated' && l['version'] === version + 1);
    expect((await state().readIdentity()).dispatchKeys.map((k) => k.keyId).sort()).toEqual([real.keyId, next.keyId].sort());
    const byNew = request();
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(byNew), next));
    expect(decodeStepResult((await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === byNew.stepId)).payload).status).toBe('succeeded');
    fake.ack(byNew.executionId, byNew.stepId);

    // The old key is dropped by a set the new key signed: a step under the old key is now refused.
    fake.sendMessage({ $case: 'dispatchKeys', value: wire(keySet(version + 2, [next], [{ signer: next.keyId, privateKey: next.privateKey }])) });
    await agent.waitForLog((l) => l.event === 'agent.dispatch_keys_updated' && l['version'] === version + 2);
    const byOld = request();
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(byOld), real));
    expect((await fake.waitFor('rejected', (r) => r.stepId === byOld.stepId)).reason).toBe(RejectReason.REJECT_REASON_UNKNOWN_KEY);
    expect((await state().readIdentity()).dispatchKeySetVersion).toBe(version + 2);

    const now = Date.now();
    const genuine = certFor(realCa, csrKeyPem, agentId, { notBefore: now - 60_000, notAfter: now + 3_600_000 });
    fake.sendMessage({ $case: 'renewed', value: { certificatePem: genuine, dispatchKeys: [], dispatchKeySet: undefined, caBundle: undefined } });
    await agent.waitForLog((l) => l.event === 'agent.renewed');
    expect((await state().readCredentials()).certPem.trim()).toBe(genuine.trim());
  });
});

describe('replay log across a crash', () => {
  let fleet: Fleet;
  let fake: FakeCoordinator;
  let agent: Proc | undefined;
  let agentId: string;
  let real: DispatchKey;
  const stateDir = (): string => join(fleet.dir, 'agent-crash');
  const startAgentAgainstFake = async (): Promise<Proc> => {
    const hellos = fake.received.filter((m) => m.$case === 'hello').length;
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', stateDir(), '--log-level', 'debug', '--allow-adhoc']);
    await fake.waitFor('hello', () => fake.received.filter((m) => m.$case === 'hello').length > hellos);
    return p;
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('crash');
    agentId = await fleet.waitOnline('crash');
    await fleet.agents.get('crash')!.proc.stop();
    const identity = await new StateDir(stateDir()).readIdentity();
    real = await realDispatchKey(fleet.dataDir, identity.dispatchKeys[0]!.keyId);
    fake = await FakeCoordinator.start(fleet.certsDir);
  });
  afterAll(async () => {
    await agent?.stop();
    await fake?.close();
    await fleet?.close();
  });

  it('refuses the envelope of a step that was running when the agent was killed with SIGKILL', async () => {
    agent = await startAgentAgainstFake();
    const runs = join(fleet.dir, 'runs.txt');
    const req: StepRequest = {
      executionId: 'exe-crash',
      stepId: `sr-${randomBytes(4).toString('hex')}`,
      agentId,
      argv: ['sh', '-c', `echo run >> '${runs}'; exec sleep 120`],
      script: undefined,
      env: {},
      workingDir: '',
      timeoutMs: 300_000,
      issuedAtMs: Date.now(),
      notAfterMs: Date.now() + 300_000,
      nonce: randomBytes(16),
      runbookId: '',
      runbookOwner: '',
      maxOutputBytes: 65536,
    };
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), real);
    fake.send(env);
    await fake.waitFor('accepted', (a) => a.stepId === req.stepId);
    await agent.waitForLog((l) => l.event === 'step.accepted' && l['stepRunId'] === req.stepId);
    await agent.stop('SIGKILL');

    agent = await startAgentAgainstFake();
    // The restarted agent reports the interrupted step (and kills what it left running) …
    const recovered = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    expect(decodeStepResult(recovered.payload).status).toBe('error');
    fake.ack(req.executionId, req.stepId);
    // … and the same envelope, replayed, is refused: its nonce survived the crash.
    fake.send(env);
    const rejected = await fake.waitFor('rejected', (r) => r.stepId === req.stepId);
    expect(rejected.reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    expect((await readFile(runs, 'utf8')).trim().split('\n')).toEqual(['run']);
    await writeFile(runs, '');
  });

  it('acknowledges no key set to a coordinator that did not say it reads acknowledgements (older ones end the stream)', () => {
    // The fake welcomes without accepts_dispatch_keys_held, and the agent took sets from it above.
    expect(fake.received.filter((m) => m.$case === 'dispatchKeysHeld')).toEqual([]);
  });
});
