/**
 * The agent's stream to the coordinator: dial out with the agent certificate, Hello, then
 * heartbeats, steps, acknowledgements and certificate renewal. It reconnects forever with
 * jittered exponential backoff; its life is an explicit state machine (connection-state.ts).
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { AgentTls, TlsSessionCache, type DialCredentials } from './tls-session.js';
import type { Logger } from 'pino';
import { AgentGatewayServiceClient, type ConnectRequest, type ConnectResponse } from '../proto/gen/handrail/v1/gateway.js';
import { envelopeFromWire } from '../proto/codec/step-codec.js';
import { signedKeySetFromWire } from '../proto/codec/dispatch-key-set-codec.js';
import type { SignedCaBundle as WireSignedCaBundle, SignedDispatchKeySet as WireSignedKeySet } from '../proto/gen/handrail/v1/common.js';
import type { KeySetVerdict, SignedDispatchKeySet } from '../core/dispatch-key-set.js';
import type { CaBundleVerdict, SignedCaBundle } from '../core/ca-bundle.js';
import { signedCaBundleFromWire } from '../proto/codec/ca-bundle-codec.js';
import { judgeIssuedCertificate } from './issued-certificate.js';
import { HANDRAIL_VERSION, MIN_COORDINATOR_VERSION } from '../core/version.js';
import { judgeVersions } from '../core/version-compat.js';
import type { HostFacts, Labels } from '../core/labels.js';
import { reconnectDelay, DEFAULT_BACKOFF, HEALTHY_STREAM_MS, type BackoffPolicy } from './backoff.js';
import { ConnectionStateMachine } from './connection-state.js';
import { channelOptions, type CoordinatorAddress } from './coordinator-address.js';
import type { AgentCredentials } from './state-dir.js';
import type { Link, StepExecutor } from './step-executor.js';

export interface ConnectionDeps {
  readonly address: CoordinatorAddress;
  /** The CAs trusted now (PEM; several during a CA roll-over): read at every connection. */
  readonly caPem: () => string;
  readonly credentials: () => AgentCredentials;
  /** Persists renewed credentials and makes them current. */
  readonly saveCredentials: (keyPem: string, certPem: string) => Promise<void>;
  /** Judges a signed dispatch key set and, if it is newer and properly signed, makes it current. */
  readonly offerDispatchKeys: (signed: SignedDispatchKeySet) => Promise<KeySetVerdict>;
  /** Judges a signed CA bundle and, if it is newer and properly signed, makes it current. */
  readonly offerCaBundle: (signed: SignedCaBundle) => Promise<CaBundleVerdict>;
  readonly agentId: string;
  readonly facts: () => HostFacts;
  readonly labels: Labels;
  readonly executor: StepExecutor;
  readonly log: Logger;
  readonly now: () => number;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  readonly channelOptions?: Record<string, string | number>;
  /** Renew when less than this share of the certificate's lifetime remains. */
  readonly renewAtRemainingFraction?: number;
}

export class AgentConnection {
  readonly machine = new ConnectionStateMachine();
  private generation = 0;
  private attempt = 0;
  private client: AgentGatewayServiceClient | undefined;
  /** The current dial's credentials, closed with its client (tls-session.ts says why). */
  private dialCredentials: DialCredentials | undefined;
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private currentLink: (Link & { close(err: Error): void }) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private streamingSince = 0;
  /** When the last healthy stream was lost (retries stay close together for a while after: backoff.ts). */
  private healthyLostAt = Number.NEGATIVE_INFINITY;
  /** The coordinator said it reads DispatchKeysHeld (Welcome.accepts_dispatch_keys_held). */
  private acksKeySets = false;
  /** The coordinator said it reads CaBundleHeld (Welcome.accepts_ca_bundle_held). */
  private acksCaBundles = false;
  private renewPending: { keyPem: string; sentAt: number; generation: number } | undefined;
  private reconnectWhenIdle = false;
  /** Set when the agent itself ends a healthy stream (to pick up a renewed certificate). */
  private intentionalReconnect = false;
  private heartbeatMs = 10_000;
  private tls: { readonly certPem: string; readonly caPem: string; readonly sessions: TlsSessionCache; readonly agentTls: AgentTls } | undefined;
  private readonly listeners: Array<(event: 'welcome' | 'disconnected' | 'expired', detail: string) => void> = [];

