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
 * certificate starts a new cache (see credentialsFor) and is presented in a full handshake.
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

class ResumingChannelCredentials extends ChannelCredentials {
  private readonly context: SecureContext;

  constructor(private readonly o: AgentTlsOptions) {
    super();
    this.context = createSecureContext({ ca: o.caPem, key: o.keyPem, cert: o.certPem, minVersion: 'TLSv1.2' });
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
    return {
      connect(socket: Socket) {
        return new Promise((resolve, reject) => {
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
              if (!tls.authorized) {
                reject(tls.authorizationError);
                return;
              }
              sessions.lastResumed = tls.isSessionReused();
              resolve({ socket: tls, secure: true });
            },
          );
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
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => undefined,
    };
  }
}

function hostOf(authority: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(authority) ?? /^([^:]+)(?::\d+)?$/.exec(authority);
  return m?.[1] ?? authority;
}

/** mTLS channel credentials for the agent that resume its last TLS session when they can. */
export function agentChannelCredentials(o: AgentTlsOptions): ChannelCredentials {
  return new ResumingChannelCredentials(o);
}
