/**
 * The agent port's TLS terminator. grpc-js has no hook for refused handshakes, so Handrail
 * terminates TLS itself (Node tls, client certificate requested) and hands each connection to
 * one of two grpc-js servers through their public connection injectors:
 *
 *  - no client certificate            → the enrollment server (only Enroll is served there;
 *                                        a Connect attempt is refused as unauthenticated);
 *  - a certificate that chains to the CA, current, not revoked → the agent gateway server;
 *  - a probe certificate (`ca issue-probe`) that chains to the CA → the same server, where it
 *    reaches health and reflection only (Connect refuses it);
 *  - anything else (foreign CA, expired, revoked, unknown) → closed, logged and counted.
 *
 * So a bad certificate never reaches HTTP/2 parsing, and every refusal has a logged reason.
 *
 * Admission: TCP connections are accepted by a plain listener and handed to the TLS server only
 * while fewer than `maxAdmitting` (256) connections are between accept and the end of their TLS
 * handshake and certificate check (or their end); the rest wait, untouched (admission.ts: newest
 * first, dropped after 15 s). After a coordinator
 * restart every agent dials at once: without this the handshakes of thousands of connections
 * interleave, each takes longer than the clients wait, and the work is thrown away
 * (congestion collapse; measured in bench/reconnect.ts). With it the coordinator works at full
 * rate on connections it can finish. The slot is given back once the certificate is checked,
 * not at the agent's Welcome: after a restart many connections finish TLS and never open a
 * stream (dials their agents gave up on, still held by the client library), and holding their
 * slots until the admitting timer stalled a 2,000-agent storm for 20 s at a time (reconnect
 * bench: all online 30 s after a kill -9, 10 s with the slot given back here).
 */
import { createHash, hkdfSync, type X509Certificate } from 'node:crypto';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Counters } from '../metrics/counters.js';
import type { AgentRegistry } from '../registry/agent-registry.js';
import { isProbeCertificate, normalizeSerial, subjectCommonName } from '../pki/ca.js';
import { AdmissionQueue } from './admission.js';

const MAX_UNAUTHENTICATED_PER_ADDRESS = 64;

/** How long a session ticket can be resumed (TLS 1.3 allows at most 7 days). */
const SESSION_LIFETIME_S = 7 * 24 * 3600;

/**
 * Ticket keys that survive a restart (so agents resume after one) without a new secret file:
 * derived from the server key, and from the trust and server certificates so that a CA
 * roll-over or a new server certificate voids every ticket (the next handshakes are full and
 * verify the chain again).
 */
function sessionTicketKeys(o: { readonly keyPem: string; readonly caPem: string; readonly certPem: string }): Buffer {
  const salt = createHash('sha256').update(o.caPem).update('\0').update(o.certPem).digest();
  return Buffer.from(hkdfSync('sha256', o.keyPem, salt, 'handrail agent-port TLS session tickets v1', 48));
}

/** The certificate an admitted agent connection presented, as the front door read and checked it. */
export interface PeerIdentity {
  readonly agentId: string;
  readonly serial: string;
  readonly fingerprint256: string;
  /** A monitoring probe's certificate (`ca issue-probe`): health and reflection only, never an agent stream. */
  readonly probe: boolean;
  /**
   * SHA-256 fingerprint of the trusted CA that issued it ('' if none is known): it matters during
   * a CA roll-over. Worked out at the handshake, so the certificate's DER (1.1 KB) is not kept
   * for the connection's life.
   */
  readonly caFingerprint: string;
}

export interface FrontDoorOptions {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly handshakeTimeoutMs?: number;
  readonly maxConnections?: number;
  /** Connections between TCP accept and their checked certificate (or end) at once; the rest wait their turn. */
  readonly maxAdmitting?: number;
  /** A connection that waited longer than this is dropped unserved (its agent has given up and redials). */
  readonly maxQueueWaitMs?: number;
  /** Connections waiting beyond this are refused at once (closed before TLS). */
  readonly maxQueued?: number;
  /** An admitted connection gives its slot back after this long even if its handshake has not ended. */
  readonly maxAdmittingMs?: number;
}

export class TlsFrontDoor {
  private readonly server: TlsServer;
  private readonly listener: TcpServer;
  private readonly admission: AdmissionQueue<Socket>;
  /** Admitted connections by remote address, until their certificate is checked or they end. */
  private readonly admittedAgents = new Map<string, () => void>();
  /** Agent connections routed to the gateway, by remote address, while they are open. */
  private readonly identities = new Map<string, PeerIdentity>();
  private readonly sockets = new Set<TLSSocket>();
  private readonly raw = new Set<Socket>();
  private readonly maxAdmittingMs: number;
  private readonly unauthenticated = new Map<string, number>();
  private closing: Promise<void> | undefined;

