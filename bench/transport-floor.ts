/**
 * The transport floor under a fan-out's node-step (issue 10): what one message out and one
 * message back on a held agent stream cost the coordinator's process in CPU, with nothing of
 * Handrail's on the path — no envelope, no signature, no store, no protobuf.
 *
 * One server process (this one) holds N long-lived streams over real mutual TLS on 127.0.0.1,
 * opened by client worker processes. A round writes one `--step-bytes` message to each of the
 * N streams in one tick; each client answers with one `--result-bytes` message, which the
 * server acknowledges with an `--ack-bytes` message (the coordinator's Ack); the round ends
 * when all N answers are in. The server's own CPU (process.cpuUsage: every thread) per round,
 * divided by N, is the floor per node-step. Two transports, alternating round sets:
 *
 *  - grpc:  @grpc/grpc-js bidi streams (the coordinator's transport), identity serialisers,
 *           grpc-js's own TLS with client certificates, the gateway's keepalive options;
 *  - http2: node:http2 over TLS with client certificates, one stream per client, the same
 *           5-byte length-prefixed framing as gRPC: what grpc-js adds on top of HTTP/2.
 *
 * Compare with `engine --parallel-agents N` (the coordinator's CPU per node-step) and the crypto
 * floor (3 Ed25519 signatures and 1 RSA verify per node-step: note 22).
 *
 *   node dist/bench/transport-floor.js [--agents 2000] [--rounds 10] [--warmup 3] [--sets 3]
 *     [--workers 2] [--step-bytes 400] [--result-bytes 500] [--ack-bytes 80] [--transports grpc,http2]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as http2 from 'node:http2';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { GrpcFrameScanner } from '../coordinator/gateway/grpc-frame-scanner.js';
import { CA_FILES, COORDINATOR_TLS_NAME, initCa, issueProbeCertificate, loadCa } from '../coordinator/pki/ca.js';
import { out } from './harness.js';
import { median } from './proc-stats.js';

type Transport = 'grpc' | 'http2';

interface Tls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

/** Clients answer messages of `stepBytes` (steps), not acks: the two sizes differ. */
type ToClient = { type: 'open'; transport: Transport; port: number; count: number; tls: Tls; stepBytes: number; resultBytes: number } | { type: 'close' };
type FromClient = { type: 'opened' } | { type: 'error'; message: string };

const METHOD = '/handrail.bench.v1.Floor/Connect';
const identity = (b: Buffer): Buffer => b;

/** The gRPC framing (a flag byte and a 32-bit length) around `bytes` of payload. */
function framed(bytes: number): Buffer {
  const b = Buffer.alloc(5 + bytes, 0x61);
  b[0] = 0;
  b.writeUInt32BE(bytes, 1);
  return b;
}

/** Reads message ends off a stream's bytes, however they are chunked (the gateway's own scanner). */
const messageEnds = (onMessage: (bytes: number) => void): GrpcFrameScanner => new GrpcFrameScanner(2 ** 32, onMessage);

// ---------------------------------------------------------------- client worker

function clientMain(): void {
  const open: Array<() => void> = [];
  process.on('message', (m: ToClient) => {
    if (m.type === 'close') {
      for (const c of open) c();
      process.exit(0);
    }
    void openClients(m, open).then(
      () => process.send?.({ type: 'opened' } satisfies FromClient),
      (e: unknown) => process.send?.({ type: 'error', message: String(e) } satisfies FromClient),
    );
  });
}