  constructor(private readonly d: ConnectionDeps) {}

  link(): Link | undefined {
    return this.currentLink;
  }

  on(fn: (event: 'welcome' | 'disconnected' | 'expired', detail: string) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    this.connect();
  }

  async stop(): Promise<void> {
    if (this.machine.state === 'stopped') return;
    this.machine.move('stopped');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.teardown(new Error('agent stopping'));
  }

  /**
   * mTLS credentials that resume the last TLS session made with this certificate (a restart
   * storm costs the coordinator a fraction of full handshakes). A renewed certificate starts
   * a fresh session cache: a ticket stands for the identity it was made under.
   */
  private agentTls(creds: AgentCredentials): AgentTls {
    // A new certificate or a new CA bundle (a CA roll-over) means new credentials and new sessions.
    const caPem = this.d.caPem();
    if (this.tls?.certPem !== creds.certPem || this.tls.caPem !== caPem) {
      const sessions = new TlsSessionCache();
      this.tls = {
        certPem: creds.certPem,
        caPem,
        sessions,
        agentTls: new AgentTls({ caPem: Buffer.from(caPem), keyPem: Buffer.from(creds.keyPem), certPem: Buffer.from(creds.certPem), tlsName: this.d.address.tlsName, sessions }),
      };
    }
    return this.tls.agentTls;
  }

  private connect(): void {
    if (this.machine.state === 'stopped') return;
    const { d } = this;
    const creds = d.credentials();
    if (d.now() >= creds.notAfter) {
      // No handshake can succeed with it, and only enrollment gives a new one: say so and stop.
      const why = `this agent's certificate expired at ${new Date(creds.notAfter).toISOString()} (it was offline longer than the certificate lasts): enroll again with a new bootstrap token (--token)`;
      d.log.error({ event: 'agent.certificate_expired', notAfter: new Date(creds.notAfter).toISOString() }, why);
      for (const l of this.listeners) l('expired', why);
      return;
    }
    this.machine.move('connecting');
    const dialCredentials = this.agentTls(creds).dial();
    const client = new AgentGatewayServiceClient(d.address.target, dialCredentials, channelOptions(d.address, d.channelOptions));
    this.client = client;
    this.dialCredentials = dialCredentials;
    const call = client.connect();
    this.call = call;
    let welcomed = false;
    const helloTimer = setTimeout(() => {
      if (!welcomed) call.cancel();
    }, 20_000);
    this.timers.push(helloTimer);

    call.on('data', (res: ConnectResponse) => {
      const msg = res.msg;
      if (!msg) return;
      if (msg.$case === 'welcome') {
        welcomed = true;
        clearTimeout(helloTimer);
        const refused = refuseCoordinatorVersion(msg.value.coordinatorVersion);
        if (refused) {
          d.log.error({ event: 'agent.coordinator_version_refused', coordinatorVersion: msg.value.coordinatorVersion.slice(0, 40), upgrade: 'coordinator' }, refused);
          this.onDown(call, refused);
          return;
        }
        this.acksKeySets = msg.value.acceptsDispatchKeysHeld;
        this.acksCaBundles = msg.value.acceptsCaBundleHeld;
        this.onWelcome(call, msg.value.heartbeatIntervalMs);
        this.onDispatchKeys(msg.value.dispatchKeySet, 'welcome');
        this.onCaBundle(msg.value.caBundle, 'welcome').catch(() => undefined);
        return;
      }
      this.onMessage(msg);
    });
    call.on('error', (e: ServiceError) => this.onDown(call, `${statusName(e.code)}: ${e.details || e.message}`));
    call.on('end', () => this.onDown(call, 'stream ended by coordinator'));
    const facts = d.facts();
    call.write({
      msg: {
        $case: 'hello',
        value: { facts, labels: d.labels, spooledResults: d.executor.spooledCount, agentVersion: facts.agentVersion },
      },
    });
  }

