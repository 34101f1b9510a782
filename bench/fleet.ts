/**
 * Fleet benchmark (issue 2): a real coordinator process, N simulated agents on real mTLS gRPC
 * streams in this process, and M real agent processes. Prints: enrollment and connect times,
 * fan-out of one `true` step to every agent with every signed result stored and audited,
 * single-step round trips (request to stored result, via the REST API), coordinator RSS and
 * CPU, and a real agent's idle RSS and CPU.
 *
 *   node dist/bench/fleet.js [--agents 2000] [--real-agents 20] [--rounds 5] [--rtt 200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { createCsr } from '../core/csr.js';
import { normalizeSerial } from '../core/x509-serial.js';
import { EnrollmentServiceClient, type EnrollResponse } from '../proto/gen/handrail/v1/enrollment.js';
import { channelOptions, parseCoordinatorAddress } from '../agent/coordinator-address.js';
import { SimAgent, keyMap, type SimIdentity } from './sim-agents.js';
import { cpuMs, mb, median, percentile, rssBytes } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '2000' },
    'real-agents': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '5' },
    rtt: { type: 'string', default: '200' },
    'idle-seconds': { type: 'string', default: '20' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'string' },
  },
});
const N = Number(args.agents);
const M = Number(args['real-agents']);
const ROUNDS = Number(args.rounds);
const RTT = Number(args.rtt);
const CLI = resolve(import.meta.dirname, '..', 'cli', 'main.js');

const out = (s: string): void => void process.stdout.write(s + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  out(`# Handrail fleet benchmark — ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  out(`# ${N} simulated agents (real mTLS streams, real Ed25519 verification and RSA-signed results; no process spawned), ${M} real agent processes`);
  const dir = await mkdtemp(join(tmpdir(), 'hr-bench-'));
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  await initCa({ certsDir });
  const data = await openDataDir(dataDir);
  await data.users.add('bench', ['admins'], { kind: 'cli', id: 'bench' }, Date.now());
  const apiToken = (await data.users.issueToken('bench', 86_400_000, 'bench', { kind: 'cli', id: 'bench' }, Date.now())).token;
  const bootstrap = (await data.tokens.create({ labels: { bench: 'true' }, ttlMs: 3_600_000, uses: N + M + 10, namePattern: null, description: 'bench', createdBy: 'bench' }, Date.now())).token;
  await data.close();

  const profile = args.profile ? ['--cpu-prof', '--cpu-prof-dir', String(args.profile)] : [];
  const coord = spawn(process.execPath, [...profile, CLI, 'coordinator', '--data-dir', dataDir, '--certs-dir', certsDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--log-level', String(args['log-level']), '--heartbeat-interval', '10s', '--enroll-rate-limit', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const ports = await new Promise<{ grpc: number; http: number }>((res, rej) => {
    let buf = '';
    coord.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /agents on port (\d+), HTTP on port (\d+)/.exec(buf);
      if (m) res({ grpc: Number(m[1]), http: Number(m[2]) });
      if (buf.length > 1_000_000) buf = buf.slice(-10_000);
    });
    coord.on('exit', (c) => rej(new Error(`coordinator exited ${c}: ${buf.slice(-2000)}`)));
  });
  const address = `127.0.0.1:${ports.grpc}`;
  const base = `http://127.0.0.1:${ports.http}`;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const caPem = await readFile(join(certsDir, 'ca.pem'), 'utf8');
  out(`coordinator pid ${coord.pid}, idle RSS ${mb(rssBytes(coord.pid as number))}`);

  // ---- enroll N simulated agents through the real enrollment RPC (one shared key, N CSRs) ----
  const shared = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = shared.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const addr = parseCoordinatorAddress(address);
  const enrollClient = new EnrollmentServiceClient(addr.target, credentials.createSsl(Buffer.from(caPem)), channelOptions(addr));
  const enrollOne = (i: number): Promise<EnrollResponse> =>
    new Promise((res, rej) =>
      enrollClient.enroll({ token: bootstrap, csrPem: createCsr(shared.privateKey, `sim-${i}`), labels: {}, facts: undefined }, new Metadata(), { deadline: Date.now() + 60_000 }, (e: ServiceError | null, r?: EnrollResponse) => (e || !r ? rej(e) : res(r))),
    );
  let t = performance.now();
  const ids: SimIdentity[] = [];
  let dispatchKeys: Array<{ keyId: string; publicKeyPem: string }> = [];
  for (let i = 0; i < N; i += 32) {
    const batch = await Promise.all(Array.from({ length: Math.min(32, N - i) }, (_, k) => enrollOne(i + k)));
    for (const r of batch) ids.push({ agentId: r.agentId, certPem: r.certificatePem, serial: normalizeSerial(new X509Certificate(r.certificatePem).serialNumber) });
    dispatchKeys = batch[0]?.dispatchKeys ?? dispatchKeys;
  }
  enrollClient.close();
  const enrollMs = performance.now() - t;
  out(`enrolled ${N} agents in ${(enrollMs / 1000).toFixed(2)} s (${((N / enrollMs) * 1000).toFixed(0)}/s, 32 in flight, real CSR verification and certificate issue)`);

  // ---- connect ----
  const keys = keyMap(dispatchKeys);
  const sims = ids.map((id) => new SimAgent(id, address, caPem, keyPem, shared.privateKey, keys));
  t = performance.now();
  for (let i = 0; i < sims.length; i += 100) await Promise.all(sims.slice(i, i + 100).map((s) => s.connect()));
  const connectMs = performance.now() - t;
  await sleep(1000);
  const rssConnected = rssBytes(coord.pid as number);
  out(`connected ${N} agents (mTLS + Hello + Welcome) in ${(connectMs / 1000).toFixed(2)} s; coordinator RSS ${mb(rssConnected)} (${(rssConnected / N / 1024).toFixed(0)} KiB per agent)`);

  // ---- fan-out ----
  const agentIds = ids.map((i) => i.agentId);
  const fan: number[] = [];
  const fanCpu: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = cpuMs(coord.pid as number);
    const s0 = process.cpuUsage();
    t = performance.now();
    const { executionId } = await api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: agentIds, argv: ['true'] });
    const accepted = performance.now() - t;
    let view: { state: string; steps: Array<{ state: string }> };
    do view = await api('GET', `/api/v1/executions/${executionId}?wait=60s`);
    while (view.state === 'running');
    const ms = performance.now() - t;
    const ok = view.steps.filter((s) => s.state === 'succeeded').length;
    const sc = process.cpuUsage(s0);
    fan.push(ms);
    fanCpu.push(cpuMs(coord.pid as number) - c0);
    out(`fan-out round ${r + 1}: ${ms.toFixed(0)} ms to ${ok}/${N} results stored (dispatch committed+sent after ${accepted.toFixed(0)} ms); coordinator CPU ${(cpuMs(coord.pid as number) - c0).toFixed(0)} ms, sim-agents CPU ${((sc.user + sc.system) / 1000).toFixed(0)} ms`);
    if (ok !== N) throw new Error(`only ${ok} of ${N} succeeded: ${view.state}`);
  }
  out(`FAN-OUT ${N} agents: median ${median(fan).toFixed(0)} ms over ${ROUNDS} rounds (coordinator CPU median ${median(fanCpu).toFixed(0)} ms)`);

  // ---- single-step round trips on one agent ----
  const one = agentIds[0] as string;
  const rtt: number[] = [];
  for (let i = 0; i < RTT + 10; i++) {
    const t0 = performance.now();
    const { executionId } = await api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [one], argv: ['true'] });
    let v: { state: string };
    do v = await api('GET', `/api/v1/executions/${executionId}?wait=30s`);
    while (v.state === 'running');
    if (i >= 10) rtt.push(performance.now() - t0); // first 10 warm up
  }
  out(`SINGLE STEP round trip (POST /adhoc → signed result stored → GET returns), ${RTT} sequential: p50 ${percentile(rtt, 50).toFixed(1)} ms, p99 ${percentile(rtt, 99).toFixed(1)} ms, max ${Math.max(...rtt).toFixed(1)} ms`);
  out(`coordinator RSS after the runs: ${mb(rssBytes(coord.pid as number))}`);
  for (const s of sims) s.close();
  await sleep(1500);

  // ---- real agent processes ----
  const real: ChildProcess[] = [];
  for (let i = 0; i < M; i++) {
    real.push(
      spawn(process.execPath, [CLI, 'agent', '--coordinator', address, '--token', bootstrap, '--ca', join(certsDir, 'ca.pem'), '--state-dir', join(dir, `real-${i}`), '--name', `real-${i}`, '--allow-adhoc', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'ignore'] }),
    );
  }
  let realIds: string[] = [];
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const { agents } = await api<{ agents: Array<{ id: string; name: string; status: string }> }>('GET', '/api/v1/agents');
    realIds = agents.filter((a) => a.name.startsWith('real-') && a.status === 'online').map((a) => a.id);
    if (realIds.length === M) break;
    await sleep(500);
  }
  out(`${realIds.length} real agent processes online`);
  const realFan: number[] = [];
  for (let r = 0; r < 3; r++) {
    t = performance.now();
    const { executionId } = await api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: realIds, argv: ['true'] });
    let v: { state: string };
    do v = await api('GET', `/api/v1/executions/${executionId}?wait=60s`);
    while (v.state === 'running');
    realFan.push(performance.now() - t);
    if (v.state !== 'succeeded') throw new Error(`real fan-out ended ${v.state}`);
  }
  out(`FAN-OUT to ${realIds.length} real agents spawning \`true\`: median ${median(realFan).toFixed(0)} ms over 3 rounds (${realFan.map((x) => x.toFixed(0)).join(', ')})`);

  const probe = real[0] as ChildProcess;
  const idleS = Number(args['idle-seconds']);
  await sleep(2000);
  const c0 = cpuMs(probe.pid as number);
  await sleep(idleS * 1000);
  const idleCpu = cpuMs(probe.pid as number) - c0;
  out(`REAL AGENT idle: RSS ${mb(rssBytes(probe.pid as number))}, CPU ${idleCpu.toFixed(0)} ms over ${idleS} s (${((idleCpu / (idleS * 1000)) * 100).toFixed(2)}% of a core)`);

  for (const p of real) p.kill('SIGTERM');
  coord.kill('SIGTERM');
  await sleep(1000);
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
