import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { rawClient, tlsCredentials } from '../helpers/raw-grpc.js';
import { gatedArgv, openGate } from '../helpers/gate.js';
import { BACKSTOP_MS, spawnCli, waitFor, type Proc } from '../helpers/processes.js';
import { Database } from '../../coordinator/store/database.js';
import { sha256, signEnvelope, signPayload } from '../../core/envelope.js';
import { STEP_REQUEST_TYPE, STEP_RESULT_TYPE, type StepRequest } from '../../core/step.js';
import { normalizeSerial } from '../../core/x509-serial.js';
import { decodeStepRequest, decodeStepResult, encodeStepRequest, encodeStepResult, envelopeFromWire } from '../../proto/codec/step-codec.js';
import { ConnectRequest, ConnectResponse, OutputStream, SignedResult, type ResultAck } from '../../proto/gen/handrail/v1/gateway.js';
import { HANDRAIL_VERSION } from '../../core/version.js';
import { StepJournal, type JournalStep } from '../../agent/step-journal.js';

/** An agent's key and certificate, as its state dir keeps them. */
async function agentCredentials(stateDir: string): Promise<{ keyPem: string; certPem: string }> {
  const text = await readFile(join(stateDir, 'identity', 'agent.pem'), 'utf8');
  return {
    keyPem: /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(text)![0],
    certPem: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)![0],
  };
}

/** Steps the agent's journal still holds (see agent/step-journal.ts), and anything set aside as refused. */
async function spoolContents(stateDir: string): Promise<{ pending: JournalStep[]; refused: string[] }> {
  const pending = await StepJournal.readSteps(join(stateDir, 'journal.log'));
  const refused = await readdir(join(stateDir, 'spool', 'refused')).catch(() => [] as string[]);
  return { pending, refused };
}

/** The agent stream spoken by hand, under an enrolled agent's own mTLS identity. */
class HandAgent {
  readonly received: ConnectResponse[] = [];
  private readonly client: Client;
  private readonly call: ClientDuplexStream<ConnectRequest, ConnectResponse>;

  constructor(address: string, caPem: string, creds: { keyPem: string; certPem: string }) {
    this.client = rawClient(address, tlsCredentials(caPem, creds.keyPem, creds.certPem));
    this.call = this.client.makeBidiStreamRequest(
      '/handrail.v1.AgentGatewayService/Connect',
      (m: ConnectRequest) => Buffer.from(ConnectRequest.encode(m).finish()),
      (b: Buffer) => ConnectResponse.decode(b),
      new Metadata(),
      { deadline: Date.now() + 2 * BACKSTOP_MS },
    );
    this.call.on('data', (m: ConnectResponse) => this.received.push(m));
    this.call.on('error', () => undefined);
  }

  async hello(): Promise<void> {
    this.call.write({ msg: { $case: 'hello', value: { facts: undefined, labels: {}, spooledResults: 1, agentVersion: HANDRAIL_VERSION } } });
    await waitFor(() => this.received.some((m) => m.msg?.$case === 'welcome'), undefined, 'welcome');
  }

  /** Sends a signed result and resolves with the coordinator's acknowledgement of it. */
  async sendResult(signed: SignedResult, stepId: string): Promise<ResultAck> {
    this.call.write({ msg: { $case: 'result', value: signed } });
    return waitFor(
      () => {
        for (const m of this.received) if (m.msg?.$case === 'ack' && m.msg.value.stepId === stepId) return m.msg.value;
        return undefined;
      },
      undefined,
      `ack for ${stepId}`,
    );
  }

