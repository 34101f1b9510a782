/**
 * A child process holding a slice of simulated agents for the reconnect benchmark
 * (bench/reconnect.ts). Running them outside the driver keeps their CPU (client TLS
 * handshakes, RSA result signatures) apart from the coordinator's and the driver's, and lets
 * several processes share 10,000 connections.
 *
 * Each simulated agent dials like a real one: a fresh channel per attempt (its own HTTP/2
 * connection), Hello, Welcome, heartbeats, and on any loss the real agent's reconnect
 * schedule (agent/backoff.ts). Agents in "hold" mode answer a step with a signed result but
 * keep it until their next stream: that is a result spooled across the outage, which must be
 * stored once they are back.
 *
 * IPC (process.send): parent → worker `init`, `connect`, `stats`, `stop`; worker → parent
 * `ready`, `stats`, `held`.
 */
import { credentials, type ChannelCredentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { AgentGatewayServiceClient, type ConnectRequest, type ConnectResponse, type SignedResult } from '../proto/gen/handrail/v1/gateway.js';
import { envelopeFromWire, decodeStepRequest, encodeStepResult } from '../proto/codec/step-codec.js';
import { decodeDispatchKeySet, signedKeySetFromWire } from '../proto/codec/dispatch-key-set-codec.js';
import { checkStepEnvelope } from '../core/step-check.js';
import { sha256, signPayload } from '../core/envelope.js';
import { STEP_RESULT_TYPE } from '../core/step.js';
import { channelOptions, parseCoordinatorAddress, type CoordinatorAddress } from '../agent/coordinator-address.js';
import { AgentTls, TlsSessionCache, type DialCredentials } from '../agent/tls-session.js';
import { reconnectDelay, DEFAULT_BACKOFF, HEALTHY_STREAM_MS, type BackoffPolicy } from '../agent/backoff.js';
import { HANDRAIL_VERSION } from '../core/version.js';

export interface WorkerIdentity {
  readonly agentId: string;
  readonly certPem: string;
  readonly serial: string;
}

export type ToWorker =
  | { type: 'init'; ids: WorkerIdentity[]; keyPem: string; caPem: string; address: string; hold: string[]; resume: boolean; spreadMs: number; oldBackoff: boolean }
  | { type: 'connect' }
  | { type: 'stats' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'stats'; streaming: number; welcomes: number; attempts: number; failures: Record<string, number>; held: number; resultsSent: number; resumed: number; cpuMs: number; rssBytes: number };

const EMPTY = createHash('sha256').digest();

interface Shared {
  readonly address: CoordinatorAddress;
  readonly caPem: Buffer;
  readonly keyPem: Buffer;
  readonly privateKey: KeyObject;
  readonly resume: boolean;
  readonly backoff: BackoffPolicy;
  readonly stats: { welcomes: number; attempts: number; failures: Map<string, number>; resultsSent: number; resumed: number };
}

class ReconnectingSim {
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private client: AgentGatewayServiceClient | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  private healthyLostAt = Number.NEGATIVE_INFINITY;
  private streamingSince = 0;
  private stopped = false;
  private keys = new Map<string, KeyObject>();
  private readonly seen = new Set<string>();
  /** Results made while holding, by step id: sent on the next stream, and again if the step is resent. */
  private readonly held = new Map<string, SignedResult>();
  private heldFrom = 0;
  private generation = 0;
  private readonly sessions = new TlsSessionCache();
  private tls: AgentTls | undefined;
  private plainCreds: ChannelCredentials | undefined;
  /** The current dial's credentials, closed with its client, as the agent does (agent/tls-session.ts). */
  private dialCreds: DialCredentials | undefined;
  streaming = false;

  constructor(
    private readonly id: WorkerIdentity,
    private readonly s: Shared,
    private readonly hold: boolean,
  ) {}

  get heldCount(): number {
    return this.held.size;
  }

  start(): void {
    this.dial();
  }

  private credentials(): ChannelCredentials {
    if (this.s.resume) {
      this.tls ??= new AgentTls({ caPem: this.s.caPem, keyPem: this.s.keyPem, certPem: Buffer.from(this.id.certPem), tlsName: this.s.address.tlsName, sessions: this.sessions });
      this.dialCreds = this.tls.dial();
      return this.dialCreds;
    }
    // --no-resume: grpc-js's own credentials (a closed dial's retry is not refused there).
    this.plainCreds ??= credentials.createSsl(this.s.caPem, this.s.keyPem, Buffer.from(this.id.certPem));
    return this.plainCreds;
  }

  private dial(): void {
    if (this.stopped) return;
    this.s.stats.attempts++;
    const client = new AgentGatewayServiceClient(this.s.address.target, this.credentials(), channelOptions(this.s.address, { 'grpc.use_local_subchannel_pool': 1 }));
    this.client = client;
    const call = client.connect();
    this.call = call;
    const generation = ++this.generation;
    call.on('data', (res: ConnectResponse) => {
      const m = res.msg;
      if (!m || this.call !== call) return;
      if (m.$case === 'welcome') this.onWelcome(call, m.value.heartbeatIntervalMs, m.value.dispatchKeySet, generation);
      else if (m.$case === 'step') this.answer(call, m.value);
    });
    call.on('error', (e: ServiceError) => this.down(call, `${e.code ?? '?'} ${(e.details || e.message).slice(0, 60)}`));
    call.on('end', () => this.down(call, 'end'));
    call.write({ msg: { $case: 'hello', value: { facts: { hostname: this.id.agentId, os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion: HANDRAIL_VERSION, kernelRelease: '' }, labels: { sim: 'true' }, spooledResults: this.held.size, agentVersion: HANDRAIL_VERSION } } });
  }

  private onWelcome(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, heartbeatMs: number, keySet: Parameters<typeof signedKeySetFromWire>[0] | undefined, generation: number): void {
    this.streaming = true;
    this.streamingSince = Date.now();
    this.s.stats.welcomes++;
    if (this.s.resume && this.sessions.lastResumed) this.s.stats.resumed++;
    // A simulation: the set is taken as the coordinator sends it (the real agent checks its signatures).
    if (keySet) this.keys = new Map(decodeDispatchKeySet(signedKeySetFromWire(keySet).payload).keys.map((k) => [k.keyId, createPublicKey(k.publicKeyPem)]));
    const every = heartbeatMs > 0 ? heartbeatMs : 10_000;
    const beat = (): void => void call.write({ msg: { $case: 'heartbeat', value: { sentAtMs: Date.now(), runningSteps: 0 } } });
    this.heartbeat = setTimeout(() => {
      beat();
      this.heartbeat = setInterval(beat, every);
    }, Math.random() * every);
    // What was held from an earlier stream is delivered now, as a real agent delivers its spool.
    if (generation > this.heldFrom) for (const r of this.held.values()) this.send(call, r);
  }

  private send(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, r: SignedResult): void {
    this.s.stats.resultsSent++;
    call.write({ msg: { $case: 'result', value: r } });
  }

  private answer(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, wire: Parameters<typeof envelopeFromWire>[0]): void {
    const now = Date.now();
    const env = envelopeFromWire(wire);
    const redelivery = this.seen.has(sha256(env.payload).toString('hex'));
    const v = checkStepEnvelope(env, { agentId: this.id.agentId, nowMs: now, keys: this.keys, nonceSeen: () => false, decode: decodeStepRequest, redelivery });
    if (!v.ok) {
      process.stderr.write(`sim ${this.id.agentId} refused a step: ${v.detail}\n`);
      return;
    }
    const known = this.held.get(v.request.stepId);
    if (known) {
      // Resent after a reconnect: answer with the result already made (the real agent does the same from its spool).
      if (this.generation > this.heldFrom) this.send(call, known);
      return;
    }
    if (redelivery) return;
    this.seen.add(sha256(env.payload).toString('hex'));
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
      stdoutSha256: EMPTY,
      stderrSha256: EMPTY,
      stdoutBytes: 0,
      stderrBytes: 0,
      stdoutTruncated: false,
      stderrTruncated: false,
      error: '',
      signerCertificateSerial: this.id.serial,
    });
    const result: SignedResult = { payloadType: STEP_RESULT_TYPE, payload: Buffer.from(payload), signature: signPayload(STEP_RESULT_TYPE, payload, this.s.privateKey) };
    if (this.hold) {
      this.held.set(v.request.stepId, result);
      this.heldFrom = this.generation;
      return;
    }
    this.send(call, result);
  }

  private down(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, why: string): void {
    if (this.call !== call) return;
    const reason = why.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR');
    this.s.stats.failures.set(reason, (this.s.stats.failures.get(reason) ?? 0) + 1);
    const lasted = this.streamingSince > 0 ? Date.now() - this.streamingSince : 0;
    this.teardown();
    if (this.stopped) return;
    if (lasted > HEALTHY_STREAM_MS) this.healthyLostAt = Date.now();
    const delay = reconnectDelay(this.attempt, lasted, this.s.backoff, Math.random, Date.now() - this.healthyLostAt);
    this.attempt = delay.nextAttempt;
    this.retry = setTimeout(() => this.dial(), delay.ms);
  }

  private teardown(): void {
    this.streaming = false;
    this.streamingSince = 0;
    clearTimeout(this.heartbeat);
    clearInterval(this.heartbeat);
    const call = this.call;
    this.call = undefined;
    if (call) {
      call.removeAllListeners('data');
      call.on('error', () => undefined);
      call.cancel();
    }
    this.client?.close();
    this.client = undefined;
    this.dialCreds?.close();
    this.dialCreds = undefined;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.teardown();
  }
}