  constructor(
    options: FrontDoorOptions,
    private readonly enrollment: ConnectionInjector,
    private readonly gateway: ConnectionInjector,
    private readonly registry: AgentRegistry,
    private readonly log: Logger,
    private readonly counters: Counters,
    private readonly now: () => number,
    /** The fingerprint of the trusted CA that issued a certificate the handshake verified, if any. */
    private readonly issuerOf: (cert: X509Certificate) => string | undefined,
  ) {
    this.server = createServer({
      key: options.keyPem,
      cert: options.certPem,
      ca: options.caPem,
      requestCert: true,
      // Chain verification happens below, so that refusals can be logged with a reason.
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      // Session resumption across coordinator restarts (agent/tls-session.ts is the client side):
      // a resumed handshake skips both certificate signatures. The ticket binds the agent's
      // certificate, which route() checks against the registry like any other (revocation,
      // expiry, serial and fingerprint), so resuming grants nothing a full handshake would not.
      ticketKeys: sessionTicketKeys(options),
      sessionTimeout: SESSION_LIFETIME_S,
      sessionIdContext: 'handrail-agent-port',
    });
    const maxConnections = options.maxConnections ?? 20_000;
    this.maxAdmittingMs = options.maxAdmittingMs ?? 2 * (options.handshakeTimeoutMs ?? 10_000);
    this.admission = new AdmissionQueue<Socket>({
      maxActive: options.maxAdmitting ?? 256,
      maxQueued: options.maxQueued ?? maxConnections,
      maxWaitMs: options.maxQueueWaitMs ?? 15_000,
      now: () => performance.now(),
      alive: (s) => !s.destroyed && s.readable,
      drop: (s, why) => {
        this.counters.inc('connections_refused_total', { reason: `admission_${why}` });
        s.destroy();
      },
    });
    // The TLS server never listens: connections reach it from the plain listener, once admitted.
    this.listener = createTcpServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    this.listener.maxConnections = maxConnections;
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.route(socket).catch((e: unknown) => {
        this.log.error({ err: e, event: 'gateway.route_failed' }, 'routing a connection failed');
        socket.destroy();
      });
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      this.counters.inc('tls_handshake_failures_total', { reason: err.code ?? 'unknown' });
      this.log.info(
        { event: 'gateway.tls_handshake_failed', remote: socket.remoteAddress, reason: err.code ?? err.message },
        'TLS handshake failed',
      );
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        const addr = this.listener.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /**
   * New connections get this trust and server certificate (a CA roll-over step); live ones keep
   * theirs. Session tickets are keyed anew from them, so no ticket of the old trust resumes.
   */
  updateCredentials(o: { caPem: string; certPem: string; keyPem: string }): void {
    this.server.setSecureContext({ key: o.keyPem, cert: o.certPem, ca: o.caPem, minVersion: 'TLSv1.2', ticketKeys: sessionTicketKeys(o) });
  }

  /**
   * The identity the agent connection from `remote` presented at its handshake: the gateway
   * checks it per stream without parsing the certificate again (getPeerCertificate is costly).
   */
  identity(remote: string): PeerIdentity | undefined {
    return this.identities.get(remote);
  }

  /** Connections admitted and not yet through their handshake or ended, and connections waiting (for metrics and tests). */
  admissionState(): { admitting: number; queued: number } {
    return { admitting: this.admission.active, queued: this.admission.queued };
  }

  /** The connection from `remote` is through its handshake: the next waiting connection may start its own. */
  private admitted(remote: string): void {
    const release = this.admittedAgents.get(remote);
    if (release) release();
  }

  /** Refuses new connections; established ones stay until close() (which waits for them to end). */
  stopAccepting(): void {
    if (!this.closing) {
      this.closing = new Promise((resolve) => this.listener.close(() => resolve()));
      for (const s of this.admission.drain()) s.destroy();
    }
  }

  close(): Promise<void> {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
    for (const s of this.raw) s.destroy();
    return this.closing ?? Promise.resolve();
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.raw.add(socket);
    socket.once('close', () => this.raw.delete(socket));
    // A waiting connection that errors (its client gave up) is skipped when its turn comes.
    socket.on('error', () => undefined);
    const verdict = this.admission.offer(socket, (s, release) => this.start(s, release));
    if (verdict === 'refused') {
      this.counters.inc('connections_refused_total', { reason: 'admission_queue_full' });
      this.log.warn({ event: 'gateway.connection_refused', remote: socket.remoteAddress, reason: 'admission_queue_full' }, 'too many connections waiting for admission; closed before TLS');
      socket.destroy();
    }
  }

  /** Hands an admitted TCP connection to the TLS server; `release` frees its admission slot (once). */
  private start(socket: Socket, release: () => void): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    let released = false;
    const done = (): void => {
      if (released) return;
      released = true;
      if (this.admittedAgents.get(remote) === done) this.admittedAgents.delete(remote);
      release();
    };
    this.admittedAgents.set(remote, done);
    socket.once('close', done);
    setTimeout(done, this.maxAdmittingMs).unref();
    this.server.emit('connection', socket);
    socket.resume();
  }

