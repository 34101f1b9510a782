/**
 * Channel credentials that resume the agent's TLS session on the next dial. grpc-js has no
 * option for a TLS session (its connector calls tls.connect without one), so this implements
 * its public `ChannelCredentials._createSecureConnector` contract: the same tls.connect grpc-js
 * makes (CA, client certificate, ALPN h2, server name), plus `session:` from the last ticket the
 * coordinator sent. A resumed handshake skips the certificate signatures on both sides; the
 * coordinator still sees the agent's certificate (it is bound into the ticket) and checks it
 * against revocations as on any connection.
 *
 * One cache per certificate: a ticket is bound to the identity it was made under, so a renewed
 * certificate starts a new cache (AgentConnection.agentTls) and is presented in a full handshake.
 * Each dial uses its own credentials (AgentTls.dial), closed with its channel.
 */
import { connect, createSecureContext, checkServerIdentity, type SecureContext, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js';

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;

const NETWORK_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/** The last session ticket the coordinator issued on this identity's connections. */
export class TlsSessionCache {
  private session: Buffer | undefined;
  /** Whether the most recent handshake resumed a session (for logs and benchmarks). */
  lastResumed = false;

  take(): Buffer | undefined {
    return this.session;
  }

  store(session: Buffer): void {
    this.session = session;
  }

  /** Forgets the ticket (the coordinator refused a connection made with it, or it went stale). */
  clear(): void {
    this.session = undefined;
  }
}

export interface AgentTlsOptions {
  readonly caPem: Buffer;
  readonly keyPem: Buffer;
  readonly certPem: Buffer;
  /** The name checked against the coordinator certificate (and sent as SNI). */
  readonly tlsName?: string;
  readonly sessions: TlsSessionCache;
}

/**
 * The TLS every dial of one identity shares: its secure context (parsed once) and its session
 * cache. Each dial takes its own credentials (`dial()`) and closes them with its channel.
 */
export class AgentTls {
  private readonly context: SecureContext;

  constructor(private readonly o: AgentTlsOptions) {
    this.context = createSecureContext({ ca: o.caPem, key: o.keyPem, cert: o.certPem, minVersion: 'TLSv1.2' });
  }

  /** Credentials for one dial (one grpc-js channel): close them when the channel is closed. */
  dial(): DialCredentials {
    return new DialCredentials(this.o, this.context);
  }
}

/**
 * One dial's credentials. Closing them refuses every later connection attempt made with them
 * and drops a handshake in progress. That is needed because grpc-js keeps the backoff timer of
 * a closed channel's subchannel: a dial the coordinator refused (it was restarting) is tried
 * once more when that timer fires, and if the coordinator is back the connection is made and
 * then held open, unused, beside the agent's next dial. In a reconnect storm that was up to one
 * extra TLS handshake per agent for the coordinator (bench/reconnect: 2,700-3,900 connections
 * for 2,000 agents, and the simulated agents each held two at the end).
 */
export class DialCredentials extends ChannelCredentials {
  private closed = false;
  /** Handshakes in progress. */
  private readonly handshakes = new Set<TLSSocket>();
  /** Connection attempts refused because these credentials were closed (none reached the network). */
  refusedAfterClose = 0;

  constructor(
    private readonly o: AgentTlsOptions,
    private readonly context: SecureContext,
  ) {
    super();
  }

  /** No connection is made with these credentials from now on; a handshake in progress is dropped. */
  close(): void {
    this.closed = true;
    for (const tls of this.handshakes) tls.destroy();
    this.handshakes.clear();
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(...[target, options, callCredentials]: Parameters<ChannelCredentials['_createSecureConnector']>): SecureConnector {
    const override = options['grpc.ssl_target_name_override'];
    const authority = options['grpc.default_authority'] ?? target.path;
    const host = this.o.tlsName ?? (typeof override === 'string' ? override : hostOf(String(authority)));
    const sessions = this.o.sessions;
    const context = this.context;
    const calls = callCredentials ?? CallCredentials.createEmpty();
    const refused = (): Error | undefined => {
      if (!this.closed) return undefined;
      this.refusedAfterClose++;
      return new Error('this dial was closed: no new connection is made for it');
    };
    return {
      connect: (socket: Socket) => {
        return new Promise((resolve, reject) => {
          const closed = refused();
          if (closed) {
            socket.destroy();
            reject(closed);
            return;
          }
          const session = sessions.take();
          const tls: TLSSocket = connect(
            {
              socket,
              secureContext: context,
              ALPNProtocols: ['h2'],
              servername: host,
              checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
              ...(session ? { session } : {}),
            },
            () => {
              this.handshakes.delete(tls);
              if (!tls.authorized) {
                reject(tls.authorizationError);
                return;
              }
              sessions.lastResumed = tls.isSessionReused();
              resolve({ socket: tls, secure: true });
            },
          );
          this.handshakes.add(tls);
          tls.once('close', () => {
            this.handshakes.delete(tls);
            // Dropped by close() (or by the peer) before the handshake ended; a no-op after resolve.
            reject(new Error('the connection closed before the TLS handshake ended'));
          });
          // TLS 1.3 tickets arrive after the handshake; the newest one is used next time.
          tls.on('session', (s: Buffer) => sessions.store(s));
          tls.on('error', (e: Error & { code?: string }) => {
            // A resumed handshake the server failed may have failed because of the ticket: the next
            // one is full. A reset or timeout (a coordinator going down, or shedding load) says
            // nothing about the ticket: keep it.
            if (session && !NETWORK_ERRORS.has(e.code ?? '')) sessions.clear();
            reject(e);
          });
        });
      },
      // Asked before grpc-js opens the TCP connection: a closed dial's retry ends here.
      waitForReady: () => {
        const closed = refused();
        return closed ? Promise.reject(closed) : Promise.resolve();
      },
      getCallCredentials: () => calls,
      destroy: () => undefined,
    };
  }
}

function hostOf(authority: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(authority) ?? /^([^:]+)(?::\d+)?$/.exec(authority);
  return m?.[1] ?? authority;
}