let sims: ReconnectingSim[] = [];
let shared: Shared | undefined;
let spreadMs = 0;

function reply(m: FromWorker): void {
  process.send?.(m);
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'init': {
      const privateKey = createPrivateKey(m.keyPem);
      shared = {
        address: parseCoordinatorAddress(m.address),
        caPem: Buffer.from(m.caPem),
        keyPem: Buffer.from(m.keyPem),
        privateKey,
        resume: m.resume,
        // --old-backoff: the agent's schedule before recovery retries (the full 30 s ceiling at once).
        backoff: m.oldBackoff ? { initialMs: DEFAULT_BACKOFF.initialMs, maxMs: DEFAULT_BACKOFF.maxMs, factor: DEFAULT_BACKOFF.factor } : DEFAULT_BACKOFF,
        stats: { welcomes: 0, attempts: 0, failures: new Map(), resultsSent: 0, resumed: 0 },
      };
      const hold = new Set(m.hold);
      const s = shared;
      sims = m.ids.map((id) => new ReconnectingSim(id, s, hold.has(id.agentId)));
      spreadMs = m.spreadMs;
      reply({ type: 'ready' });
      return;
    }
    case 'connect':
      // The first connection of the fleet is spread over spreadMs (agents do not boot at one instant).
      sims.forEach((s, i) => setTimeout(() => s.start(), (i / Math.max(1, sims.length)) * spreadMs));
      return;
    case 'stats': {
      const st = shared?.stats;
      const cpu = process.cpuUsage();
      reply({
        type: 'stats',
        streaming: sims.filter((s) => s.streaming).length,
        welcomes: st?.welcomes ?? 0,
        attempts: st?.attempts ?? 0,
        failures: Object.fromEntries(st?.failures ?? []),
        held: sims.reduce((n, s) => n + s.heldCount, 0),
        resultsSent: st?.resultsSent ?? 0,
        resumed: st?.resumed ?? 0,
        cpuMs: (cpu.user + cpu.system) / 1000,
        rssBytes: process.memoryUsage.rss(),
      });
      return;
    }
    case 'stop':
      for (const s of sims) s.stop();
      setTimeout(() => process.exit(0), 200).unref();
      return;
  }
});
process.on('disconnect', () => process.exit(0));