  private onWelcome(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, heartbeatMs: number): void {
    if (this.call !== call || this.machine.state !== 'connecting') return;
    this.machine.move('streaming');
    this.streamingSince = this.d.now();
    this.generation++;
    this.heartbeatMs = heartbeatMs > 0 ? heartbeatMs : 10_000;
    this.currentLink = makeLink(call, this.generation);
    this.d.log.info({ event: 'agent.connected', agentId: this.d.agentId, coordinator: this.d.address.target, generation: this.generation, tlsResumed: this.tls?.sessions.lastResumed ?? false }, 'connected to coordinator');
    this.timers.push(setInterval(() => this.tick(), this.heartbeatMs));
    this.maybeRenew();
    this.d.executor.onConnected();
    for (const l of this.listeners) l('welcome', '');
  }

  private onMessage(msg: NonNullable<ConnectResponse['msg']>): void {
    const { d } = this;
    switch (msg.$case) {
      case 'step':
        d.executor.handle(envelopeFromWire(msg.value)).catch((e: unknown) => d.log.error({ event: 'step.handle_failed', err: e }, 'handling a step failed'));
        return;
      case 'cancel':
        d.executor.cancel(msg.value.stepId, msg.value.executionId);
        return;
      case 'ack':
        d.executor.acknowledge(msg.value.stepId, msg.value.refused);
        return;
      case 'renewed': {
        // The bundle first: a certificate from the next CA is judged against the bundle that names it.
        const bundle = msg.value.caBundle;
        const certificatePem = msg.value.certificatePem;
        this.onCaBundle(bundle, 'renewal')
          .then(() => this.onRenewed(certificatePem))
          .catch((e: unknown) => d.log.error({ event: 'agent.renew_save_failed', err: e }, 'saving the renewed certificate failed'));
        this.onDispatchKeys(msg.value.dispatchKeySet, 'renewal');
        return;
      }
      case 'caBundle':
        this.onCaBundle(msg.value, 'rollover').catch(() => undefined);
        return;
      case 'dispatchKeys':
        this.onDispatchKeys(msg.value, 'rotation');
        return;
      case 'disconnect':
        if (msg.value.upgrade !== '') {
          // Retrying goes on (slowly, by the backoff) so that an upgraded side is picked up by itself.
          d.log.error({ event: 'agent.version_refused', upgrade: msg.value.upgrade, reason: msg.value.reason }, `the coordinator refused this agent's version: ${msg.value.reason}`);
          return;
        }
        d.log.warn({ event: 'agent.disconnect_notice', reason: msg.value.reason }, `coordinator is closing the stream: ${msg.value.reason}`);
        return;
      case 'welcome':
        return;
    }
  }

  private tick(): void {
    const link = this.currentLink;
    if (!link) return;
    void link.send({ msg: { $case: 'heartbeat', value: { sentAtMs: this.d.now(), runningSteps: this.d.executor.runningCount } } }).catch(() => undefined);
    this.maybeRenew();
    if (this.reconnectWhenIdle && this.d.executor.runningCount === 0) {
      this.reconnectWhenIdle = false;
      this.intentionalReconnect = true;
      this.d.log.info({ event: 'agent.reconnect_for_renewal' }, 'reconnecting with the renewed certificate');
      this.call?.cancel();
    }
  }

