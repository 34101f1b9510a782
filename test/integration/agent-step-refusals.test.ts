import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { access, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { gateWaitSh, openGate } from '../helpers/gate.js';
import { spawnCli, waitFor, type Proc } from '../helpers/processes.js';
import { StepJournal } from '../../agent/step-journal.js';
import { signEnvelope } from '../../core/envelope.js';
import { STEP_REQUEST_TYPE, type StepRequest } from '../../core/step.js';
import { decodeStepResult, encodeStepRequest } from '../../proto/codec/step-codec.js';
import { RejectReason } from '../../proto/gen/handrail/v1/gateway.js';

/**
 * A real agent (enrolled at a real coordinator) talks to a stand-in coordinator that sends
 * forged, misaddressed, expired, replayed and policy-violating steps. The agent must refuse
 * each one and say why — and not run it: every step here would create a marker file if it ran.
 *
 * No test here sleeps to let a wrongly run step show. A refusal is final once it is received:
 * the agent sends it as the last thing it does with that envelope. The last test checks every
 * refused step again after the agent process has exited, when nothing can start any more.
 */
describe('the agent refuses steps it must not run', () => {
  let fleet: Fleet;
  let fake: FakeCoordinator;
  let agent: Proc;
  let agentId: string;
  let key: { keyId: string; privateKey: ReturnType<typeof createPrivateKey> };
  const stateDir = (): string => join(fleet.dir, 'agent-target');
  /** Every agent process started against the fake, and every step refused so far (checked again at the end). */
  const agents: Proc[] = [];
  const refused: Array<{ stepId: string | undefined; paths: string[]; ranBefore: number }> = [];

  const startAgentAgainstFake = async (extra: string[] = []): Promise<Proc> => {
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', stateDir(), '--log-level', 'debug', '--kill-grace', '1s', ...extra]);
    agents.push(p);
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
  /** How often any agent process took this step on (logged before it is spawned). */
  const acceptedCount = (stepId: string): number => agents.reduce((n, a) => n + a.events('step.accepted').filter((l) => l['stepRunId'] === stepId).length, 0);
  /**
   * Call once the refusal has been received. The agent logs `step.rejected` before it sends the
   * refusal, and a step it runs is logged `step.accepted` before it is spawned: neither the log
   * nor the marker may show it ran. The last test checks all of them again once the agent exited.
   * `ranBefore`: how often the step legitimately ran before this refusal (a replay's first delivery).
   */
  const expectNeverRan = async (stepId: string | undefined, paths: string[], ranBefore = 0): Promise<void> => {
    refused.push({ stepId, paths, ranBefore });
    if (stepId !== undefined) {
      await agent.waitForLog((l) => l.event === 'step.rejected' && l['stepRunId'] === stepId, undefined, `step.rejected for ${stepId}`);
      expect(acceptedCount(stepId), `${stepId} was accepted: the refused step ran`).toBe(ranBefore);
    }
    for (const p of paths) expect(await exists(p), `${p} exists: the refused step ran`).toBe(false);
  };
  /**
   * Acknowledges every result the agent has sent, as the real coordinator does: a stopping agent
   * then has nothing to wait for (it waits up to 5 s for acknowledgements of delivered results).
   */
  const ackResults = (): void => {
    for (const m of fake.received) {
      if (m.$case !== 'result') continue;
      const r = decodeStepResult(m.value.payload);
      fake.ack(r.executionId, r.stepId);
    }
  };
  /** The agent's journal lets a step go once the coordinator acknowledged its result. */
  const spoolEntryGone = async (executionId: string, stepId: string): Promise<boolean> =>
    !(await StepJournal.readSteps(join(stateDir(), 'journal.log'))).some((s) => s.executionId === executionId && s.stepId === stepId);

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
    await expectNeverRan(req.stepId, [ran]);
  });

  it('refuses a payload changed after signing', async () => {
    const signedRan = marker('as-signed');
    const evilRan = marker('changed');
    const req = request(touch(signedRan));
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    const evil = encodeStepRequest({ ...req, argv: ['touch', evilRan] });
    fake.send({ ...env, payload: evil });
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    await expectNeverRan(req.stepId, [evilRan, signedRan]);
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
    await expectNeverRan(req.stepId, [ran]);
    await expectNeverRan(req2.stepId, [ran2]);
  });

  it("refuses a step addressed to another agent", async () => {
    const ran = marker('wrong-target');
    const req = request({ agentId: 'agt-someoneelse', ...touch(ran) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
    const r = await rejection(req.stepId);
    expect(r.reason).toBe(RejectReason.REJECT_REASON_WRONG_TARGET);
    expect(r.detail).toContain('agt-someoneelse');
    await expectNeverRan(req.stepId, [ran]);
  });

  it('refuses an expired step', async () => {
    const ran = marker('expired');
    const req = request({ issuedAtMs: Date.now() - 120_000, notAfterMs: Date.now() - 60_000, ...touch(ran) });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_EXPIRED);
    await expectNeverRan(req.stepId, [ran]);
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
    // The acknowledgement is handled: the agent holds no copy of the step any more, so the same
    // envelope again is a replay, not a redelivery (in this process or, from the spool, the next).
    await waitFor(() => spoolEntryGone(req.executionId, req.stepId), undefined, 'the acknowledged spool entry to be removed');
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await expectNeverRan(req.stepId, [ran], 1);
    // same envelope, new agent process: the nonce log survives restarts
    ackResults();
    await agent.stop();
    fake.received.length = 0;
    agent = await startAgentAgainstFake(['--local-policy', join(fleet.dir, 'local-policy.yaml')]);
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await expectNeverRan(req.stepId, [ran], 1);
  });

  const policyArgs = (): string[] => ['--local-policy', join(fleet.dir, 'local-policy.yaml')];

  it('never runs a step twice after a kill -9: its held result is resent, and once acknowledged the envelope is a replay', async () => {
    const ran = marker('killed-after-result');
    const req = request(touch(ran));
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    fake.send(env);
    const first = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    expect(await exists(ran)).toBe(true);
    await rm(ran);
    // Killed before the acknowledgement: the restarted agent holds the step, resends the same
    // signed result, and treats the same envelope as a redelivery, not as a step to run.
    await agent.stop('SIGKILL');
    fake.received.length = 0;
    agent = await startAgentAgainstFake(policyArgs());
    const resent = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    expect(Buffer.from(resent.signature).equals(Buffer.from(first.signature))).toBe(true);
    fake.received.length = 0;
    fake.send(env);
    const again = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
    expect(Buffer.from(again.signature).equals(Buffer.from(first.signature))).toBe(true);
    fake.ack(req.executionId, req.stepId);
    await waitFor(() => spoolEntryGone(req.executionId, req.stepId), undefined, 'the acknowledged step to leave the journal');
    // Killed after the acknowledgement: only the nonce is left, and the envelope is a replay.
    await agent.stop('SIGKILL');
    fake.received.length = 0;
    agent = await startAgentAgainstFake(policyArgs());
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await expectNeverRan(req.stepId, [ran], 1);
  });

  it('never runs a step again whose agent was killed with -9 while it ran', async () => {
    const started = marker('killed-while-running-started');
    const gate = marker('killed-while-running-gate');
    const req = request({ argv: ['/bin/sh', '-c', `touch "$2"; ${gateWaitSh('"$1"')}`, 'gated-step', gate, started] });
    const env = signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key);
    fake.send(env);
    await waitFor(() => exists(started), undefined, 'the step to start');
    await rm(started);
    await agent.stop('SIGKILL');
    fake.received.length = 0;
    // The restarted agent stops what the step left running and reports it interrupted.
    agent = await startAgentAgainstFake(policyArgs());
    const interrupted = decodeStepResult((await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId)).payload);
    expect(interrupted).toMatchObject({ status: 'error', error: expect.stringMatching(/agent restarted/) });
    fake.ack(req.executionId, req.stepId);
    await waitFor(() => spoolEntryGone(req.executionId, req.stepId), undefined, 'the acknowledged step to leave the journal');
    fake.send(env);
    expect((await rejection(req.stepId)).reason).toBe(RejectReason.REJECT_REASON_REPLAYED);
    await openGate(gate);
    await expectNeverRan(req.stepId, [started], 1);
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
    await expectNeverRan(adhoc.stepId, [adhocRan]);
    await expectNeverRan(other.stepId, [otherRan]);
  });

  it('refuses a signed payload that is not a step request', async () => {
    // a whole step request, then field 1 length-delimited with a length far past the end: cannot decode
    const junkRan = marker('junk');
    const junkReq = request(touch(junkRan));
    const junk = Buffer.concat([encodeStepRequest(junkReq), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])]);
    fake.send(signEnvelope(STEP_REQUEST_TYPE, junk, key));
    const r = await fake.waitFor('rejected', (x) => x.reason === RejectReason.REJECT_REASON_MALFORMED);
    expect(r.detail.length).toBeGreaterThan(0);
    // It cannot be decoded, so the refusal names no step; its step id must not show up as accepted either.
    await expectNeverRan(undefined, [junkRan]);
    expect(acceptedCount(junkReq.stepId)).toBe(0);
    const typeRan = marker('payload-type');
    const typed = request(touch(typeRan));
    fake.send(signEnvelope('application/json', encodeStepRequest(typed), key));
    await fake.waitFor('rejected', (x) => x.reason === RejectReason.REJECT_REASON_MALFORMED && /payload type/.test(x.detail));
    await expectNeverRan(undefined, [typeRan]);
    expect(acceptedCount(typed.stepId)).toBe(0);
    refused.push({ stepId: junkReq.stepId, paths: [], ranBefore: 0 }, { stepId: typed.stepId, paths: [], ranBefore: 0 });
  });
  // Last but one: it stops the agent.
  it('turns new steps away while it shuts down, and runs none of them', async () => {
    ackResults();
    await agent.stop();
    fake.received.length = 0;
    // The kill grace is a backstop only: the running step holds the shutdown open until the test opens its gate.
    agent = await startAgentAgainstFake(['--local-policy', join(fleet.dir, 'local-policy.yaml'), '--kill-grace', '120s']);
    const gate = marker('shutdown-gate');
    // It says "ready" once its trap is set: from then on it ignores TERM (and so do its sleeps:
    // an ignored signal stays ignored across exec), and it runs until the gate opens.
    const long = request({ argv: ['/bin/sh', '-c', `trap "" TERM; echo ready; ${gateWaitSh('"$1"')}`, 'sh', gate], timeoutMs: 120_000 });
    fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(long), key));
    const lateRan = marker('during-shutdown');
    const late = request(touch(lateRan));
    try {
      await fake.waitFor('output', (o) => o.stepId === long.stepId && Buffer.from(o.data).toString().includes('ready'));
      agent.child.kill('SIGTERM'); // the agent cancels the step and waits for it (up to its kill grace)
      // Logged right as the executor starts turning steps away (same synchronous run): every
      // step the agent reads from the stream after this line is refused.
      await agent.waitForLog((l) => l.event === 'agent.shutdown_started');
      fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(late), key));
      const r = await rejection(late.stepId);
      expect(r.reason).toBe(RejectReason.REJECT_REASON_BUSY);
      expect(r.detail).toMatch(/shutting down/);
      await expectNeverRan(late.stepId, [lateRan]);
    } finally {
      await openGate(gate);
    }
    // The step ends, its result is acknowledged, and the agent exits: it started nothing else meanwhile.
    await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === long.stepId);
    ackResults();
    expect(await agent.wait()).toBe(0);
    expect(agent.events('step.accepted').map((l) => l['stepRunId'])).toEqual([long.stepId]);
  });

  // Last: once no agent process is left, nothing refused can still start; check them all.
  it('ran none of the refused steps (checked after every agent process has exited)', async () => {
    await agent.stop();
    for (const a of agents) await a.wait();
    for (const { stepId, paths, ranBefore } of refused) {
      if (stepId !== undefined) expect(acceptedCount(stepId), `${stepId} was accepted: the refused step ran`).toBe(ranBefore);
      for (const p of paths) expect(await exists(p), `${p} exists: the refused step ran`).toBe(false);
    }
  });
});
