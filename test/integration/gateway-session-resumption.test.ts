import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';
import { freePort } from '../helpers/free-port.js';
import { AgentGatewayServiceClient, type ConnectRequest, type ConnectResponse } from '../../proto/gen/handrail/v1/gateway.js';
import { AgentTls, TlsSessionCache, type DialCredentials } from '../../agent/tls-session.js';
import { channelOptions, parseCoordinatorAddress } from '../../agent/coordinator-address.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

/** The agent's own key and certificate, as its state dir holds them. */
async function identity(stateDir: string): Promise<{ keyPem: string; certPem: string }> {
  const text = await readFile(join(stateDir, 'identity', 'agent.pem'), 'utf8');
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(text);
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
  if (!key || !cert) throw new Error('no identity in the agent state dir');
  return { keyPem: key[0], certPem: cert[0] };
}

interface Stream {
  readonly call: ClientDuplexStream<ConnectRequest, ConnectResponse>;
  readonly client: AgentGatewayServiceClient;
  readonly creds: DialCredentials;
  /** Resolves with the Welcome, rejects if the stream ends first. */
  readonly welcomed: Promise<void>;
  /** Resolves with the status the stream ended with. */
  readonly ended: Promise<{ code: number; details: string }>;
}

/** An agent stream as the agent opens it: Hello first, over credentials that resume sessions. */
function openStream(address: string, caPem: string, id: { keyPem: string; certPem: string }, sessions: TlsSessionCache): Stream {
  const addr = parseCoordinatorAddress(address);
  const creds = new AgentTls({ caPem: Buffer.from(caPem), keyPem: Buffer.from(id.keyPem), certPem: Buffer.from(id.certPem), tlsName: addr.tlsName, sessions }).dial();
  const client = new AgentGatewayServiceClient(addr.target, creds, channelOptions(addr, { 'grpc.use_local_subchannel_pool': 1 }));
  const call = client.connect();
  const ended = new Promise<{ code: number; details: string }>((resolve) => {
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on('end', () => resolve({ code: 0, details: 'ended' }));
  });
  const welcomed = new Promise<void>((resolve, reject) => {
    call.on('data', (r: ConnectResponse) => {
      if (r.msg?.$case === 'welcome') resolve();
    });
    ended.then((s) => reject(new Error(`stream ended before a Welcome: ${s.code} ${s.details}`)), () => undefined);
  });
  welcomed.catch(() => undefined);
  const facts = { hostname: 'resumer', os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion: HANDRAIL_VERSION, kernelRelease: '' };
  call.write({ msg: { $case: 'hello', value: { facts, labels: {}, spooledResults: 0, agentVersion: HANDRAIL_VERSION } } });
  return { call, client, creds, welcomed, ended };
}

/** As the agent ends a dial: the call, the channel, then the dial's credentials. */
function close(s: Stream): void {
  s.call.on('error', () => undefined);
  s.call.cancel();
  s.client.close();
  s.creds.close();
}

