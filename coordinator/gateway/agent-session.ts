/**
 * One agent's live stream. It authenticates the peer again at call level (a revocation may
 * land between handshake and call), waits for Hello, then relays step traffic to the
 * dispatcher. Outbound writes go through a bounded queue that honours grpc-js backpressure;
 * a peer that stays too slow is disconnected rather than allowed to grow memory. Inbound
 * output is paused while too many store writes are pending.
 */
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ConnectRequest, type ConnectResponse } from '../../proto/gen/handrail/v1/gateway.js';

export type SessionState = 'awaiting_hello' | 'ready' | 'closed';

export interface SessionIdentity {
  readonly agentId: string;
  readonly serial: string;
  readonly certNotAfter: number;
  readonly remote: string;
  /** SHA-256 fingerprint (hex) of the CA that issued its certificate ('' if unknown). */
  readonly caFingerprint: string;
}

/** What a session hands inbound messages to; the gateway wires these. */
export interface SessionHandler {
  hello(session: AgentSession, msg: Extract<ConnectRequest['msg'], { $case: 'hello' }>['value']): Promise<void>;
  message(session: AgentSession, msg: NonNullable<ConnectRequest['msg']>): void;
  closed(session: AgentSession, reason: string): void;
}

export interface SessionLimits {
  readonly helloTimeoutMs: number;
  /** Messages queued behind a full HTTP/2 window before the peer counts as too slow. */
  readonly maxQueuedMessages: number;
  /** Bytes queued (approximately) before the peer counts as too slow. */
  readonly maxQueuedBytes: number;
  /** Pending store writes of inbound output that pause reading from this peer. */
  readonly pauseAfterPendingWrites: number;
  /** Largest message accepted from an agent; bigger ones end the stream (logged). */
  readonly maxMessageBytes: number;
}

const MAX_TIMER_MS = 2_000_000_000;

export class AgentSession {
  state: SessionState = 'awaiting_hello';
  lastSeenAt: number;
  private readonly queue: ConnectResponse[] = [];
  private queuedBytes = 0;
  private readonly tracked = new Set<Promise<unknown>>();

