/**
 * Reconnect-storm benchmark (issue 10): N simulated agents on real mTLS streams, held by
 * sim-worker child processes, and a real coordinator process that is restarted under them
 * (kill -9, then SIGTERM), timing until the coordinator again holds all N sessions
 * (`handrail_agents_online` on /metrics: Hello handled, registry written, Welcome sent) and
 * checking that results the agents held across the outage are stored.
 *
 * Enrollment is done once and cached in the state dir (CA, data dir with the enrolled agents,
 * their certificates and the shared key): later runs start at once.
 *
 *   node dist/bench/reconnect.js [--agents 2000] [--workers 2] [--runs 3] [--modes kill,graceful]
 *     [--hold 20] [--state-dir .bench/reconnect] [--profile DIR] [--no-resume] [--idle-seconds 0]
 *
 * Prints per run: time to all online (from the kill and from the new coordinator's listen),
 * the connect rate, coordinator CPU (its own /proc time) and RSS, the sim workers' CPU, and
 * with --profile the top self-time entries of the restarted coordinator.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { createCsr } from '../core/csr.js';
import { normalizeSerial } from '../core/x509-serial.js';
import { EnrollmentServiceClient, type EnrollResponse } from '../proto/gen/handrail/v1/enrollment.js';
import { channelOptions, parseCoordinatorAddress } from '../agent/coordinator-address.js';
import { HANDRAIL_VERSION } from '../core/version.js';
import { cpuMs, mb, median, rssBytes, smapsSummary, socketCount } from './proc-stats.js';
import { CLI as OWN_CLI, coordinatorListening, freePort, out, sleep } from './harness.js';
import { formatProfile, summariseProfile } from './cpu-profile.js';
import type { FromWorker, ToWorker, WorkerIdentity } from './sim-worker.js';

const WORKER = resolve(import.meta.dirname, 'sim-worker.js');

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'kill,graceful' },
    hold: { type: 'string', default: '20' },
    'state-dir': { type: 'string', default: '.bench/reconnect' },
    profile: { type: 'string' },
    'no-resume': { type: 'boolean', default: false },
    'old-backoff': { type: 'boolean', default: false },
    'idle-seconds': { type: 'string', default: '0' },
    'spread-ms': { type: 'string', default: '5000' },
    'log-level': { type: 'string', default: 'info' },
    'coordinator-arg': { type: 'string', multiple: true, default: [] },
    /** Node flags for the coordinator process (e.g. --heapsnapshot-signal=SIGUSR2 to attribute its memory while held). */
    'coordinator-node-arg': { type: 'string', multiple: true, default: [] },
    'timeout-s': { type: 'string', default: '180' },
    'coordinator-log': { type: 'string' },
    /** Another build's dist/cli-bundle/main.js (or dist/cli/main.js, unbundled), to measure its coordinator under the same agents (a before/after). */
    cli: { type: 'string' },
  },
});
/** Every process this bench started, ended on any exit (a failed run must not leave a coordinator behind). */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
// Interrupted by hand (a 10,000-agent run is long): end the coordinator and workers too.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const CLI = args.cli ? resolve(String(args.cli)) : OWN_CLI;
const N = Number(args.agents);
const WORKERS = Math.max(1, Number(args.workers));
const RUNS = Number(args.runs);
const MODES = String(args.modes).split(',') as Array<'kill' | 'graceful'>;
const HOLD = Math.min(N, Number(args.hold));
const STATE = resolve(String(args['state-dir']));
const RESUME = !args['no-resume'];
const TIMEOUT_MS = Number(args['timeout-s']) * 1000;

interface Fleet {
  readonly keyPem: string;
  readonly ids: WorkerIdentity[];
}


class Coordinator {
  readonly proc: ChildProcess;
  readonly listening: Promise<number>;
  readonly exited: Promise<number | null>;

