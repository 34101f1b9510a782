/**
 * The agent gateway: one TLS port (see tls-front-door.ts) feeding an enrollment server and
 * the mTLS agent stream server, the live sessions, heartbeats, certificate renewal over the
 * stream and immediate revocation of live streams.
 */
import { Server, ServerCredentials, status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  AgentGatewayServiceService,
  type ConnectRequest,
  type ConnectResponse,
  type Hello,
} from '../../proto/gen/handrail/v1/gateway.js';
import { EnrollmentServiceService, type EnrollRequest, type EnrollResponse } from '../../proto/gen/handrail/v1/enrollment.js';
import { AgentSession, type SessionHandler } from './agent-session.js';
import { TlsFrontDoor, type PeerIdentity } from './tls-front-door.js';
import { addHealthAndReflection, HealthStatus } from './health-service.js';
import { toGrpcError } from './grpc-status.js';
import { transportWatch } from './transport-watch.js';
import type { AgentRegistry } from '../registry/agent-registry.js';
import type { Enroller } from '../registry/enrollment.js';
import { agentCertValidity, caSummary, isProbeCertificate, issueAgentCertificate, normalizeSerial, parseCsr } from '../pki/ca.js';
import type { CaSource } from '../pki/ca-source.js';
import { signedCaBundleToWire } from '../../proto/codec/ca-bundle-codec.js';
import { dispatchSetVersion, type Keyring } from '../pki/keyring.js';
import { currentDispatchKeySet } from '../pki/dispatch-key-set.js';
import { signedKeySetToWire } from '../../proto/codec/dispatch-key-set-codec.js';
import type { SignedDispatchKeySet as WireSignedKeySet } from '../../proto/gen/handrail/v1/common.js';
import type { Database } from '../store/database.js';
import type { Counters } from '../metrics/counters.js';
import { boundFacts, labelProblems } from '../../core/labels.js';
import { describeError } from '../../core/errors.js';
import { HANDRAIL_VERSION, MIN_AGENT_VERSION } from '../../core/version.js';
import { judgeVersions } from '../../core/version-compat.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { VersionRefusalLog } from '../audit/version-refusal-log.js';

/** How often the certs dir is reread for CA roll-over steps. */
const CA_POLL_MS = 1000;

/** How long the key set made for one Welcome is reused for the next ones (its issued-at is informational). */
const WELCOME_KEY_SET_REUSE_MS = 60_000;

/** Hard cap enforced by grpc-js itself; see maxMessageBytes for the limit that is logged. */
const HARD_MESSAGE_CAP = 8 * 1024 * 1024;

/** The agent stream with requests left undecoded (the session decodes, so failures are attributable). */
const RAW_GATEWAY_SERVICE = {
  connect: { ...AgentGatewayServiceService.connect, requestDeserialize: (b: Buffer): Buffer => b },
} as const;

/** Step traffic from agents, handled by the step dispatcher. */
export interface StepTraffic {
  agentReady(agentId: string): void;
  inbound(session: AgentSession, msg: NonNullable<ConnectRequest['msg']>): void;
}

export interface GatewayConfig {
  readonly heartbeatIntervalMs: number;
  readonly certTtlMs: number;
  readonly maxMessageBytes: number;
  readonly revocationPollMs: number;
  readonly helloTimeoutMs: number;
}

export interface GatewayDeps {
  readonly db: Database;
  /** The CA, reread from the certs dir while running (CA roll-over). */
  readonly ca: CaSource;
  readonly keyring: Keyring;
  readonly registry: AgentRegistry;
  readonly enroller: Enroller;
  readonly audit: AuditLog;
  readonly versionRefusals: VersionRefusalLog;
  readonly log: Logger;
  readonly counters: Counters;
  readonly now: () => number;
  readonly config: GatewayConfig;
}