async function openClients(m: Extract<ToClient, { type: 'open' }>, open: Array<() => void>): Promise<void> {
  const reply = framed(m.resultBytes);
  const stepBytes = m.stepBytes;
  const ready: Array<Promise<void>> = [];
  for (let i = 0; i < m.count; i++) {
    if (m.transport === 'grpc') {
      const creds = grpc.credentials.createSsl(Buffer.from(m.tls.caPem), Buffer.from(m.tls.clientKeyPem), Buffer.from(m.tls.clientCertPem));
      // A channel option unique to each client: grpc-js shares one connection between channels
      // with equal options, and every agent has its own connection.
      const client = new grpc.Client(`127.0.0.1:${m.port}`, creds, { 'grpc.ssl_target_name_override': COORDINATOR_TLS_NAME, 'grpc.default_authority': COORDINATOR_TLS_NAME, 'bench.client': i, 'grpc.use_local_subchannel_pool': 1 });
      const call = client.makeBidiStreamRequest(METHOD, identity, identity, new grpc.Metadata());
      const payload = reply.subarray(5);
      ready.push(new Promise((res, rej) => {
        call.once('metadata', () => res());
        // Kept for the stream's life: a late error (a cancel at close) must not go unhandled.
        call.on('error', rej);
      }));
      call.on('data', (m: Buffer) => {
        if (m.length === stepBytes) call.write(payload);
      });
      open.push(() => {
        call.cancel();
        client.close();
      });
    } else {
      const session = http2.connect(`https://127.0.0.1:${m.port}`, { ca: m.tls.caPem, cert: m.tls.clientCertPem, key: m.tls.clientKeyPem, servername: COORDINATOR_TLS_NAME });
      const stream = session.request({ ':method': 'POST', ':path': METHOD, 'content-type': 'application/grpc', te: 'trailers' });
      const scanner = messageEnds((bytes) => {
        if (bytes === stepBytes) stream.write(reply);
      });
      ready.push(new Promise((res, rej) => {
        stream.once('response', () => res());
        stream.on('error', rej);
        session.on('error', rej);
      }));
      stream.on('data', (chunk: Buffer) => void scanner.push(chunk));
      open.push(() => {
        stream.close();
        session.close();
      });
    }
    // Pace the dials a little: this bench measures held streams, not a storm.
    if (i % 64 === 63) await Promise.all(ready.slice(-64));
  }
  await Promise.all(ready);
}

// ---------------------------------------------------------------- server (this process)

/** The streams a server holds, and the answers of the round in progress. */
class Rounds<S> {
  readonly streams: S[] = [];
  private answered = 0;
  private expected = 0;
  private done: (() => void) | undefined;

  /** A stream answered this round's step (the server has written its ack). */
  answer(): void {
    if (++this.answered === this.expected) this.done?.();
  }

  /** Writes one step to every stream; resolves once each has answered. */
  run(write: (stream: S) => void): Promise<void> {
    return new Promise((res) => {
      this.answered = 0;
      this.expected = this.streams.length;
      this.done = res;
      for (const s of this.streams) write(s);
    });
  }
}

interface Server {
  readonly port: number;
  /** Writes one message to every stream; resolves when each has answered once. */
  round(): Promise<void>;
  readonly streams: () => number;
  close(): Promise<void>;
}

async function grpcServer(tls: Tls, stepBytes: number, ackBytes: number): Promise<Server> {
  const ack = framed(ackBytes).subarray(5);
  const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.keepalive_permit_without_calls': 1, 'grpc.enable_channelz': 0 });
  const calls = new Rounds<grpc.ServerDuplexStream<Buffer, Buffer>>();
  server.addService(
    { Connect: { path: METHOD, requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: 'connect' } },
    {
      Connect: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        calls.streams.push(call);
        call.sendMetadata(new grpc.Metadata());
        call.on('data', () => {
          call.write(ack);
          calls.answer();
        });
        call.on('error', () => undefined);
      },
    },
  );
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(tls.caPem), [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }], true);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))));
  const step = framed(stepBytes).subarray(5);
  return {
    port,
    streams: () => calls.streams.length,
    round: () => calls.run((c) => c.write(step)),
    close: () =>
      new Promise<void>((res) => {
        for (const c of calls.streams) c.end();
        server.tryShutdown(() => res());
        setTimeout(() => {
          server.forceShutdown();
          res();
        }, 2000).unref();
      }),
  };
}