  /** Writes messages back to back, in one burst, as an agent flushing its spool does. */
  burst(messages: ReadonlyArray<ConnectRequest['msg']>): void {
    for (const msg of messages) this.call.write({ msg });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** How many step.result audit records the store holds for a step run. */
async function resultRecords(fleet: Fleet, stepRunId: string): Promise<number> {
  const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
  try {
    const row = await db.get<{ n: number }>(
      "SELECT count(*) AS n FROM audit_records WHERE json_extract(CAST(payload AS TEXT), '$.type') = 'step.result' AND json_extract(CAST(payload AS TEXT), '$.data.stepRunId') = ?",
      [stepRunId],
    );
    return row?.n ?? 0;
  } finally {
    await db.close();
  }
}

describe('nothing is lost', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('durable');
    agentId = await fleet.waitOnline('durable');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('delivers a result finished while the coordinator was down (killed with SIGKILL), after it restarts', async () => {
    // The step runs until the test opens its gate, which it does only once the coordinator is dead.
    const gate = join(fleet.dir, 'gate-coordinator-down');
    const started = await fleet.api<{ executionId: string; stepRunIds: Record<string, string> }>('POST', '/api/v1/adhoc', {
      agents: [agentId],
      argv: gatedArgv(gate, { before: 'echo before', after: 'echo after' }),
    });
    expect(started.status).toBe(201);
    const { proc: agent, stateDir } = fleet.agents.get('durable')!;
    try {
      await agent.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === started.body.executionId);
      fleet.coordinator!.proc.kill('SIGKILL');
      await fleet.coordinator!.proc.wait();
      await agent.waitForLog((l) => l.event === 'agent.disconnected');
    } finally {
      await openGate(gate);
    }
    // the step finishes while nobody listens; the agent spools the signed result
    await agent.waitForLog((l) => l.event === 'step.finished' && l['executionId'] === started.body.executionId);
    await fleet.startCoordinator();
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('succeeded');
    const s = r.steps[0]!;
    expect(s.state).toBe('succeeded');
    expect(await fleet.output(r.id, s.id)).toBe('before\nafter\n');
    // Delivered once: the agent has handled the acknowledgement (its spool is empty, so it will
    // never send this result again), and the store holds one result record for the step.
    await waitFor(async () => (await spoolContents(stateDir)).pending.length === 0, undefined, 'the acknowledged result to leave the spool');
    expect(await resultRecords(fleet, s.id)).toBe(1);
    // (logged just after the acknowledgement is sent, so it may reach us after the spool emptied)
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.finished' && l['stepRunId'] === s.id);
    expect(fleet.coordinator!.proc.events('step.finished').filter((l) => l['stepRunId'] === s.id)).toHaveLength(1);
  });

  it('answers a step cut short by an agent restart with a signed error result', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['sleep', '30'] });
    const agent = fleet.agents.get('durable')!;
    await agent.proc.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === started.body.executionId);
    agent.proc.kill('SIGKILL');
    await agent.proc.wait();
    const again = await fleet.startAgent('durable', { token: null, stateDir: agent.stateDir });
    await again.waitForLog((l) => l.event === 'agent.connected');
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.steps[0]!.state).toBe('error');
    expect(r.steps[0]!.error).toMatch(/agent restarted/);
  });

  it('keeps resending an unacknowledged result, byte for byte, until it is acknowledged; then never again', async () => {
    // A real agent against a stand-in coordinator that withholds the acknowledgement.
    await fleet.startAgent('resender');
    await fleet.waitOnline('resender');
    const { stateDir } = fleet.agents.get('resender')!;
    await fleet.agents.get('resender')!.proc.stop();
    const keyDir = join(fleet.dataDir, 'keys', 'dispatch');
    const keyFile = (await readdir(keyDir)).find((f) => f.endsWith('.key'))!;
    const key = { keyId: keyFile.replace(/\.key$/, ''), privateKey: createPrivateKey(await readFile(join(keyDir, keyFile), 'utf8')) };
    const { agentId: resenderId } = JSON.parse(await readFile(join(stateDir, 'identity', 'agent.json'), 'utf8')) as { agentId: string };
    const fake = await FakeCoordinator.start(fleet.certsDir);
    const startAgent = (): Proc => spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', stateDir, '--log-level', 'debug', '--kill-grace', '1s']);
    let agent = startAgent();
    try {
      await fake.waitFor('hello', () => true);
      const req: StepRequest = {
        executionId: 'exe-resend', stepId: `sr-${randomBytes(4).toString('hex')}`, agentId: resenderId, argv: ['printf', 'resend me'], script: undefined, env: {}, workingDir: '',
        timeoutMs: 10_000, issuedAtMs: Date.now(), notAfterMs: Date.now() + 120_000, nonce: randomBytes(16), runbookId: 'diagnostics-bundle', runbookOwner: 'team-sre', maxOutputBytes: 65536,
      };
      fake.send(signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(req), key));
      const first = await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId);
      expect(decodeStepResult(first.payload)).toMatchObject({ status: 'succeeded', stdoutBytes: 9, agentId: resenderId });
      // not acknowledged: the signed result waits in the spool, exactly as it was sent
      const spooled = await spoolContents(stateDir);
      expect(spooled.pending).toHaveLength(1);
      const onDisk = SignedResult.decode(spooled.pending[0]!.result!);
      expect(Buffer.from(onDisk.payload).equals(Buffer.from(first.payload))).toBe(true);

      const sameAsFirst = (again: SignedResult): void => {
        expect(again.payloadType).toBe(first.payloadType);
        expect(Buffer.from(again.payload).equals(Buffer.from(first.payload)), 'resent payload differs').toBe(true);
        expect(Buffer.from(again.signature).equals(Buffer.from(first.signature)), 'resent signature differs').toBe(true);
      };

      // the stream drops: on the next connection the agent says it holds one result and resends it
      fake.received.length = 0;
      fake.dropConnection();
      expect((await fake.waitFor('hello', () => true)).spooledResults).toBe(1);
      sameAsFirst(await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId));

      // the agent process dies: the new one resends it from disk
      await agent.stop('SIGKILL');
      fake.received.length = 0;
      agent = startAgent();
      expect((await fake.waitFor('hello', () => true)).spooledResults).toBe(1);
      sameAsFirst(await fake.waitFor('result', (r) => decodeStepResult(r.payload).stepId === req.stepId));

      // acknowledged: the spool entry goes, and no later connection brings the result back
      fake.ack(req.executionId, req.stepId);
      await waitFor(async () => (await spoolContents(stateDir)).pending.length === 0, undefined, 'spool entry removed after the ack');
      fake.received.length = 0;
      const connections = agent.events('agent.connected').length;
      fake.dropConnection();
      // The agent says it holds nothing, and it has handled the welcome (where it resends what
      // it holds): it has nothing to resend on this connection.
      expect((await fake.waitFor('hello', () => true)).spooledResults).toBe(0);
      await waitFor(() => agent.events('agent.connected').length > connections, undefined, 'the agent to take the new connection');
      // Once the agent process has exited, nothing more can come from it: check what did.
      await agent.stop();
      expect(fake.received.filter((m) => m.$case === 'result')).toHaveLength(0);
      expect(fake.received.filter((m) => m.$case === 'output')).toHaveLength(0);
      expect(await spoolContents(stateDir)).toEqual({ pending: [], refused: [] });
    } finally {
      await agent.stop();
      await fake.close();
    }
  });

  describe('a result replayed to the coordinator', () => {
    let stepRunId: string;
    let executionId: string;
    let signed: SignedResult;
    let caPem: string;
    interface StoredStep { state: string; exit_code: number | null; finished_at: number | null; error: string | null; result_payload: Buffer; result_signature: Buffer; result_cert_serial: string; stdout_bytes: number }

    const stored = async (): Promise<{ step: StoredStep; results: Array<{ actor: string }> }> => {
      const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
      try {
        const step = (await db.get<StoredStep>('SELECT state, exit_code, finished_at, error, result_payload, result_signature, result_cert_serial, stdout_bytes FROM step_runs WHERE id = ?', [stepRunId]))!;
        const results = await db.all<{ actor: string }>(
          "SELECT json_extract(CAST(payload AS TEXT), '$.actor.id') AS actor FROM audit_records WHERE json_extract(CAST(payload AS TEXT), '$.type') = 'step.result' AND json_extract(CAST(payload AS TEXT), '$.data.stepRunId') = ?",
          [stepRunId],
        );
        return { step, results };
      } finally {
        await db.close();
      }
    };

    let before: Awaited<ReturnType<typeof stored>>;

    beforeAll(async () => {
      caPem = await readFile(fleet.caFile, 'utf8');
      const r = await fleet.exec([agentId], { argv: ['printf', 'exactly once'] });
      expect(r.state).toBe('succeeded');
      executionId = r.id;
      stepRunId = r.steps[0]!.id;
      before = await stored();
      expect(before.results).toEqual([{ actor: agentId }]);
      signed = { payloadType: STEP_RESULT_TYPE, payload: before.step.result_payload, signature: before.step.result_signature };
      // Its own agent is stopped so that its stream does not take over the one spoken by hand.
      await fleet.agents.get('durable')!.proc.stop();
    });

    const expectUnchanged = async (): Promise<void> => {
      const now = await stored();
      expect(now.results).toEqual([{ actor: agentId }]);
      expect(now.step).toEqual(before.step);
      const view = await fleet.api<{ state: string; steps: Array<{ id: string; state: string; exitCode: number | null }> }>('GET', `/api/v1/executions/${executionId}`);
      expect(view.body.state).toBe('succeeded');
      expect(view.body.steps.find((s) => s.id === stepRunId)).toMatchObject({ state: 'succeeded', exitCode: 0 });
    };

    it('is acknowledged (so the agent drops it) when its own agent resends it, and stored only once', async () => {
      const hand = new HandAgent(fleet.coordinator!.address, caPem, await agentCredentials(fleet.agents.get('durable')!.stateDir));
      try {
        await hand.hello();
        const ack = await hand.sendResult(signed, stepRunId);
        expect(ack).toEqual({ executionId, stepId: stepRunId, refused: '' });
        // and once more on the same stream: still a plain acknowledgement
        hand.received.length = 0;
        expect((await hand.sendResult(signed, stepRunId)).refused).toBe('');
      } finally {
        hand.close();
      }
      await expectUnchanged();
      await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.finished' && l['stepRunId'] === stepRunId);
      expect(fleet.coordinator!.proc.events('step.finished').filter((l) => l['stepRunId'] === stepRunId)).toHaveLength(1);
    });

    it("is refused, and not recorded, when another enrolled agent sends it (as is, or re-signed as its own)", async () => {
      await fleet.startAgent('intruder');
      const intruderId = await fleet.waitOnline('intruder');
      await fleet.agents.get('intruder')!.proc.stop();
      const creds = await agentCredentials(fleet.agents.get('intruder')!.stateDir);
      const hand = new HandAgent(fleet.coordinator!.address, caPem, creds);
      try {
        await hand.hello();
        // the other agent's signed result, as is
        const asIs = await hand.sendResult(signed, stepRunId);
        expect(asIs.refused).toMatch(/^wrong_agent: /);
        await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.result_refused' && l['agentId'] === intruderId && l['reason'] === 'wrong_agent');
        // the same result claimed by the intruder and signed with its own (valid) key
        const claimed = encodeStepResult({ ...decodeStepResult(signed.payload), agentId: intruderId, signerCertificateSerial: normalizeSerial(new X509Certificate(creds.certPem).serialNumber) });
        hand.received.length = 0;
        const forged = await hand.sendResult(
          { payloadType: STEP_RESULT_TYPE, payload: Buffer.from(claimed), signature: signPayload(STEP_RESULT_TYPE, claimed, createPrivateKey(creds.keyPem)) },
          stepRunId,
        );
        expect(forged.refused).toMatch(/^mismatch: /);
        await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.result_refused' && l['agentId'] === intruderId && l['reason'] === 'mismatch');
      } finally {
        hand.close();
      }
      await expectUnchanged();
    });
  });

  it('stores a result once when its copy arrives with output in between (output must not reopen a step whose result is being stored)', async () => {
    // The race two copies of the suite once hit: output arriving while a result was being written
    // reloaded the step as still open, and the next copy of the result was recorded a second time.
    const caPem = await readFile(fleet.caFile, 'utf8');
    const creds = await agentCredentials(fleet.agents.get('durable')!.stateDir);
    const hand = new HandAgent(fleet.coordinator!.address, caPem, creds);
    try {
      await hand.hello();
      const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['printf', 'twice'] });
      expect(started.status).toBe(201);
      const env = await waitFor(
        () => {
          for (const m of hand.received) if (m.msg?.$case === 'step') return envelopeFromWire(m.msg.value);
          return undefined;
        },
        undefined,
        'the step to reach the hand-driven agent',
      );
      const req = decodeStepRequest(env.payload);
      const now = Date.now();
      const data = Buffer.from('twice');
      const payload = encodeStepResult({
        executionId: req.executionId, stepId: req.stepId, agentId, requestSha256: sha256(env.payload), requestNonce: req.nonce,
        status: 'succeeded', exitCode: 0, signal: '', startedAtMs: now, finishedAtMs: now,
        stdoutSha256: sha256(data), stderrSha256: sha256(Buffer.alloc(0)), stdoutBytes: data.length, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false,
        error: '', signerCertificateSerial: normalizeSerial(new X509Certificate(creds.certPem).serialNumber),
      });
      const result = { $case: 'result' as const, value: { payloadType: STEP_RESULT_TYPE, payload: Buffer.from(payload), signature: signPayload(STEP_RESULT_TYPE, payload, createPrivateKey(creds.keyPem)) } };
      const output = { $case: 'output' as const, value: { executionId: req.executionId, stepId: req.stepId, stream: OutputStream.OUTPUT_STREAM_STDOUT, offset: 0, data } };
      hand.burst([{ $case: 'accepted', value: { executionId: req.executionId, stepId: req.stepId, startedAtMs: now, pid: 1 } }, output, result, output, result, output, result]);
      const r = await fleet.waitExecution(started.body.executionId);
      expect(r.state).toBe('succeeded');
      // every copy is acknowledged, and the step holds one result
      await waitFor(() => hand.received.filter((m) => m.msg?.$case === 'ack' && m.msg.value.stepId === req.stepId).length === 3, undefined, 'three acknowledgements');
      expect(hand.received.filter((m) => m.msg?.$case === 'ack' && m.msg.value.refused !== '')).toEqual([]);
      expect(await resultRecords(fleet, req.stepId)).toBe(1);
      expect(await fleet.output(r.id, req.stepId)).toBe('twice');
    } finally {
      hand.close();
    }
  });

  it('holds at most one step.result record per step run after all of the above', async () => {
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      const dup = await db.get<{ n: number }>("SELECT count(*) AS n FROM audit_records WHERE json_extract(CAST(payload AS TEXT), '$.type') = 'step.result' GROUP BY json_extract(CAST(payload AS TEXT), '$.data.stepRunId') HAVING count(*) > 1");
      expect(dup).toBeUndefined();
    } finally {
      await db.close();
    }
  });
});