export class Gateway implements SessionHandler {
  private readonly sessions = new Map<string, AgentSession>();
  private readonly enrollServer: Server;
  private readonly agentServer: Server;
  private frontDoor: TlsFrontDoor | undefined;
  private traffic: StepTraffic | undefined;
  private readonly seen = new Map<string, number>();
  private readonly intervals: NodeJS.Timeout[] = [];
  private readonly lastRenewal = new Map<string, number>();
  private readonly readyListeners: Array<(agentId: string) => void> = [];
  private readonly closedListeners: Array<(agentId: string) => void> = [];
  /** grpc.health.v1 status of the agent port: SERVING from listen() until close(). */
  readonly health = new HealthStatus();
  /** The dispatch key set version agents were last sent; a higher one in the store is broadcast. */
  private keySetVersion = 0;
  private pollingKeys = false;
  /** The CA bundle version agents were last sent (0: none). */
  private caBundleVersion = 0;
  private pollingCa = false;
  /**
   * The signed dispatch key set sent with every Welcome, made once and reused while the set is
   * unchanged (pollKeys drops it on any key change): making it per connection cost two queries
   * and a signature per reconnecting agent.
   */
  private welcomeKeySet: { readonly version: number; readonly at: number; readonly set: Promise<WireSignedKeySet> } | undefined;