/** A TCP proxy on `port` to the coordinator's agent port, counting the connections it accepts. */
async function countingProxy(port: number, target: number): Promise<{ readonly connections: number; close(): Promise<void> }> {
  let connections = 0;
  const open = new Set<Socket>();
  const srv = createServer((down) => {
    connections++;
    const up = netConnect(target, '127.0.0.1');
    for (const s of [down, up]) {
      open.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        open.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return {
    get connections() {
      return connections;
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}

describe('TLS session resumption on the agent port', () => {
  let fleet: Fleet;
  let caPem: string;
  let agentId: string;
  let id: { keyPem: string; certPem: string };
  const sessions = new TlsSessionCache();

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    caPem = await readFile(fleet.caFile, 'utf8');
    // A real enrollment; then the agent process stops and the test speaks with its identity.
    await fleet.startAgent('resumer');
    agentId = await fleet.waitOnline('resumer');
    const agent = fleet.agents.get('resumer')!;
    await agent.proc.stop();
    id = await identity(agent.stateDir);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  /** A bare TLS connection to the agent port with the agent's identity (no gRPC on it). */
  const rawConnection = (session?: Buffer): TLSSocket => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: fleet.coordinator!.grpcPort,
      ca: caPem,
      key: id.keyPem,
      cert: id.certPem,
      servername: parseCoordinatorAddress(fleet.coordinator!.address).tlsName,
      ALPNProtocols: ['h2'],
      ...(session ? { session } : {}),
    });
    socket.on('error', () => undefined);
    return socket;
  };

  it('resumes the session after a coordinator restart, and the stream is the agent\'s', async () => {
    const first = openStream(fleet.coordinator!.address, caPem, id, sessions);
    await first.welcomed;
    expect(sessions.lastResumed).toBe(false);
    expect(sessions.take()).toBeInstanceOf(Buffer);
    close(first);
    // Tickets outlive the process: their keys are derived from the server key, not drawn at start.
    await fleet.coordinator!.proc.stop('SIGKILL');
    await fleet.startCoordinator();
    const second = openStream(fleet.coordinator!.address, caPem, id, sessions);
    await second.welcomed;
    expect(sessions.lastResumed).toBe(true);
    const line = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.connected' && l['agentId'] === agentId);
    expect(line['name']).toBe('resumer');
    close(second);
  });

  it('never connects a dial the agent closed after the coordinator refused it', async () => {
    // grpc-js keeps the backoff timer of a closed channel's subchannel and dials once more when it
    // fires; with the coordinator back, that connection was made and then held open beside the
    // agent's next one (a 2,000-agent restart storm: 3,875 handshakes, two connections per agent).
    // A port that refuses, then (before grpc-js's first backoff of about a second ends) a proxy to
    // the coordinator on it that counts the connections it is given.
    const port = await freePort();
    const refused = openStream(`127.0.0.1:${port}`, caPem, id, sessions);
    await expect(refused.welcomed).rejects.toThrow(/^stream ended before a Welcome: 14 /);
    close(refused);
    const proxy = await countingProxy(port, fleet.coordinator!.grpcPort);
    try {
      // grpc-js's retry of the closed dial is refused before it opens a socket.
      await waitFor(() => refused.creds.refusedAfterClose > 0, 30_000, "grpc-js's retry of the closed dial");
      const live = openStream(`127.0.0.1:${port}`, caPem, id, sessions);
      await live.welcomed;
      expect(proxy.connections).toBe(1);
      close(live);
    } finally {
      await proxy.close();
    }
  });

  it('lets go of a handshake in progress when the dial is closed', async () => {
    // A coordinator deep in a restart storm has accepted the connection but not yet answered the
    // TLS hello (it waits for admission). A dial the agent closed must not keep it: the coordinator
    // then drops it unserved instead of spending a handshake on it.
    const accepted: Socket[] = [];
    const srv = createServer((s) => {
      accepted.push(s);
      s.on('error', () => undefined);
      // Read (and drop) the TLS hello, so the client's FIN is seen.
      s.resume();
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const dial = openStream(`127.0.0.1:${(srv.address() as AddressInfo).port}`, caPem, id, sessions);
      const first = await waitFor(() => accepted[0], 30_000, 'the dial to reach the listener');
      const gone = new Promise((resolve) => first.once('close', resolve));
      close(dial);

      await gone;
      await expect(dial.welcomed).rejects.toThrow(/^stream ended before a Welcome/);
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise((resolve) => srv.close(resolve));
    }
  });

  it('gives back the admission slot of a connection that finished TLS but opens no stream', async () => {
    // Such connections (dials their agents gave up on, still held by the client library) kept
    // their slots until the 20 s admitting timer: after a restart 256 of them stalled every agent.
    const socket = rawConnection();
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const admitting = async (): Promise<number> => {
      const text = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
      const m = /^handrail_queue_length\{queue="agent_connections_admitting"\} (\d+)$/m.exec(text);
      if (!m) throw new Error('no agent_connections_admitting gauge on /metrics');
      return Number(m[1]);
    };
    // Well inside the 20 s timer that used to free it.
    await waitFor(async () => (await admitting()) === 0, 10_000, 'the idle connection to give its admission slot back');
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });

  it('cuts a revoked agent\'s resumed stream at once and refuses its resumed handshakes after', async () => {
    const live = openStream(fleet.coordinator!.address, caPem, id, sessions);
    await live.welcomed;
    expect(sessions.lastResumed).toBe(true);
    const ticket = sessions.take();
    expect(ticket).toBeInstanceOf(Buffer);

    const r = await fleet.admin(['agents', 'revoke', agentId, '--reason', 'stolen host']);
    expect(r.code, r.stderr).toBe(0);
    // The live stream, made over a resumed session, ends because of the revocation.
    const end = await live.ended;
    expect(end.code).toBe(7); // PERMISSION_DENIED
    expect(end.details).toMatch(/revoked/);
    close(live);

    // A new handshake with the old ticket resumes at the TLS layer, and the front door refuses it anyway.
    const revokedRefusals = (): number => fleet.coordinator!.proc.logs.filter((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'revoked' && l['agentId'] === agentId).length;
    const refusedBefore = revokedRefusals();
    const socket = rawConnection(ticket);
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    expect(socket.isSessionReused()).toBe(true);
    await new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
    await waitFor(() => revokedRefusals() > refusedBefore, undefined, 'the resumed connection to be refused as revoked');

    // And over gRPC as the agent dials: no Welcome, the stream fails.
    const again = openStream(fleet.coordinator!.address, caPem, id, sessions);
    await expect(again.welcomed).rejects.toThrow(/stream ended before a Welcome/);
    close(again);
  });
});