  private maybeRenew(): void {
    const { d } = this;
    const creds = d.credentials();
    const now = d.now();
    const lifetime = creds.notAfter - creds.notBefore;
    const remaining = creds.notAfter - now;
    if (remaining > lifetime * (d.renewAtRemainingFraction ?? 1 / 3)) return;
    // A request sent on a stream that has since dropped got no answer: ask again on this one at once.
    if (this.renewPending && this.renewPending.generation === this.generation && now - this.renewPending.sentAt < 30_000) return;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.renewPending = { keyPem, sentAt: now, generation: this.generation };
    d.log.info({ event: 'agent.renew_requested', notAfter: new Date(creds.notAfter).toISOString() }, 'requesting a new certificate');
    // The CSR code is loaded only when a CSR is needed (enrollment, renewal).
    void import('../core/csr.js')
      .then(({ createCsr }) => this.currentLink?.send({ msg: { $case: 'renew', value: { csrPem: createCsr(privateKey, d.agentId) } } }))
      .catch(() => undefined);
  }

  private async onRenewed(certPem: string): Promise<void> {
    const pending = this.renewPending;
    if (!pending) return;
    const verdict = judgeIssuedCertificate({ certPem, caPem: this.d.caPem(), agentId: this.d.agentId, privateKey: createPrivateKey(pending.keyPem), now: this.d.now() });
    if (!verdict.ok) {
      // Keep the identity we have; a fresh key and CSR go out at the next renewal attempt.
      this.d.log.error({ event: 'agent.renewal_refused', agentId: this.d.agentId, reason: verdict.reason }, `renewed certificate refused, keeping the current one: ${verdict.reason}`);
      this.reportTrustRefused('certificate', verdict.reason);
      return;
    }
    await this.d.saveCredentials(pending.keyPem, certPem);
    this.renewPending = undefined;
    this.d.log.info({ event: 'agent.renewed', notAfter: new Date(this.d.credentials().notAfter).toISOString() }, 'certificate renewed');
    this.reconnectWhenIdle = true;
  }

  /** A key set the coordinator sent (welcome, renewal, rotation): taken only if signed by what we trust. */
  private onDispatchKeys(wire: WireSignedKeySet | undefined, source: 'welcome' | 'renewal' | 'rotation'): void {
    const { d } = this;
    if (!wire) return;
    d.offerDispatchKeys(signedKeySetFromWire(wire))
      .then((verdict) => {
        if (!verdict.ok) {
          d.log.error({ event: 'agent.dispatch_keys_refused', agentId: d.agentId, source, reason: verdict.reason }, `dispatch key set refused, keeping the trusted keys: ${verdict.reason}`);
          this.reportTrustRefused('dispatch_keys', verdict.reason);
          return;
        }
        // Said after every accepted set, changed or not: the coordinator switches to a new key only once agents hold it.
        if (this.acksKeySets) this.currentLink?.send({ msg: { $case: 'dispatchKeysHeld', value: { version: verdict.set.version, keyIds: verdict.set.keys.map((k) => k.keyId) } } }).catch(() => undefined);
        if (verdict.changed) {
          d.log.info(
            { event: 'agent.dispatch_keys_updated', agentId: d.agentId, source, version: verdict.set.version, keyIds: verdict.set.keys.map((k) => k.keyId), signer: verdict.signer },
            'trusted dispatch keys updated',
          );
        }
      })
      .catch((e: unknown) => d.log.error({ event: 'agent.dispatch_keys_save_failed', agentId: d.agentId, err: e }, 'saving the dispatch key set failed; keeping the trusted keys'));
  }

  /** A CA bundle the coordinator sent (welcome, renewal, roll-over): taken only if signed by a CA we trust. Never rejects. */
  private async onCaBundle(wire: WireSignedCaBundle | undefined, source: 'welcome' | 'renewal' | 'rollover'): Promise<void> {
    const { d } = this;
    if (!wire) return;
    try {
      const verdict = await d.offerCaBundle(signedCaBundleFromWire(wire));
      if (!verdict.ok) {
        d.log.error({ event: 'agent.ca_bundle_refused', agentId: d.agentId, source, reason: verdict.reason }, `CA bundle refused, keeping the trusted CAs: ${verdict.reason}`);
        this.reportTrustRefused('ca_bundle', verdict.reason);
        return;
      }
      if (this.acksCaBundles) this.currentLink?.send({ msg: { $case: 'caBundleHeld', value: { version: verdict.bundle.version, fingerprints: [...verdict.fingerprints] } } }).catch(() => undefined);
      if (verdict.changed) {
        d.log.info({ event: 'agent.ca_bundle_updated', agentId: d.agentId, source, version: verdict.bundle.version, fingerprints: verdict.fingerprints, signer: verdict.signer }, 'trusted CAs updated');
      }
    } catch (e) {
      d.log.error({ event: 'agent.ca_bundle_save_failed', agentId: d.agentId, err: e }, 'saving the CA bundle failed; keeping the trusted CAs');
    }
  }