async function http2Server(tls: Tls, stepBytes: number, ackBytes: number): Promise<Server> {
  const ack = framed(ackBytes);
  const server = http2.createSecureServer({ ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: true });
  const streams = new Rounds<http2.ServerHttp2Stream>();
  server.on('stream', (stream) => {
    streams.streams.push(stream);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const scanner = messageEnds(() => {
      stream.write(ack);
      streams.answer();
    });
    stream.on('data', (chunk: Buffer) => void scanner.push(chunk));
    stream.on('error', () => undefined);
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const step = framed(stepBytes);
  return {
    port,
    streams: () => streams.streams.length,
    round: () => streams.run((s) => s.write(step)),
    close: () =>
      new Promise<void>((res) => {
        for (const s of streams.streams) s.close();
        server.close(() => res());
        setTimeout(res, 2000).unref();
      }),
  };
}

async function makeTls(dir: string): Promise<Tls> {
  const certsDir = join(dir, 'certs');
  await initCa({ certsDir });
  const ca = await loadCa(certsDir);
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const now = Date.now();
  // A probe certificate: the same CA, RSA-2048 key and chain length as an agent's.
  const client = issueProbeCertificate(ca, 'transport-floor', keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), { notBefore: now - 60_000, notAfter: now + 3_600_000 });
  return {
    caPem: await readFile(join(certsDir, CA_FILES.caCert), 'utf8'),
    certPem: await readFile(join(certsDir, CA_FILES.serverCert), 'utf8'),
    keyPem: await readFile(join(certsDir, CA_FILES.serverKey), 'utf8'),
    clientCertPem: client.pem,
    clientKeyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function ask(w: ChildProcess, m: ToClient): Promise<FromClient> {
  return new Promise((res) => {
    w.once('message', (r: FromClient) => res(r));
    w.send(m);
  });
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function serverMain(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      agents: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      sets: { type: 'string', default: '3' },
      workers: { type: 'string', default: '2' },
      'step-bytes': { type: 'string', default: '400' },
      'result-bytes': { type: 'string', default: '500' },
      'ack-bytes': { type: 'string', default: '80' },
      transports: { type: 'string', default: 'grpc,http2' },
    },
  });
  const N = Number(args.agents);
  const ROUNDS = Number(args.rounds);
  const WARMUP = Number(args.warmup);
  const SETS = Number(args.sets);
  const WORKERS = Math.max(1, Number(args.workers));
  const stepBytes = Number(args['step-bytes']);
  const resultBytes = Number(args['result-bytes']);
  const ackBytes = Number(args['ack-bytes']);
  if (ackBytes === stepBytes) throw new Error('--ack-bytes must differ from --step-bytes: clients tell steps from acks by size');
  const transports = String(args.transports).split(',') as Transport[];
  out(`# transport floor — ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join('/')} at start`);
  out(`# ${N} held streams over mutual TLS in ${WORKERS} client processes; ${stepBytes}-byte step out, ${resultBytes}-byte result back, ${ackBytes}-byte ack out per stream and round; ${ROUNDS} rounds per set after ${WARMUP} warm-up`);
  const dir = await mkdtemp(join(tmpdir(), 'hr-transport-floor-'));
  const workers: ChildProcess[] = [];
  process.on('exit', () => {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  try {
    const tls = await makeTls(dir);
    const perStep = new Map<Transport, number[]>(transports.map((t) => [t, []]));
    const wall = new Map<Transport, number[]>(transports.map((t) => [t, []]));
    for (let set = 0; set < SETS; set++) {
      // Rotate the order so neither transport always runs first.
      const order = transports.map((_, i) => transports[(i + set) % transports.length] as Transport);
      for (const t of order) {
        const server = t === 'grpc' ? await grpcServer(tls, stepBytes, ackBytes) : await http2Server(tls, stepBytes, ackBytes);
        const ws = Array.from({ length: WORKERS }, () => fork(import.meta.filename, ['--client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
        workers.push(...ws);
        const replies = await Promise.all(ws.map((w, i) => ask(w, { type: 'open', transport: t, port: server.port, count: Math.floor(N / WORKERS) + (i < N % WORKERS ? 1 : 0), tls, stepBytes, resultBytes })));
        for (const r of replies) if (r.type === 'error') throw new Error(`a client worker could not open its streams: ${r.message}`);
        if (server.streams() !== N) throw new Error(`${server.streams()} of ${N} streams reached the ${t} server`);
        for (let i = 0; i < WARMUP; i++) await server.round();
        const cpu: number[] = [];
        const ms: number[] = [];
        for (let i = 0; i < ROUNDS; i++) {
          const c0 = cpuNow();
          const t0 = performance.now();
          await server.round();
          ms.push(performance.now() - t0);
          cpu.push(((cpuNow() - c0) * 1000) / N);
        }
        (perStep.get(t) as number[]).push(median(cpu));
        (wall.get(t) as number[]).push(median(ms));
        out(`set ${set + 1} ${t.padEnd(5)}: round of ${N}: median ${median(ms).toFixed(0)} ms wall, server CPU ${median(cpu).toFixed(0)} µs per node-step (rounds ${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)})`);
        for (const w of ws) w.send({ type: 'close' } satisfies ToClient);
        await Promise.all(ws.map((w) => new Promise((r) => (w.exitCode !== null ? r(undefined) : w.once('exit', r)))));
        await server.close();
      }
    }
    out(`\n| transport | server CPU per node-step, median of ${SETS} set medians (range) | round of ${N}, wall |`);
    out('|---|---|---|');
    for (const t of transports) {
      const c = perStep.get(t) as number[];
      const w = wall.get(t) as number[];
      out(`| ${t} | ${median(c).toFixed(0)} µs (${Math.min(...c).toFixed(0)}–${Math.max(...c).toFixed(0)}) | ${median(w).toFixed(0)} ms |`);
    }
    out(`# load ${loadavg().map((l) => l.toFixed(2)).join('/')} at the end`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--client')) clientMain();
else
  void serverMain().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`transport-floor: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