  constructor(private readonly d: GatewayDeps) {
    const common = {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      'grpc.max_send_message_length': d.config.maxMessageBytes,
      // Channelz keeps a tracker and trace per connection and call; nothing here reads it, and a
      // coordinator holds thousands of agent connections (bench/reconnect.ts --idle-seconds).
      'grpc.enable_channelz': 0,
    };
    // Unauthenticated peers: small messages, few streams, and idle connections are closed.
    this.enrollServer = new Server({
      ...common,
      'grpc.max_receive_message_length': 64 * 1024,
      'grpc.max_concurrent_streams': 2,
      'grpc.max_connection_idle_ms': 30_000,
      'grpc.max_connection_age_ms': 120_000,
      'grpc.max_connection_age_grace_ms': 10_000,
    });
    // grpc-js cuts anything over the hard cap silently; the session refuses (and logs) anything over maxMessageBytes.
    this.agentServer = new Server({
      ...common,
      'grpc.max_receive_message_length': HARD_MESSAGE_CAP,
      'grpc.max_concurrent_streams': 4,
      interceptors: [
        transportWatch({
          capBytes: HARD_MESSAGE_CAP,
          onRefused: (r) => {
            d.counters.inc('messages_refused_total', { reason: r.reason });
            d.log.warn({ event: 'session.message_refused', agentId: r.agentId, remote: r.remote, reason: r.reason }, r.detail);
          },
          onUnavailable: () => d.log.error({ event: 'gateway.transport_watch_unavailable' }, 'this grpc-js version hides the request stream: transport-level refusals are not logged'),
        }),
      ],
    });
    this.enrollServer.addService(EnrollmentServiceService, { enroll: (call: ServerUnaryCall<EnrollRequest, EnrollResponse>, cb: sendUnaryData<EnrollResponse>) => this.enroll(call, cb) });
    // A client without a certificate that tries the agent stream gets a clear refusal.
    this.enrollServer.addService(AgentGatewayServiceService, {
      connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
        this.d.counters.inc('connections_refused_total', { reason: 'no_client_certificate' });
        this.d.log.warn({ event: 'gateway.connection_refused', reason: 'no_client_certificate', remote: call.getPeer() }, 'agent stream without a client certificate refused');
        call.emit('error', { code: status.UNAUTHENTICATED, details: 'a client certificate is required: enroll first with a bootstrap token' });
      },
    });
    this.agentServer.addService(RAW_GATEWAY_SERVICE, { connect: (call: ServerDuplexStream<Buffer, ConnectResponse>) => this.connect(call) });
    // Health and reflection for certificate holders only (health-service.ts says why).
    addHealthAndReflection(this.agentServer, this.health);
  }

  setTraffic(traffic: StepTraffic): void {
    this.traffic = traffic;
  }

  onAgentReady(fn: (agentId: string) => void): void {
    this.readyListeners.push(fn);
  }

  /** Resolves true as soon as the agent has a live stream, false after `timeoutMs`. */
  waitOnline(agentId: string, timeoutMs: number): Promise<boolean> {
    if (this.isOnline(agentId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const listener = (id: string): void => {
        if (id !== agentId) return;
        done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        const i = this.readyListeners.indexOf(listener);
        if (i >= 0) this.readyListeners.splice(i, 1);
        resolve(v);
      };
      this.readyListeners.push(listener);
    });
  }

  onAgentClosed(fn: (agentId: string) => void): void {
    this.closedListeners.push(fn);
  }

  async listen(host: string, port: number): Promise<number> {
    const { d } = this;
    await d.registry.resetConnections();
    await d.registry.warm();
    this.frontDoor = new TlsFrontDoor(
      // During a CA roll-over, agent certificates of the next CA are accepted too.
      { caPem: d.ca.current.trustPem, certPem: d.ca.current.serverCertPem, keyPem: d.ca.current.serverKeyPem },
      this.enrollServer.createConnectionInjector(ServerCredentials.createInsecure()),
      this.agentServer.createConnectionInjector(ServerCredentials.createInsecure()),
      d.registry,
      d.log,
      d.counters,
      d.now,
      (cert) => d.ca.issuerOfVerified(cert),
    );
    const bound = await this.frontDoor.listen(host, port);
    this.logCaOverlap();
    this.caBundleVersion = d.ca.current.bundle?.version ?? 0;
    this.intervals.push(setInterval(() => this.pollCa().catch(() => undefined), CA_POLL_MS));
    // Both catch and log their own failures; the catch here only keeps lint and Node honest.
    this.intervals.push(setInterval(() => this.pollRevocations().catch(() => undefined), d.config.revocationPollMs));
    this.keySetVersion = dispatchSetVersion(await d.keyring.publicKeys('dispatch'));
    this.intervals.push(setInterval(() => this.pollKeys().catch(() => undefined), d.config.revocationPollMs));
    this.intervals.push(setInterval(() => this.flushLastSeen().catch(() => undefined), Math.max(1000, d.config.heartbeatIntervalMs / 2)));
    this.intervals.push(setInterval(() => this.reapSilent(), d.config.heartbeatIntervalMs));
    this.health.set('serving');
    return bound;
  }

  async close(): Promise<void> {
    this.health.set('not_serving');
    for (const t of this.intervals) clearInterval(t);
    // No new connections first; then end the streams and let what agents already sent
    // (results, output) reach the store: agents spool anything later and resend it.
    this.frontDoor?.stopAccepting();
    const open = [...this.sessions.values()];
    for (const s of open) s.close('coordinator shutting down', status.UNAVAILABLE);
    await Promise.all(open.map((s) => s.settled()));
    await this.frontDoor?.close();
    this.enrollServer.forceShutdown();
    this.agentServer.forceShutdown();
    await this.flushLastSeen();
  }

  isOnline(agentId: string): boolean {
    return this.sessions.get(agentId)?.state === 'ready';
  }

  onlineCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state === 'ready') n++;
    return n;
  }

  /** Agent-port connections being admitted (accept to checked certificate) and waiting for admission. */
  admissionState(): { admitting: number; queued: number } {
    return this.frontDoor?.admissionState() ?? { admitting: 0, queued: 0 };
  }

  /** Messages queued behind slow agents, over every session. */
  queuedMessages(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.queuedMessages;
    return n;
  }

  session(agentId: string): AgentSession | undefined {
    const s = this.sessions.get(agentId);
    return s?.state === 'ready' ? s : undefined;
  }

  send(agentId: string, msg: ConnectResponse): boolean {
    const s = this.sessions.get(agentId);
    if (!s || s.state !== 'ready') return false;
    return s.send(msg);
  }

  // ---- enrollment ----

  private enroll(call: ServerUnaryCall<EnrollRequest, EnrollResponse>, cb: sendUnaryData<EnrollResponse>): void {
    const req = call.request;
    const remote = call.getPeer();
    this.d.enroller
      .enroll({ token: req.token, csrPem: req.csrPem, labels: req.labels, facts: req.facts, remote })
      .then(async (out) => {
        // The CA vouches for the dispatch keys here: the new agent trusts nothing else yet.
        const keySet = await currentDispatchKeySet(this.d.keyring, this.d.now(), this.d.ca.current);
        cb(null, {
          agentId: out.agentId,
          certificatePem: out.certificatePem,
          caPem: this.d.ca.current.caCertPem,
          dispatchKeys: [],
          labels: out.labels,
          dispatchKeySet: signedKeySetToWire(keySet),
        });
      })
      .catch((e: unknown) => {
        this.d.log.info({ event: 'enroll.failed', remote, reason: describeError(e) }, 'enrollment failed');
        cb(toGrpcError(e));
      });
  }

  // ---- agent streams ----

  private connect(call: ServerDuplexStream<Buffer, ConnectResponse>): void {
    const { d } = this;
    const remote = call.getPeer();
    const peer = this.peerIdentity(call, remote);
    if (!peer) {
      d.counters.inc('connections_refused_total', { reason: 'no_client_certificate' });
      call.emit('error', { code: status.UNAUTHENTICATED, details: 'client certificate required' });
      return;
    }
    if (peer.probe) {
      d.counters.inc('connections_refused_total', { reason: 'probe_certificate' });
      d.log.warn({ event: 'gateway.connection_refused', reason: 'probe_certificate', remote }, 'agent stream with a probe certificate refused');
      call.emit('error', { code: status.PERMISSION_DENIED, details: 'a probe certificate serves health and reflection only, not an agent stream' });
      return;
    }
    const { agentId, serial } = peer;
    const now = d.now();
    // Checked again per stream (a revocation may land between handshake and stream).
    d.registry
      .checkPeer(agentId, serial, now, peer.fingerprint256)
      .then((verdict) => {
        if (!verdict.ok) {
          d.counters.inc('connections_refused_total', { reason: verdict.reason });
          d.log.warn({ event: 'gateway.connection_refused', agentId, serial, remote, reason: verdict.reason }, 'agent stream refused');
          call.emit('error', { code: status.PERMISSION_DENIED, details: `agent ${agentId} refused: ${verdict.reason.replace(/_/g, ' ')}` });
          return;
        }
        const session = new AgentSession(
          call,
          { agentId, serial, certNotAfter: verdict.cert.notAfter, remote, caFingerprint: peer.caFingerprint },
          this,
          { helloTimeoutMs: d.config.helloTimeoutMs, maxQueuedMessages: 4096, maxQueuedBytes: 16 * 1024 * 1024, pauseAfterPendingWrites: 64, maxMessageBytes: d.config.maxMessageBytes },
          d.log,
          now,
        );
        session.onRefusedMessage = (reason) => d.counters.inc('messages_refused_total', { reason });
        const previous = this.sessions.get(agentId);
        this.sessions.set(agentId, session);
        if (previous) previous.close('superseded by a newer connection from the same agent', status.ABORTED);
        session.start(now);
      })
      .catch((e: unknown) => {
        d.log.error({ event: 'gateway.connect_failed', agentId, err: e }, 'connect failed');
        call.emit('error', { code: status.INTERNAL, details: 'internal error' });
      });
  }

  /** The certificate of this stream's connection: as the front door read it, else from the TLS socket. */
  private peerIdentity(call: ServerDuplexStream<Buffer, ConnectResponse>, remote: string): PeerIdentity | undefined {
    const known = this.frontDoor?.identity(remote);
    if (known) return known;
    const peer = call.getAuthContext().sslPeerCertificate;
    if (!peer) return undefined;
    return { agentId: typeof peer.subject?.CN === 'string' ? peer.subject.CN : '', serial: normalizeSerial(peer.serialNumber ?? ''), fingerprint256: peer.fingerprint256, probe: isProbeCertificate(peer.subjectaltname), caFingerprint: peer.raw ? (this.d.ca.issuerOf(peer.raw) ?? '') : '' };
  }

  async hello(session: AgentSession, hello: Hello): Promise<void> {
    const { d } = this;
    const now = d.now();
    const facts = boundFacts(hello.facts);
    // Agents from before the handshake field still report their release among the host facts.
    const agentVersion = hello.agentVersion !== '' ? hello.agentVersion : facts.agentVersion;
    const verdict = judgeVersions({ self: 'coordinator', ownVersion: HANDRAIL_VERSION, peerVersion: agentVersion, minPeerVersion: MIN_AGENT_VERSION });
    if (!verdict.ok) {
      d.counters.inc('connections_refused_total', { reason: 'agent_version' });
      d.log.warn({ event: 'agent.version_refused', agentId: session.agentId, agentVersion: agentVersion.slice(0, 40), upgrade: verdict.upgrade }, verdict.message);
      d.versionRefusals.record({ stage: 'stream', agentId: session.agentId, name: null, agentVersion, coordinatorVersion: HANDRAIL_VERSION, upgrade: verdict.upgrade, remote: session.identity.remote });
      session.close(verdict.message, status.FAILED_PRECONDITION, verdict.upgrade);
      return;
    }
    const ownLabels = labelProblems(hello.labels).length === 0 ? hello.labels : {};
    if (labelProblems(hello.labels).length > 0) {
      d.log.warn({ event: 'session.bad_labels', agentId: session.agentId, problems: labelProblems(hello.labels) }, 'agent reported invalid labels; ignored');
    }
    const [record, keySet] = await Promise.all([
      d.registry.markConnected(session.agentId, { facts, ownLabels, address: session.identity.remote, heartbeatIntervalMs: d.config.heartbeatIntervalMs }, now),
      this.keySetForWelcome(now),
    ]);
    if (session.state !== 'ready') return;
    session.send({
      msg: {
        $case: 'welcome',
        value: {
          agentId: session.agentId,
          serverTimeMs: now,
          heartbeatIntervalMs: d.config.heartbeatIntervalMs,
          certificateNotAfterMs: session.identity.certNotAfter,
          dispatchKeySet: keySet,
          coordinatorVersion: HANDRAIL_VERSION,
          acceptsDispatchKeysHeld: true,
          caBundle: this.wireCaBundle(),
          acceptsCaBundleHeld: true,
        },
      },
    });
    d.counters.inc('sessions_started_total');
    d.log.info(
      { event: 'agent.connected', agentId: session.agentId, name: record.name, remote: session.identity.remote, version: facts.agentVersion, spooled: hello.spooledResults },
      'agent connected',
    );
    for (const fn of this.readyListeners) fn(session.agentId);
    this.traffic?.agentReady(session.agentId);
  }

  private keySetForWelcome(now: number): Promise<WireSignedKeySet> {
    const c = this.welcomeKeySet;
    if (c && c.version === this.keySetVersion && now - c.at < WELCOME_KEY_SET_REUSE_MS) return c.set;
    const set = currentDispatchKeySet(this.d.keyring, now).then(signedKeySetToWire);
    const entry = { version: this.keySetVersion, at: now, set };
    this.welcomeKeySet = entry;
    set.catch(() => {
      if (this.welcomeKeySet === entry) this.welcomeKeySet = undefined;
    });
    return set;
  }

  message(session: AgentSession, msg: NonNullable<ConnectRequest['msg']>): void {
    session.lastSeenAt = this.d.now();
    this.seen.set(session.agentId, session.lastSeenAt);
    switch (msg.$case) {
      case 'heartbeat':
        return;
      case 'renew':
        this.renew(session, msg.value.csrPem).catch((e: unknown) => {
          this.d.log.warn({ event: 'agent.renew_failed', agentId: session.agentId, reason: describeError(e) }, 'certificate renewal refused');
        });
        return;
      case 'hello':
        return;
      case 'dispatchKeysHeld':
        this.keysHeld(session, msg.value.version);
        return;
      case 'caBundleHeld':
        this.caBundleHeld(session, msg.value.version);
        return;
      case 'trustRefused':
        this.d.counters.inc('agent_trust_refusals_total', { what: msg.value.what === 'certificate' || msg.value.what === 'ca_bundle' ? msg.value.what : 'dispatch_keys' });
        this.d.log.warn(
          { event: 'agent.trust_refused', agentId: session.agentId, what: msg.value.what.slice(0, 40), reason: msg.value.reason.slice(0, 500) },
          `agent refused a ${msg.value.what.slice(0, 40)} update: ${msg.value.reason.slice(0, 500)}`,
        );
        return;
      default:
        if (!this.traffic) {
          this.d.log.warn({ event: 'session.no_dispatcher', agentId: session.agentId, kind: msg.$case }, 'no dispatcher attached');
          return;
        }
        this.traffic.inbound(session, msg);
    }
  }

  closed(session: AgentSession, reason: string): void {
    if (this.sessions.get(session.agentId) === session) {
      this.sessions.delete(session.agentId);
      const now = this.d.now();
      this.seen.delete(session.agentId);
      void this.d.registry.markDisconnected(session.agentId, now).catch(() => undefined);
      for (const fn of this.closedListeners) fn(session.agentId);
    }
    this.d.log.info({ event: 'agent.disconnected', agentId: session.agentId, reason }, 'agent disconnected');
  }

  private async renew(session: AgentSession, csrPem: string): Promise<void> {
    const { d } = this;
    const now = d.now();
    const last = this.lastRenewal.get(session.agentId) ?? 0;
    if (now - last < 10_000) throw new Error('renewals are limited to one per 10 seconds');
    this.lastRenewal.set(session.agentId, now);
    const csr = parseCsr(csrPem);
    if (csr.commonName !== session.agentId) throw new Error(`renewal CSR names ${csr.commonName}, expected ${session.agentId}`);
    const cert = issueAgentCertificate(d.ca.current, csr, session.agentId, agentCertValidity(now, d.config.certTtlMs));
    await d.db.write(async (tx) => {
      await d.registry.recordRenewal(tx, session.agentId, cert, now);
      await d.audit.append(tx, {
        type: AuditEvents.agentRenewed,
        actor: { kind: 'agent', id: session.agentId },
        data: { agentId: session.agentId, previousSerial: session.identity.serial, certificateSerial: cert.serial, notAfter: new Date(cert.notAfter).toISOString() },
      });
    });
    const keySet = await currentDispatchKeySet(d.keyring, now);
    session.send({ msg: { $case: 'renewed', value: { certificatePem: cert.pem, dispatchKeys: [], dispatchKeySet: signedKeySetToWire(keySet), caBundle: this.wireCaBundle() } } });
    d.counters.inc('renewals_total');
    d.log.info({ event: 'agent.renewed', agentId: session.agentId, serial: cert.serial, notAfter: cert.notAfter }, 'agent certificate renewed');
  }

  private keysHeld(session: AgentSession, version: number): void {
    if (!Number.isSafeInteger(version) || version < 1) return;
    this.d.log.info({ event: 'agent.dispatch_keys_held', agentId: session.agentId, version }, 'agent holds the dispatch key set');
    this.d.registry.recordDispatchKeysHeld(session.agentId, version).catch((e: unknown) => this.d.log.error({ event: 'agent.dispatch_keys_held_failed', agentId: session.agentId, err: e }, 'recording the dispatch key set an agent holds failed'));
  }

  private caBundleHeld(session: AgentSession, version: number): void {
    if (!Number.isSafeInteger(version) || version < 1) return;
    this.d.log.info({ event: 'agent.ca_bundle_held', agentId: session.agentId, version }, 'agent holds the CA bundle');
    this.d.registry.recordCaBundleHeld(session.agentId, version).catch((e: unknown) => this.d.log.error({ event: 'agent.ca_bundle_held_failed', agentId: session.agentId, err: e }, 'recording the CA bundle an agent holds failed'));
  }

  private wireCaBundle(): ReturnType<typeof signedCaBundleToWire> | undefined {
    const b = this.d.ca.signedBundle();
    return b ? signedCaBundleToWire(b) : undefined;
  }

  private logCaOverlap(): void {
    const ca = this.d.ca.current;
    const other = ca.nextCaCertPem ?? ca.previousCaCertPem;
    if (!other) return;
    this.d.log.info(
      { event: 'gateway.ca_overlap', current: caSummary(ca.caCertPem).fingerprint256, [ca.nextCaCertPem ? 'next' : 'previous']: caSummary(other).fingerprint256, bundleVersion: ca.bundle?.version ?? null },
      'CA roll-over under way: agent certificates of both CAs are accepted',
    );
  }

  /**
   * Takes up CA changes made by `handrail ca rotate|switch|retire` (another process, the certs
   * dir): the TLS front door gets the new trust and server certificate, a new bundle goes to
   * every live stream, and streams whose certificate no trusted CA issued any more are ended.
   */
  private async pollCa(): Promise<void> {
    if (this.pollingCa) return;
    this.pollingCa = true;
    const { d } = this;
    try {
      if (!(await d.ca.refresh())) return;
      const ca = d.ca.current;
      this.frontDoor?.updateCredentials({ caPem: ca.trustPem, certPem: ca.serverCertPem, keyPem: ca.serverKeyPem });
      d.log.info({ event: 'gateway.ca_reloaded', issuing: caSummary(ca.caCertPem).fingerprint256, trusted: ca.trustedCaPems.length, bundleVersion: ca.bundle?.version ?? null }, 'CA files changed: trust, server certificate and issuing CA reloaded');
      this.logCaOverlap();
      const trusted = new Set(d.ca.trustedFingerprints());
      for (const s of [...this.sessions.values()]) {
        if (s.identity.caFingerprint !== '' && !trusted.has(s.identity.caFingerprint)) {
          d.counters.inc('connections_refused_total', { reason: 'untrusted' });
          d.log.warn({ event: 'agent.retired_ca_stream_closed', agentId: s.agentId, caFingerprint: s.identity.caFingerprint }, 'stream of an agent whose certificate a retired CA issued closed');
          s.close('the CA that issued this agent certificate was retired: enroll again', status.PERMISSION_DENIED);
        }
      }
      const version = ca.bundle?.version ?? 0;
      if (version === this.caBundleVersion) return;
      this.caBundleVersion = version;
      const bundle = this.wireCaBundle();
      if (!bundle) return;
      let sent = 0;
      for (const s of this.sessions.values()) {
        if (s.state !== 'ready') continue;
        s.send({ msg: { $case: 'caBundle', value: bundle } });
        sent++;
      }
      d.log.info({ event: 'gateway.ca_bundle_sent', version, agents: sent }, `CA bundle ${version} sent to ${sent} online agent(s)`);
    } catch (e) {
      d.log.warn({ event: 'gateway.ca_reload_failed', reason: describeError(e) }, 'the CA files do not fit together (a roll-over step may be under way); keeping the CA loaded before');
    } finally {
      this.pollingCa = false;
    }
  }

  /**
   * Takes up key changes made by `handrail keys …` (another process, same store): a switch of
   * the signing key, and a new dispatch key set, which goes to every live stream at once.
   */
  private async pollKeys(): Promise<void> {
    if (this.pollingKeys) return;
    this.pollingKeys = true;
    try {
      const { d } = this;
      const changed = await d.keyring.refresh();
      if (changed.length > 0) this.welcomeKeySet = undefined;
      for (const purpose of changed) d.log.info({ event: 'keys.active_changed', purpose, keyId: d.keyring.active(purpose).keyId }, `now signing with ${purpose} key ${d.keyring.active(purpose).keyId}`);
      const version = dispatchSetVersion(await d.keyring.publicKeys('dispatch'));
      if (version === this.keySetVersion) return;
      this.welcomeKeySet = undefined;
      const keySet = signedKeySetToWire(await currentDispatchKeySet(d.keyring, d.now()));
      this.keySetVersion = version;
      let sent = 0;
      for (const s of this.sessions.values()) {
        if (s.state !== 'ready') continue;
        s.send({ msg: { $case: 'dispatchKeys', value: keySet } });
        sent++;
      }
      d.log.info({ event: 'gateway.dispatch_keys_sent', version, agents: sent }, `dispatch key set ${version} sent to ${sent} online agent(s)`);
    } catch (e) {
      this.d.log.error({ event: 'gateway.key_poll_failed', err: e }, 'reading the signing keys failed');
    } finally {
      this.pollingKeys = false;
    }
  }

  private async pollRevocations(): Promise<void> {
    try {
      await this.d.registry.pollRevocations();
      for (const id of [...this.sessions.keys()].filter((a) => this.d.registry.isRevoked(a))) {
        const s = this.sessions.get(id);
        if (s) {
          this.d.counters.inc('connections_refused_total', { reason: 'revoked' });
          this.d.log.warn({ event: 'agent.revoked_stream_closed', agentId: id }, 'revoked agent disconnected');
          s.close('agent identity revoked', status.PERMISSION_DENIED);
        }
      }
    } catch (e) {
      this.d.log.error({ event: 'gateway.revocation_poll_failed', err: e }, 'revocation poll failed');
    }
  }

  private async flushLastSeen(): Promise<void> {
    if (this.seen.size === 0) return;
    const batch = new Map(this.seen);
    this.seen.clear();
    await this.d.registry.touchMany(batch).catch((e: unknown) => this.d.log.error({ event: 'gateway.last_seen_failed', err: e }, 'writing last-seen failed'));
  }

  /** Closes sessions silent for three heartbeat intervals (keepalive would catch it too, later). */
  private reapSilent(): void {
    const limit = this.d.now() - 3 * this.d.config.heartbeatIntervalMs;
    for (const s of this.sessions.values()) {
      if (s.state === 'ready' && s.lastSeenAt < limit) s.close('no heartbeat for three intervals', status.DEADLINE_EXCEEDED);
    }
  }
}
