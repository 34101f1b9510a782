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
 */
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ConnectionInjector } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Counters } from '../metrics/counters.js';
import type { AgentRegistry } from '../registry/agent-registry.js';
import { isProbeCertificate, normalizeSerial } from '../pki/ca.js';

const MAX_UNAUTHENTICATED_PER_ADDRESS = 64;

export interface FrontDoorOptions {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly handshakeTimeoutMs?: number;
  readonly maxConnections?: number;
}

export class TlsFrontDoor {
  private readonly server: TlsServer;
  private readonly sockets = new Set<TLSSocket>();
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
    });
    this.server.maxConnections = options.maxConnections ?? 20_000;
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
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** New connections get this trust and server certificate (a CA roll-over step); live ones keep theirs. */
  updateCredentials(o: { caPem: string; certPem: string; keyPem: string }): void {
    this.server.setSecureContext({ key: o.keyPem, cert: o.certPem, ca: o.caPem, minVersion: 'TLSv1.2' });
  }

  /** Refuses new connections; established ones stay until close() (which waits for them to end). */
  stopAccepting(): void {
    if (!this.closing) this.closing = new Promise((resolve) => this.server.close(() => resolve()));
  }

  close(): Promise<void> {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
    return this.closing ?? Promise.resolve();
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
    const cert = socket.getPeerCertificate();
    const presented = cert && Object.keys(cert).length > 0;
    if (!presented) {
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
      this.enrollment.injectConnection(socket);
      return;
    }
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? 'unverified');
      const reason = why === 'CERT_HAS_EXPIRED' ? 'expired' : why === 'CERT_NOT_YET_VALID' ? 'not_yet_valid' : 'untrusted';
      this.refuse(socket, remote, reason, `client certificate rejected: ${why}`, { subject: cert.subject?.CN, fingerprint256: cert.fingerprint256 });
      return;
    }
    if (isProbeCertificate(cert.subjectaltname)) {
      // A monitoring probe: health and reflection live on the agent server; its Connect refuses probes.
      this.counters.inc('connections_total', { kind: 'probe' });
      this.gateway.injectConnection(socket);
      return;
    }
    const agentId = typeof cert.subject?.CN === 'string' ? cert.subject.CN : '';
    const serial = normalizeSerial(cert.serialNumber ?? '');
    const verdict = await this.registry.checkPeer(agentId, serial, this.now(), cert.fingerprint256);
    if (!verdict.ok) {
      this.refuse(socket, remote, verdict.reason, `agent ${agentId} refused: ${verdict.reason.replace(/_/g, ' ')}`, { agentId, serial });
      return;
    }
    this.counters.inc('connections_total', { kind: 'agent' });
    this.gateway.injectConnection(socket);
  }

  private refuse(socket: TLSSocket, remote: string, reason: string, message: string, extra: Record<string, unknown> = {}): void {
    this.counters.inc('connections_refused_total', { reason });
    this.log.warn({ event: 'gateway.connection_refused', remote, reason, ...extra }, message);
    socket.destroy();
  }
}