  /** Messages waiting behind a full HTTP/2 window (a queue depth for metrics). */
  get queuedMessages(): number {
    return this.queue.length;
  }
  private blocked = false;
  private pendingWrites = 0;
  private paused = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    // Messages arrive undecoded so that a malformed or oversized one is logged with the agent's id.
    private readonly call: ServerDuplexStream<Buffer, ConnectResponse>,
    readonly identity: SessionIdentity,
    private readonly handler: SessionHandler,
    private readonly limits: SessionLimits,
    private readonly log: Logger,
    now: number,
  ) {
    this.lastSeenAt = now;
  }

  get agentId(): string {
    return this.identity.agentId;
  }

  start(now: number): void {
    this.timers.push(
      setTimeout(() => {
        if (this.state === 'awaiting_hello') this.close('no hello within the time limit', status.DEADLINE_EXCEEDED);
      }, this.limits.helloTimeoutMs),
    );
    const untilExpiry = Math.min(Math.max(this.identity.certNotAfter - now, 0), MAX_TIMER_MS);
    this.timers.push(setTimeout(() => this.close('certificate expired; reconnect with the renewed certificate', status.UNAUTHENTICATED), untilExpiry));
    this.call.on('data', (bytes: Buffer) => this.onBytes(bytes));
    this.call.on('error', (e: Error) => {
      this.log.info({ event: 'session.error', agentId: this.agentId, err: e.message }, 'agent stream error');
      this.finish(`stream error: ${e.message}`);
    });
    // Agents never half-close: end the stream with a status rather than hold it open.
    this.call.on('end', () => {
      this.finish('agent closed the stream');
      this.call.end();
    });
    this.call.on('cancelled', () => this.finish('stream cancelled'));
    this.call.on('close', () => this.finish('stream closed'));
    this.call.on('drain', () => this.flush());
  }

  private onBytes(bytes: Buffer): void {
    if (this.state === 'closed') return;
    if (bytes.length > this.limits.maxMessageBytes) {
      this.refuseMessage('oversized', `message of ${bytes.length} bytes is over the ${this.limits.maxMessageBytes}-byte limit`, status.RESOURCE_EXHAUSTED);
      return;
    }
    let req: ConnectRequest;
    try {
      req = ConnectRequest.decode(bytes);
    } catch (e) {
      this.refuseMessage('malformed', `message does not decode: ${(e as Error).message}`, status.INVALID_ARGUMENT);
      return;
    }
    this.onData(req);
  }

  /** Set by the gateway to count refused messages. */
  onRefusedMessage: ((reason: string) => void) | undefined;

  private refuseMessage(reason: string, detail: string, code: status): void {
    this.onRefusedMessage?.(reason);
    this.log.warn({ event: 'session.message_refused', agentId: this.agentId, remote: this.identity.remote, reason }, detail);
    this.close(detail, code);
  }

  private onData(req: ConnectRequest): void {
    if (this.state === 'closed') return;
    const msg = req.msg;
    if (!msg) {
      this.close('empty message', status.INVALID_ARGUMENT);
      return;
    }
    if (this.state === 'awaiting_hello') {
      if (msg.$case !== 'hello') {
        this.close(`expected hello first, got ${msg.$case}`, status.FAILED_PRECONDITION);
        return;
      }
      this.state = 'ready';
      this.handler.hello(this, msg.value).catch((e: unknown) => {
        this.log.error({ event: 'session.hello_failed', agentId: this.agentId, err: e }, 'hello handling failed');
        this.close('hello handling failed', status.INTERNAL);
      });
      return;
    }
    if (msg.$case === 'hello') {
      this.close('hello sent twice', status.FAILED_PRECONDITION);
      return;
    }
    this.handler.message(this, msg);
  }

  /** Queues a message; returns false if the session is closed. */
  send(msg: ConnectResponse): boolean {
    if (this.state === 'closed') return false;
    if (this.blocked) {
      const size = approximateSize(msg);
      if (this.queue.length >= this.limits.maxQueuedMessages || this.queuedBytes + size > this.limits.maxQueuedBytes) {
        this.close('agent too slow to read its stream', status.RESOURCE_EXHAUSTED);
        return false;
      }
      this.queue.push(msg);
      this.queuedBytes += size;
      return true;
    }
    if (!this.call.write(msg)) this.blocked = true;
    return true;
  }

  private flush(): void {
    this.blocked = false;
    while (this.queue.length > 0 && !this.blocked) {
      const m = this.queue.shift() as ConnectResponse;
      this.queuedBytes -= approximateSize(m);
      if (!this.call.write(m)) this.blocked = true;
    }
  }

  /** Resolves once every write tracked so far has settled (shutdown waits for them). */
  settled(): Promise<void> {
    return Promise.allSettled([...this.tracked]).then(() => undefined);
  }

  /** Tracks a store write caused by this peer; reading pauses while too many are pending. */
  track(write: Promise<unknown>): void {
    this.tracked.add(write);
    this.pendingWrites++;
    if (!this.paused && this.pendingWrites >= this.limits.pauseAfterPendingWrites) {
      this.paused = true;
      this.call.pause();
    }
    const done = (): void => {
      this.tracked.delete(write);
      this.pendingWrites--;
      if (this.paused && this.pendingWrites <= this.limits.pauseAfterPendingWrites / 4) {
        this.paused = false;
        if (this.state !== 'closed') this.call.resume();
      }
    };
    write.then(done, done);
  }

  /** Ends the stream with a status, telling the agent why first (and, refusing its version, which side to upgrade). */
  close(reason: string, code: status = status.UNAVAILABLE, upgrade: '' | 'agent' | 'coordinator' = ''): void {
    if (this.state === 'closed') return;
    try {
      this.call.write({ msg: { $case: 'disconnect', value: { reason, upgrade } } });
    } catch {
      // the stream may already be gone
    }
    // Record our reason first: the 'error' we emit would otherwise be logged as the cause.
    this.finish(reason);
    this.call.emit('error', { code, details: reason });
  }

  private finish(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.handler.closed(this, reason);
  }
}

/** Outbound messages are small except step envelopes; those carry their payload size. */
function approximateSize(m: ConnectResponse): number {
  return m.msg?.$case === 'step' ? m.msg.value.payload.length + m.msg.value.signature.length + 128 : 256;
}