  constructor(ports: { grpc: number; http: number }, o: { profileDir?: string }) {
    const profile = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : [];
    this.proc = spawn(
      process.execPath,
      [
        ...(args['coordinator-node-arg'] ?? []),
        ...profile,
        CLI,
        'coordinator',
        '--data-dir', join(STATE, 'data'),
        '--certs-dir', join(STATE, 'certs'),
        '--grpc-listen', `127.0.0.1:${ports.grpc}`,
        '--http-listen', `127.0.0.1:${ports.http}`,
        '--log-level', String(args['log-level']),
        '--heartbeat-interval', '10s',
        '--enroll-rate-limit', '0',
        ...(args['coordinator-arg'] ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.add(this.proc);
    this.exited = new Promise((r) => this.proc.once('exit', (c) => r(c)));
    const log = args['coordinator-log'] ? createWriteStream(String(args['coordinator-log']), { flags: 'a' }) : undefined;
    this.listening = coordinatorListening(this.proc, log ? (d) => void log.write(d) : undefined).then((l) => l.at);
  }

  get pid(): number {
    return this.proc.pid as number;
  }
}

async function prepare(ports: { grpc: number; http: number }): Promise<Fleet> {
  const cache = join(STATE, 'fleet.json');
  if (existsSync(cache)) {
    const f = JSON.parse(await readFile(cache, 'utf8')) as Fleet;
    if (f.ids.length >= N) {
      out(`# reusing ${f.ids.length} enrolled agents from ${STATE}`);
      return { keyPem: f.keyPem, ids: f.ids.slice(0, N) };
    }
    out(`# ${STATE} holds ${f.ids.length} agents, ${N} wanted: enrolling again`);
  }
  await rm(STATE, { recursive: true, force: true });
  await mkdir(STATE, { recursive: true });
  await initCa({ certsDir: join(STATE, 'certs') });
  const data = await openDataDir(join(STATE, 'data'));
  const bootstrap = (await data.tokens.create({ labels: { bench: 'true' }, ttlMs: 3_600_000, uses: N + 10, namePattern: null, description: 'bench', createdBy: 'bench' }, Date.now())).token;
  await data.close();
  const coord = new Coordinator(ports, {});
  await coord.listening;
  const caPem = await readFile(join(STATE, 'certs', 'ca.pem'), 'utf8');
  const shared = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = shared.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const addr = parseCoordinatorAddress(`127.0.0.1:${ports.grpc}`);
  const client = new EnrollmentServiceClient(addr.target, credentials.createSsl(Buffer.from(caPem)), channelOptions(addr));
  const enrollOne = (i: number): Promise<EnrollResponse> =>
    new Promise((res, rej) =>
      client.enroll({ token: bootstrap, csrPem: createCsr(shared.privateKey, `sim-${i}`), labels: {}, facts: { hostname: `sim-${i}`, os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion: HANDRAIL_VERSION, kernelRelease: '' } }, new Metadata(), { deadline: Date.now() + 60_000 }, (e: ServiceError | null, r?: EnrollResponse) => (e || !r ? rej(e) : res(r))),
    );
  const t = performance.now();
  const ids: WorkerIdentity[] = [];
  for (let i = 0; i < N; i += 32) {
    const batch = await Promise.all(Array.from({ length: Math.min(32, N - i) }, (_, k) => enrollOne(i + k)));
    for (const r of batch) ids.push({ agentId: r.agentId, certPem: r.certificatePem, serial: normalizeSerial(new X509Certificate(r.certificatePem).serialNumber) });
    if (i % 1024 === 0) out(`# enrolled ${ids.length}/${N}`);
  }
  client.close();
  out(`# enrolled ${N} agents in ${((performance.now() - t) / 1000).toFixed(1)} s (cached in ${STATE})`);
  coord.proc.kill('SIGTERM');
  await coord.exited;
  const fleet: Fleet = { keyPem, ids };
  await writeFile(cache, JSON.stringify(fleet), { mode: 0o600 });
  return fleet;
}

class Worker {
  readonly proc: ChildProcess;
  private waiting: Array<(m: FromWorker) => void> = [];

  constructor() {
    this.proc = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--max-old-space-size=4096'] });
    children.add(this.proc);
    this.proc.on('message', (m: FromWorker) => {
      const w = this.waiting.shift();
      w?.(m);
    });
  }

  ask(m: ToWorker): Promise<FromWorker> {
    return new Promise((res) => {
      this.waiting.push(res);
      this.proc.send(m);
    });
  }

  tell(m: ToWorker): void {
    this.proc.send(m);
  }

  async stats(): Promise<Extract<FromWorker, { type: 'stats' }>> {
    const m = await this.ask({ type: 'stats' });
    if (m.type !== 'stats') throw new Error('worker answered out of turn');
    return m;
  }
}

async function sumStats(workers: readonly Worker[]): Promise<{ streaming: number; held: number; cpuMs: number; rss: number; attempts: number; resumed: number; welcomes: number; failures: Map<string, number> }> {
  const all = await Promise.all(workers.map((w) => w.stats()));
  const failures = new Map<string, number>();
  for (const s of all) for (const [k, v] of Object.entries(s.failures)) failures.set(k, (failures.get(k) ?? 0) + v);
  return {
    streaming: all.reduce((n, s) => n + s.streaming, 0),
    held: all.reduce((n, s) => n + s.held, 0),
    cpuMs: all.reduce((n, s) => n + s.cpuMs, 0),
    rss: all.reduce((n, s) => n + s.rssBytes, 0),
    attempts: all.reduce((n, s) => n + s.attempts, 0),
    resumed: all.reduce((n, s) => n + s.resumed, 0),
    welcomes: all.reduce((n, s) => n + s.welcomes, 0),
    failures,
  };
}

/** A metric's value: the first series of `name`, or exactly the series `name{label="…"}`. */
async function metric(http: number, name: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    const full = name.startsWith('nodejs_') || name.startsWith('process_') ? name : `handrail_${name}`;
    const series = full.includes('{') ? full.replace(/[{}"]/g, '\\$&') : `${full}(?:\\{[^}]*\\})?`;
    const m = new RegExp(`^${series} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return -1;
  }
}

/**
 * Polls until the coordinator counts n live sessions (agents_online) and every simulated agent
 * has its Welcome (sent only once the coordinator has recorded the agent as connected).
 * Returns the samples (ms since t0, agents welcomed).
 */
async function waitOnline(http: number, workers: readonly Worker[], n: number, t0: number): Promise<Array<[number, number]>> {
  // Polling /metrics during the storm would cost the coordinator real CPU (prom-client's process
  // metrics walk every handle and fd): the agents' Welcomes are counted, /metrics is read once at the end.
  const samples: Array<[number, number]> = [];
  const deadline = performance.now() + TIMEOUT_MS;
  for (;;) {
    const st = await sumStats(workers);
    samples.push([performance.now() - t0, st.streaming]);
    if (st.streaming >= n) {
      const online = await metric(http, 'agents_online');
      if (online >= n) return samples;
    }
    if (performance.now() > deadline) throw new Error(`only ${st.streaming} of ${n} agents welcomed after ${TIMEOUT_MS / 1000} s`);
    if (samples.length % 50 === 0) {
      const f = [...st.failures].map(([k, v]) => `${v}× ${k}`).join(', ');
      out(`    … ${((performance.now() - t0) / 1000).toFixed(1)} s: ${st.streaming} agents welcomed, ${st.attempts} dials so far${f ? `; losses ${f}` : ''}`);
    }
    await sleep(100);
  }
}

async function api<T>(http: number, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`http://127.0.0.1:${http}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function newestProfile(dir: string, after: number): Promise<string | undefined> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  let best: { f: string; t: number } | undefined;
  for (const f of files) {
    const t = (await stat(join(dir, f))).mtimeMs;
    if (t >= after && (!best || t > best.t)) best = { f, t };
  }
  return best ? join(dir, best.f) : undefined;
}

interface RunFigures {
  readonly mode: 'kill' | 'graceful';
  readonly fromKillMs: number;
  readonly fromListenMs: number;
  readonly coordCpuMs: number;
  readonly startupCpuMs: number;
  readonly simCpuMs: number;
  readonly rss: number;
  readonly peakRate: number;
}

async function main(): Promise<void> {
  const [l1, l5] = loadavg();
  out(`# Handrail reconnect-storm benchmark — ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load ${l1?.toFixed(2)}/${l5?.toFixed(2)} at start`);
  out(`# coordinator: ${CLI}`);
  out(`# ${N} simulated agents in ${WORKERS} worker process(es), client TLS session resumption ${RESUME ? 'on' : 'off'}, ${args['old-backoff'] ? 'old' : 'current'} reconnect backoff; ${HOLD} of them hold a result across each restart`);
  const ports = { grpc: await freePort(), http: await freePort() };
  const fleet = await prepare(ports);
  const caPem = await readFile(join(STATE, 'certs', 'ca.pem'), 'utf8');
  const data = await openDataDir(join(STATE, 'data'));
  const users = await data.users.list();
  if (!users.some((u) => u.name === 'bench')) await data.users.add('bench', ['admins'], { kind: 'cli', id: 'bench' }, Date.now());
  const token = (await data.users.issueToken('bench', 86_400_000, 'bench', { kind: 'cli', id: 'bench' }, Date.now())).token;
  await data.close();

  const profileDir = args.profile ? resolve(String(args.profile)) : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  let coord = new Coordinator(ports, {});
  await coord.listening;
  out(`coordinator pid ${coord.pid} on 127.0.0.1:${ports.grpc} (HTTP ${ports.http}), idle RSS ${mb(rssBytes(coord.pid))}`);

  const workers = Array.from({ length: WORKERS }, () => new Worker());
  const held = fleet.ids.slice(0, HOLD).map((i) => i.agentId);
  await Promise.all(
    workers.map((w, k) =>
      w.ask({ type: 'init', ids: fleet.ids.filter((_, i) => i % WORKERS === k), keyPem: fleet.keyPem, caPem, address: `127.0.0.1:${ports.grpc}`, hold: held, resume: RESUME, spreadMs: Number(args['spread-ms']), oldBackoff: Boolean(args['old-backoff']) }),
    ),
  );
  const t0 = performance.now();
  let c0 = cpuMs(coord.pid);
  for (const w of workers) w.tell({ type: 'connect' });
  await waitOnline(ports.http, workers, N, t0);
  out(`first connection: ${N} online after ${((performance.now() - t0) / 1000).toFixed(2)} s (spread over ${Number(args['spread-ms']) / 1000} s); coordinator CPU ${(cpuMs(coord.pid) - c0).toFixed(0)} ms (${((cpuMs(coord.pid) - c0) / N).toFixed(2)} ms per agent), RSS ${mb(rssBytes(coord.pid))}, TLS connections taken ${await metric(ports.http, 'connections_total{kind="agent"}')}`);

  const idleS = Number(args['idle-seconds']);
  if (idleS > 0) {
    await sleep(5000);
    const r0 = rssBytes(coord.pid);
    c0 = cpuMs(coord.pid);
    const s0 = await sumStats(workers);
    await sleep(idleS * 1000);
    const idle = cpuMs(coord.pid) - c0;
    const s1 = await sumStats(workers);
    const heap = await Promise.all(['nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'].map((m) => metric(ports.http, m)));
    out(`coordinator memory while held: V8 heap used ${mb(heap[0] ?? 0)} of ${mb(heap[1] ?? 0)}, external ${mb(heap[2] ?? 0)}; ${smapsSummary(coord.pid)}`);
    out(`HELD ${N} agents for ${idleS} s: coordinator RSS ${mb(rssBytes(coord.pid))} (${mb(r0)} at start; ${((rssBytes(coord.pid) / N) / 1024).toFixed(0)} KiB per agent overall), idle CPU ${idle.toFixed(0)} ms = ${((idle / (idleS * 1000)) * 100).toFixed(1)}% of a core (heartbeats every 10 s: ${((idle / ((idleS / 10) * N)) * 1000).toFixed(0)} µs per heartbeat), sim workers CPU ${(s1.cpuMs - s0.cpuMs).toFixed(0)} ms, RSS ${mb(s1.rss)}, streaming ${s1.streaming}, coordinator sockets open ${socketCount(coord.pid)}`);
  }

  const figures: RunFigures[] = [];
  for (let run = 0; run < RUNS; run++) {
    for (const mode of MODES) {
      // Some agents get a step whose result they keep until the coordinator is back.
      let executionId: string | undefined;
      if (HOLD > 0) {
        executionId = (await api<{ executionId: string }>(ports.http, token, 'POST', '/api/v1/adhoc', { agents: held, argv: ['true'] })).executionId;
        const deadline = Date.now() + 30_000;
        while ((await sumStats(workers)).held < HOLD * (run * MODES.length + MODES.indexOf(mode) + 1)) {
          if (Date.now() > deadline) throw new Error('the holding agents never got their step');
          await sleep(100);
        }
      }
      const before = await sumStats(workers);
      const tKill = performance.now();
      coord.proc.kill(mode === 'kill' ? 'SIGKILL' : 'SIGTERM');
      await coord.exited;
      const stopMs = performance.now() - tKill;
      const since = Date.now();
      coord = new Coordinator(ports, profileDir ? { profileDir } : {});
      const tListen = await coord.listening;
      const startupCpu = cpuMs(coord.pid);
      const samples = await waitOnline(ports.http, workers, N, tKill);
      const tAll = performance.now();
      const stormCpu = cpuMs(coord.pid) - startupCpu;
      const rss = rssBytes(coord.pid);
      const after = await sumStats(workers);
      // The restarted coordinator counts from zero: every agent connection it took through TLS.
      const tlsConnections = await metric(ports.http, 'connections_total{kind="agent"}');
      let peak = 0;
      for (let i = 0, j = 0; i < samples.length; i++) {
        while (j < i && (samples[i] as [number, number])[0] - (samples[j] as [number, number])[0] > 1000) j++;
        const span = (samples[i] as [number, number])[0] - (samples[j] as [number, number])[0];
        if (span >= 500) peak = Math.max(peak, (((samples[i] as [number, number])[1] - (samples[j] as [number, number])[1]) / span) * 1000);
      }
      const firstOnline = samples.find((s) => s[1] > 0)?.[0] ?? 0;
      const fromListen = tAll - tListen;
      let lost = '';
      if (executionId) {
        const tr = performance.now();
        let v: { state: string; steps: Array<{ state: string }> };
        do v = await api(ports.http, token, 'GET', `/api/v1/executions/${executionId}?wait=30s`);
        while (v.state === 'running' || v.state === 'queued');
        const ok = v.steps.filter((s) => s.state === 'succeeded').length;
        lost = `; held results: ${ok}/${HOLD} stored (${v.state}) ${(performance.now() - tr).toFixed(0)} ms after all online`;
        if (ok !== HOLD) throw new Error(`results lost across the restart: ${ok} of ${HOLD} stored, execution ${v.state}`);
      }
      const fails = [...after.failures].map(([k, v]) => [k, v - (before.failures.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
      figures.push({ mode, fromKillMs: tAll - tKill, fromListenMs: fromListen, coordCpuMs: stormCpu, startupCpuMs: startupCpu, simCpuMs: after.cpuMs - before.cpuMs, rss, peakRate: peak });
      out(
        `${mode === 'kill' ? 'kill -9 ' : 'SIGTERM '} run ${run + 1}: all ${N} online ${((tAll - tKill) / 1000).toFixed(2)} s after the ${mode === 'kill' ? 'kill' : 'signal'} ` +
          `(stop ${(stopMs / 1000).toFixed(2)} s, listening after ${((tListen - tKill) / 1000).toFixed(2)} s, first agent online ${(firstOnline / 1000).toFixed(2)} s, all ${(fromListen / 1000).toFixed(2)} s after listening); ` +
          `mean ${(N / (fromListen / 1000)).toFixed(0)}/s, peak ${peak.toFixed(0)}/s; coordinator CPU ${stormCpu.toFixed(0)} ms in the storm (${(stormCpu / N).toFixed(2)} ms per agent; start-up ${startupCpu.toFixed(0)} ms), RSS ${mb(rss)}; ` +
          `sim workers CPU ${(after.cpuMs - before.cpuMs).toFixed(0)} ms, dial attempts ${after.attempts - before.attempts}, resumed ${after.resumed - before.resumed}/${after.welcomes - before.welcomes}, ` +
          `TLS connections taken by the coordinator ${tlsConnections} (${(tlsConnections / N).toFixed(2)} per agent)` +
          lost,
      );
      if (fails.length > 0) out(`    stream losses seen by the agents: ${fails.map(([k, v]) => `${v}× ${k}`).join(', ')}`);
      if (profileDir) {
        // The profile is written at a clean exit: restart once more without it for the next run.
        coord.proc.kill('SIGTERM');
        await coord.exited;
        const file = await newestProfile(profileDir, since);
        if (file) out(formatProfile(summariseProfile(file, 15)).replace(/^/gm, '    '));
        coord = new Coordinator(ports, {});
        await coord.listening;
        await waitOnline(ports.http, workers, N, performance.now());
      }
      await sleep(2000);
    }
  }
  for (const mode of MODES) {
    const f = figures.filter((x) => x.mode === mode);
    if (f.length === 0) continue;
    out(
      `RECONNECT STORM ${N} agents, ${mode === 'kill' ? 'kill -9' : 'SIGTERM'}, median of ${f.length}: all online ${(median(f.map((x) => x.fromKillMs)) / 1000).toFixed(2)} s after the ${mode === 'kill' ? 'kill' : 'signal'} ` +
        `(${(median(f.map((x) => x.fromListenMs)) / 1000).toFixed(2)} s after listening), peak ${median(f.map((x) => x.peakRate)).toFixed(0)}/s; coordinator storm CPU ${median(f.map((x) => x.coordCpuMs)).toFixed(0)} ms ` +
        `(${(median(f.map((x) => x.coordCpuMs)) / N).toFixed(2)} ms per agent), start-up CPU ${median(f.map((x) => x.startupCpuMs)).toFixed(0)} ms, RSS ${mb(median(f.map((x) => x.rss)))}; sim workers CPU ${median(f.map((x) => x.simCpuMs)).toFixed(0)} ms`,
    );
  }
  const [e1, e5] = loadavg();
  out(`# load ${e1?.toFixed(2)}/${e5?.toFixed(2)} at the end`);
  for (const w of workers) w.tell({ type: 'stop' });
  coord.proc.kill('SIGTERM');
  await coord.exited;
  await sleep(300);
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