  private reportTrustRefused(what: 'certificate' | 'dispatch_keys' | 'ca_bundle', reason: string): void {
    this.currentLink?.send({ msg: { $case: 'trustRefused', value: { what, reason: reason.slice(0, 500) } } }).catch(() => undefined);
  }

  private onDown(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, why: string): void {
    if (this.call !== call) return;
    const lasted = this.streamingSince > 0 ? this.d.now() - this.streamingSince : 0;
    this.teardown(new Error(why));
    if (this.machine.state === 'stopped') return;
    const intentional = this.intentionalReconnect;
    this.intentionalReconnect = false;
    // A stream that held for a while was healthy: the backoff starts over (reconnectDelay).
    if (lasted > HEALTHY_STREAM_MS) this.healthyLostAt = this.d.now();
    const next = reconnectDelay(this.attempt, lasted, this.d.backoff ?? DEFAULT_BACKOFF, this.d.random, this.d.now() - this.healthyLostAt);
    // An intentional reconnect (a renewed certificate) goes at once and counts no attempt.
    const delay = intentional ? 0 : next.ms;
    this.attempt = intentional ? next.nextAttempt - 1 : next.nextAttempt;
    this.d.log.warn({ event: 'agent.disconnected', reason: why, retryInMs: delay, attempt: this.attempt }, `disconnected (${why}); retrying in ${delay} ms`);
    for (const l of this.listeners) l('disconnected', why);
    this.machine.move('backoff');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private teardown(err: Error): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.currentLink?.close(err);
    this.currentLink = undefined;
    this.streamingSince = 0;
    const call = this.call;
    this.call = undefined;
    if (call) {
      call.removeAllListeners('data');
      call.on('error', () => undefined);
      call.cancel();
    }
    this.client?.close();
    this.client = undefined;
    this.dialCredentials?.close();
    this.dialCredentials = undefined;
  }
}

function makeLink(call: ClientDuplexStream<ConnectRequest, ConnectResponse>, generation: number): Link & { close(err: Error): void } {
  let closed: Error | undefined;
  let waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  call.on('drain', () => {
    const w = waiters;
    waiters = [];
    for (const x of w) x.resolve();
  });
  return {
    generation,
    send(msg: ConnectRequest): Promise<void> {
      if (closed) return Promise.reject(closed);
      if (call.write(msg)) return Promise.resolve();
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    close(err: Error): void {
      closed = err;
      const w = waiters;
      waiters = [];
      for (const x of w) x.reject(err);
    },
  };
}

/** The release that served agents before Welcome carried coordinator_version. */
const PRE_HANDSHAKE_COORDINATOR_VERSION = '0.1.0';

/** Why this agent will not work with a coordinator of that version, or undefined if it will. */
function refuseCoordinatorVersion(reported: string): string | undefined {
  const verdict = judgeVersions({ self: 'agent', ownVersion: HANDRAIL_VERSION, peerVersion: reported === '' ? PRE_HANDSHAKE_COORDINATOR_VERSION : reported, minPeerVersion: MIN_COORDINATOR_VERSION });
  return verdict.ok ? undefined : verdict.message;
}

function statusName(code: number | undefined): string {
  const names = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
  return code !== undefined ? (names[code] ?? String(code)) : 'UNKNOWN';
}