  private async route(socket: TLSSocket): Promise<void> {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.on('error', (e: Error) => this.log.debug({ event: 'gateway.socket_error', remote, err: e.message }, 'socket error'));
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (socket.alpnProtocol !== 'h2') {
      this.refuse(socket, remote, 'no_h2', 'client did not negotiate HTTP/2 (ALPN h2)');
      return;
    }
    // The certificate OpenSSL already holds, not getPeerCertificate()'s copy of every field (its
    // DER, key and modulus included), which cost about 120 µs a connection here.
    const cert = socket.getPeerX509Certificate();
    if (!cert) {
      // Connections without a certificate are capped per address: they cannot starve agents.
      const host = socket.remoteAddress ?? '?';
      const n = this.unauthenticated.get(host) ?? 0;
      if (n >= MAX_UNAUTHENTICATED_PER_ADDRESS) {
        this.refuse(socket, remote, 'too_many_unauthenticated', `more than ${MAX_UNAUTHENTICATED_PER_ADDRESS} connections without a certificate from ${host}`);
        return;
      }
      this.unauthenticated.set(host, n + 1);
      socket.once('close', () => {
        const left = (this.unauthenticated.get(host) ?? 1) - 1;
        if (left <= 0) this.unauthenticated.delete(host);
        else this.unauthenticated.set(host, left);
      });
      this.counters.inc('connections_total', { kind: 'enrollment' });
      this.admitted(remote);
      this.enrollment.injectConnection(socket);
      return;
    }
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? 'unverified');
      const reason = why === 'CERT_HAS_EXPIRED' ? 'expired' : why === 'CERT_NOT_YET_VALID' ? 'not_yet_valid' : 'untrusted';
      this.refuse(socket, remote, reason, `client certificate rejected: ${why}`, { subject: subjectCommonName(cert.subject), fingerprint256: cert.fingerprint256 });
      return;
    }
    if (isProbeCertificate(cert.subjectAltName)) {
      // A monitoring probe: health and reflection live on the agent server; its Connect refuses probes.
      this.counters.inc('connections_total', { kind: 'probe' });
      this.admitted(remote);
      this.remember(socket, remote, { agentId: '', serial: normalizeSerial(cert.serialNumber), fingerprint256: cert.fingerprint256, probe: true, caFingerprint: this.issuerOf(cert) ?? '' });
      this.gateway.injectConnection(socket);
      return;
    }
    const agentId = subjectCommonName(cert.subject);
    const serial = normalizeSerial(cert.serialNumber);
    const verdict = await this.registry.checkPeer(agentId, serial, this.now(), cert.fingerprint256);
    if (!verdict.ok) {
      this.refuse(socket, remote, verdict.reason, `agent ${agentId} refused: ${verdict.reason.replace(/_/g, ' ')}`, { agentId, serial });
      return;
    }
    this.counters.inc('connections_total', { kind: 'agent' });
    this.remember(socket, remote, { agentId, serial, fingerprint256: cert.fingerprint256, probe: false, caFingerprint: this.issuerOf(cert) ?? '' });
    this.gateway.injectConnection(socket);
    // The expensive part (handshake, certificate check) is done: the next connection may start.
    this.admitted(remote);
  }

  /** The identity the gateway reads for this connection's streams, while it is open. */
  private remember(socket: TLSSocket, remote: string, identity: PeerIdentity): void {
    this.identities.set(remote, identity);
    socket.once('close', () => {
      if (this.identities.get(remote) === identity) this.identities.delete(remote);
    });
  }

  private refuse(socket: TLSSocket, remote: string, reason: string, message: string, extra: Record<string, unknown> = {}): void {
    this.counters.inc('connections_refused_total', { reason });
    this.log.warn({ event: 'gateway.connection_refused', remote, reason, ...extra }, message);
    socket.destroy();
  }
}
