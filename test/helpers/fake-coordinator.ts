/**
 * A stand-in coordinator for adversarial dispatch tests: real mTLS gRPC with the real CA and
 * server certificate, so a real agent process connects to it, but it sends whatever envelopes
 * a test crafts (forged, expired, replayed, misaddressed) and records what the agent answers.
 */
import { Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentGatewayServiceService, type ConnectRequest, type ConnectResponse } from '../../proto/gen/handrail/v1/gateway.js';
import type { Envelope } from '../../core/step.js';
import { envelopeToWire } from '../../proto/codec/step-codec.js';
import { BACKSTOP_MS } from './processes.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

type Msg = NonNullable<ConnectRequest['msg']>;
type MsgValue<K extends Msg['$case']> = Msg extends infer M ? (M extends { $case: K; value: infer V } ? V : never) : never;

export class FakeCoordinator {
  readonly received: Array<NonNullable<ConnectRequest['msg']>> = [];
  private call: ServerDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private readonly server = new Server();
  port = 0;
  private waiters: Array<() => void> = [];

  /** `coordinatorVersion`: the release its Welcome reports (this one by default); `acceptsCaBundleHeld`: whether agents should acknowledge CA bundles. */
  static async start(certsDir: string, o: { coordinatorVersion?: string; acceptsCaBundleHeld?: boolean } = {}): Promise<FakeCoordinator> {
    const f = new FakeCoordinator();
    const ca = await readFile(join(certsDir, 'ca.pem'));
    const cert = await readFile(join(certsDir, 'server.pem'));
    const key = await readFile(join(certsDir, 'server.key'));
    f.server.addService(AgentGatewayServiceService, {
      connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => {
        f.call = call;
        call.on('data', (req: ConnectRequest) => {
          if (!req.msg) return;
          f.received.push(req.msg);
          if (req.msg.$case === 'hello') {
            call.write({ msg: { $case: 'welcome', value: { agentId: 'fake', serverTimeMs: Date.now(), heartbeatIntervalMs: 1000, certificateNotAfterMs: Date.now() + 3_600_000, dispatchKeySet: undefined, coordinatorVersion: o.coordinatorVersion ?? HANDRAIL_VERSION, acceptsDispatchKeysHeld: false, caBundle: undefined, acceptsCaBundleHeld: o.acceptsCaBundleHeld ?? false } } });
          }
          const w = f.waiters;
          f.waiters = [];
          for (const x of w) x();
        });
        call.on('error', () => undefined);
      },
    });
    f.port = await new Promise<number>((resolve, reject) =>
      f.server.bindAsync('127.0.0.1:0', ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return f;
  }

  get connected(): boolean {
    return this.call !== undefined;
  }

  send(env: Envelope): void {
    if (!this.call) throw new Error('no agent connected');
    this.call.write({ msg: { $case: 'step', value: envelopeToWire(env) } });
  }

  /**
   * Ends the agent's current stream with UNAVAILABLE (as the real coordinator ends one it
   * drops), so the agent reconnects; until it does, `send` and `ack` have no stream.
   */
  dropConnection(reason = 'fake coordinator dropped the stream'): void {
    const call = this.call;
    if (!call) throw new Error('no agent connected');
    this.call = undefined;
    call.emit('error', { code: status.UNAVAILABLE, details: reason });
  }

  /** Sends any coordinator message (a forged renewal answer, a key set …) on the current stream. */
  sendMessage(msg: NonNullable<ConnectResponse['msg']>): void {
    if (!this.call) throw new Error('no agent connected');
    this.call.write({ msg });
  }

  ack(executionId: string, stepId: string): void {
    this.call?.write({ msg: { $case: 'ack', value: { executionId, stepId, refused: '' } } });
  }

  async waitFor<K extends Msg['$case']>(kind: K, pred: (v: MsgValue<K>) => boolean, timeoutMs = BACKSTOP_MS): Promise<MsgValue<K>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.received) {
        if (m.$case !== kind) continue;
        const value = m.value as unknown as MsgValue<K>;
        if (pred(value)) return value;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${kind}; got ${this.received.map((m) => m.$case).join(',')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
  }
}
