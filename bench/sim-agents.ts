/**
 * Simulated agents for the fleet benchmark: real mTLS gRPC streams (one HTTP/2 connection
 * each), real envelope verification and real RSA-signed results, but no process is spawned:
 * each step is answered as if `true` ran (or, with `output`, as if it printed that output). They
 * share one RSA key to keep setup fast; each has its own certificate and identity.
 */
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { AgentGatewayServiceClient, OutputStream, type ConnectRequest, type ConnectResponse } from '../proto/gen/handrail/v1/gateway.js';
import { envelopeFromWire, decodeStepRequest, encodeStepResult } from '../proto/codec/step-codec.js';
import { checkStepEnvelope } from '../core/step-check.js';
import { sha256, signPayload } from '../core/envelope.js';
import { STEP_RESULT_TYPE } from '../core/step.js';
import { channelOptions, parseCoordinatorAddress } from '../agent/coordinator-address.js';
import { HANDRAIL_VERSION } from '../core/version.js';

export interface SimIdentity {
  readonly agentId: string;
  readonly certPem: string;
  readonly serial: string;
}

const EMPTY = sha256(new Uint8Array(0));

export class SimAgent {
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private client: AgentGatewayServiceClient | undefined;
  private readonly seen = new Set<string>();
  private heartbeat: NodeJS.Timeout | undefined;
  stepsAnswered = 0;

  constructor(
    readonly id: SimIdentity,
    private readonly address: string,
    private readonly caPem: string,
    private readonly keyPem: string,
    private readonly privateKey: KeyObject,
    private readonly dispatchKeys: ReadonlyMap<string, KeyObject>,
    /** What each step prints on stdout (sent as one output message before its result); none by default. */
    private readonly output?: (stepId: string) => Buffer,
  ) {}

  connect(): Promise<void> {
    const addr = parseCoordinatorAddress(this.address);
    this.client = new AgentGatewayServiceClient(
      addr.target,
      credentials.createSsl(Buffer.from(this.caPem), Buffer.from(this.keyPem), Buffer.from(this.id.certPem)),
      channelOptions(addr, { 'grpc.use_local_subchannel_pool': 1 }),
    );
    const call = this.client.connect();
    this.call = call;
    return new Promise((resolve, reject) => {
      call.on('data', (res: ConnectResponse) => {
        const m = res.msg;
        if (!m) return;
        if (m.$case === 'welcome') {
          // Heartbeats as a real agent sends them, first one at a random point of the interval
          // (as reconnects after an outage would spread them), so the coordinator carries that load too.
          const every = m.value.heartbeatIntervalMs > 0 ? m.value.heartbeatIntervalMs : 10_000;
          const beat = (): void => void call.write({ msg: { $case: 'heartbeat', value: { sentAtMs: Date.now(), runningSteps: 0 } } });
          this.heartbeat = setTimeout(() => {
            beat();
            this.heartbeat = setInterval(beat, every);
          }, Math.random() * every);
          resolve();
        }
        else if (m.$case === 'step') this.answer(m.value);
      });
      call.on('error', (e) => reject(e));
      call.write({ msg: { $case: 'hello', value: { facts: { hostname: this.id.agentId, os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion: HANDRAIL_VERSION, kernelRelease: '' }, labels: { sim: 'true' }, spooledResults: 0, agentVersion: HANDRAIL_VERSION } } });
    });
  }

  private answer(wire: Parameters<typeof envelopeFromWire>[0]): void {
    const now = Date.now();
    const env = envelopeFromWire(wire);
    const v = checkStepEnvelope(env, { agentId: this.id.agentId, nowMs: now, keys: this.dispatchKeys, nonceSeen: (n) => this.seen.has(Buffer.from(n).toString('hex')), decode: decodeStepRequest });
    if (!v.ok) throw new Error(`sim agent refused a step: ${v.detail}`);
    this.seen.add(Buffer.from(v.request.nonce).toString('hex'));
    const stdout = this.output?.(v.request.stepId) ?? Buffer.alloc(0);
    if (stdout.length > 0) this.call?.write({ msg: { $case: 'output', value: { executionId: v.request.executionId, stepId: v.request.stepId, stream: OutputStream.OUTPUT_STREAM_STDOUT, offset: 0, data: stdout } } });
    const payload = encodeStepResult({
      executionId: v.request.executionId,
      stepId: v.request.stepId,
      agentId: this.id.agentId,
      requestSha256: sha256(env.payload),
      requestNonce: v.request.nonce,
      status: 'succeeded',
      exitCode: 0,
      signal: '',
      startedAtMs: now,
      finishedAtMs: Date.now(),
      stdoutSha256: stdout.length > 0 ? sha256(stdout) : EMPTY,
      stderrSha256: EMPTY,
      stdoutBytes: stdout.length,
      stderrBytes: 0,
      stdoutTruncated: false,
      stderrTruncated: false,
      error: '',
      signerCertificateSerial: this.id.serial,
    });
    const signature = signPayload(STEP_RESULT_TYPE, payload, this.privateKey);
    this.stepsAnswered++;
    this.call?.write({ msg: { $case: 'result', value: { payloadType: STEP_RESULT_TYPE, payload: Buffer.from(payload), signature } } });
  }

  close(): void {
    clearTimeout(this.heartbeat);
    clearInterval(this.heartbeat);
    this.call?.cancel();
    this.client?.close();
  }
}

export function keyMap(keys: ReadonlyArray<{ keyId: string; publicKeyPem: string }>): Map<string, KeyObject> {
  return new Map(keys.map((k) => [k.keyId, createPublicKey(k.publicKeyPem)]));
}
