import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { access, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { spawnCli, type Proc } from '../helpers/processes.js';
import { signEnvelope } from '../../core/envelope.js';
import { STEP_REQUEST_TYPE, type StepRequest } from '../../core/step.js';
import { decodeStepResult, encodeStepRequest } from '../../proto/codec/step-codec.js';
import { RejectReason } from '../../proto/gen/handrail/v1/gateway.js';

/**
 * A real agent (enrolled at a real coordinator) talks to a stand-in coordinator that sends
 * forged, misaddressed, expired, replayed and policy-violating steps. The agent must refuse
 * each one and say why — and not run it: every step here would create a marker file if it ran.
 */
describe('the agent refuses steps it must not run', () => {
  let fleet: Fleet;
  let fake: FakeCoordinator;
  let agent: Proc;
  let agentId: string;
  let key: { keyId: string; privateKey: ReturnType<typeof createPrivateKey> };
  const stateDir = (): string => join(fleet.dir, 'agent-target');

  const startAgentAgainstFake = async (extra: string[] = []): Promise<Proc> => {
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', stateDir(), '--log-level', 'debug', '--kill-grace', '1s', ...extra]);
    await fake.waitFor('hello', () => true);
    return p;
  };

  const request = (over: Partial<StepRequest> = {}): StepRequest => ({
    executionId: 'exe-test',
    stepId: `sr-${randomBytes(4).toString('hex')}`,
    agentId,
    argv: ['echo', 'ran'],
    script: undefined,
    env: {},
    workingDir: '',
    timeoutMs: 10_000,
    issuedAtMs: Date.now(),
    notAfterMs: Date.now() + 60_000,
    nonce: randomBytes(16),
    runbookId: 'diagnostics-bundle',
    runbookOwner: 'team-sre',
    maxOutputBytes: 65536,
    ...over,
  });

  const rejection = async (stepId: string): Promise<{ reason: RejectReason; detail: string }> => fake.waitFor('rejected', (r) => r.stepId === stepId);

  /** A fresh path under the test dir; a step `touch`ing it leaves a trace if it ever runs. */
  const marker = (label: string): string => join(fleet.dir, `ran-${label}-${randomBytes(4).toString('hex')}`);
  const touch = (path: string): Partial<StepRequest> => ({ argv: ['touch', path] });
  const exists = (path: string): Promise<boolean> => access(path).then(
    () => true,
    () => false,
  );
  /** After the refusal: give a step that ran anyway time to show, then check it did not. */
  const expectNeverRan = async (...paths: string[]): Promise<void> => {
    await new Promise((r) => setTimeout(r, 300));
    for (const p of paths) expect(await exists(p), `${p} exists: the refused step ran`).toBe(false);
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('target');
    agentId = await fleet.waitOnline('target');
    await fleet.agents.get('target')!.proc.stop();
    const dir = join(fleet.dataDir, 'keys', 'dispatch');
    const file = (await readdir(dir)).find((f) => f.endsWith('.key'))!;
    key = { keyId: file.replace(/\.key$/, ''), privateKey: createPrivateKey(await readFile(join(dir, file), 'utf8')) };
    fake = await FakeCoordinator.start(fleet.certsDir);
    await writeFile(join(fleet.dir, 'local-policy.yaml'), 'allowAdhoc: false\nrunbooks:\n  ids: ["diagnostics-*"]\n');
    agent = await startAgentAgainstFake(['--local-policy', join(fleet.dir, 'local-policy.yaml')]);
  });
  afterAll(async () => {
    await agent?.stop();
    await fake?.close();
    await fleet?.close();
  });

  it('runs a correctly signed step (control case)', async () => {
    const ran = marker('control');
    const req = request(touch(ran));
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
    const signed = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    expect(decodeStepResult(signed.payload).status).toBe('succeeded');
    // the marker check the refusals rely on does see a step that ran
    expect(await exists(ran)).toBe(true);
  });

  it('refuses a bad signature', async () => {
    const ran = marker('bad-signature');
    const req = request(touch(ran));
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    const sig = Buffer.from(env.signature);
    sig[0] = (sig[0] as number) ^ 0xff;
    fake.send({ ...env, signature: sig });
    const r = await rejection(req.stepId);
    expect(r.reason).toBe(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    await expectNeverRan(ran);
  });

  it('refuses a payload changed after signing', async () => {
    const signedRan = marker('as-signed');
    const evilRan = marker('changed');
    const req = request(touch(signedRan));
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    const evil = encodeStepRequest({ ...req, argv: ['touch', evilRan] });
    fake.send({ ...env, payload: evil });
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    await expectNeverRan(evilRan, signedRan);
  });

  it('refuses a key it does not trust', async () => {
    const ran = marker('unknown-key');
    const ran2 = marker('rogue-key');
    const req = request(touch(ran));
    const rogue = generateKeyPairSync('ed25519').privateKey;
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), { keyId: 'dispatch-0000000000000000', privateKey: rogue }));
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_UNKNOWN_KEY);
    const req2 = request(touch(ran2));
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req2), { keyId: key.keyId, privateKey: rogue }));
    expect((await rejection(req2.stepId)).reason).toBe(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    await expectNeverRan(ran, ran2);
  });

  it("refuses a step addressed to another agent", async () => {
    const ran = marker('wrong-target');
    const req = request({ agentId: 'agt-someoneelse', ...touch(ran) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
    const r = await rejection(req.stepId);
    expect(r.reason).toBe(RejectReason.REJECT_REASON_WRONG_TARGET);
    expect(r.detail).toContain('agt-someoneelse');
    await expectNeverRan(ran);
  });

  it('refuses an expired step', async () => {
    const ran = marker('expired');
    const req = request({ issuedAtMs: Date.now() - 120_000, notAfterMs: Date.now() - 60_000, ...touch(ran) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_EXPIRED);
    await expectNeverRan(ran);
  });

  it('refuses a replayed step, also after the agent restarts', async () => {
    const ran = marker('replayed');
    const req = request(touch(ran));
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    fake.send(env);
    await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    fake.ack(req.executionId, req.stepId);
    // the first delivery ran; remove its trace so a second run would show
    expect(await exists(ran)).toBe(true);
    await rm(ran);
    await new Promise((r) => setTimeout(r, 300));
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await expectNeverRan(ran);
    // same envelope, new agent process: the nonce log survives restarts
    await agent.stop();
    fake.received.length = 0;
    agent = await startAgentAgainstFake(['--local-policy', join(fleet.dir, 'local-policy.yaml')]);
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await expectNeverRan(ran);
  });

  it('refuses what its local policy does not allow, even when correctly signed', async () => {
    const adhocRan = marker('adhoc');
    const otherRan = marker('other-runbook');
    const adhoc = request({ runbookId: '', runbookOwner: '', ...touch(adhocRan) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(adhoc), key));
    const r = await rejection(adhoc.stepId);
    expect(r.reason).toBe(RejectReason.REJECT_REASON_POLICY);
    expect(r.detail).toMatch(/ad-hoc/);
    const other = request({ runbookId: 'restart-web', ...touch(otherRan) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(other), key));
    expect((await rejection(other.stepId)).reason).toBe(RejectReason.REJECT_REASON_POLICY);
    await expectNeverRan(adhocRan, otherRan);
  });

  it('refuses a signed payload that is not a step request', async () => {
    // a whole step request, then field 1 length-delimited with a length far past the end: cannot decode
    const junkRan = marker('junk');
    const junk = Buffer.concat([encodeStepRequest(request(touch(junkRan))), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])]);
    fake.send(signEnvelope(STEP_REQUEST_TYPE, junk, key));
    const r = await fake.waitFor('rejected', (x) => x.reason === RejectReason.REJECT_REASON_MALFORMED);
    expect(r.detail.length).toBeGreaterThan(0);
    const typeRan = marker('payload-type');
    fake.send(signEnvelope('application/json', encodeStepRequest(request(touch(typeRan))), key));
    await fake.waitFor('rejected', (x) => x.reason === RejectReason.REJECT_REASON_MALFORMED && /payload type/.test(x.detail));
    await expectNeverRan(junkRan, typeRan);
  });
  // Last: it stops the agent.
  it('turns new steps away while it shuts down, and runs none of them', async () => {
    // A kill grace long enough that the shutdown window cannot close before the step arrives on a busy machine.
    await agent.stop();
    fake.received.length = 0;
    agent = await startAgentAgainstFake(['--local-policy', join(fleet.dir, 'local-policy.yaml'), '--kill-grace', '8s']);
    const long = request({ argv: ['sh', '-c', 'trap "" TERM; sleep 4'] });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(long), key));
    await agent.waitForLog((l) => l.event === 'step.accepted' && l['stepRunId'] === long.stepId);
    agent.child.kill('SIGTERM'); // the running step ignores TERM: the agent waits for it (up to its kill grace)
    await agent.waitForLog((l) => l.event === 'agent.stopping', 2_000);
    const lateRan = marker('during-shutdown');
    const late = request(touch(lateRan));
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(late), key));
    const r = await rejection(late.stepId);
    expect(r.reason).toBe(RejectReason.REJECT_REASON_BUSY);
    expect(r.detail).toMatch(/shutting down/);
    await expectNeverRan(lateRan);
  });
});
