/**
 * Shared benchmark setup: a CA and data dir, a real coordinator process, an admin API token,
 * and N simulated agents enrolled through the real enrollment RPC and connected over real
 * mTLS streams (see sim-agents.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { initCa } from '../coordinator/pki/ca.js';
import { openDataDir } from '../coordinator/data-dir.js';
import { createCsr } from '../core/csr.js';
import { useEd25519Backend } from '../core/ed25519.js';
import { ed25519Choice } from '../cli/settings.js';
import { normalizeSerial } from '../core/x509-serial.js';
import { EnrollmentServiceClient, type EnrollResponse } from '../proto/gen/handrail/v1/enrollment.js';
import { channelOptions, parseCoordinatorAddress } from '../agent/coordinator-address.js';
import { SimAgent, keyMap, type SimIdentity } from './sim-agents.js';
import { HANDRAIL_VERSION } from '../core/version.js';
import { DispatchKeySet } from '../proto/gen/handrail/v1/common.js';

/** Enrollment refuses an agent that reports no version (the version handshake). */
const SIM_FACTS = { hostname: 'sim', os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion: HANDRAIL_VERSION, kernelRelease: '' };

export const CLI = resolve(import.meta.dirname, '..', 'cli-bundle', 'main.js');
export const out = (s: string): void => void process.stdout.write(s + '\n');
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port on 127.0.0.1 that nothing listens on (taken and given back), for a process started next. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/**
 * When a coordinator process prints the line that says it listens: its ports, and the moment
 * (performance.now()) the line arrived. Rejects, with the end of its stderr, if it exits first.
 * `tap` sees every chunk of its stderr (e.g. to keep the log).
 */
export function coordinatorListening(proc: ChildProcess, tap?: (chunk: Buffer) => void): Promise<{ grpc: number; http: number; at: number }> {
  return new Promise((res, rej) => {
    let buf = '';
    proc.stderr?.on('data', (d: Buffer) => {
      tap?.(d);
      buf += d.toString();
      const m = /agents on port (\d+), HTTP on port (\d+)/.exec(buf);
      if (m) res({ grpc: Number(m[1]), http: Number(m[2]), at: performance.now() });
      if (buf.length > 1_000_000) buf = buf.slice(-10_000);
    });
    proc.once('exit', (c) => rej(new Error(`coordinator exited ${c}: ${buf.slice(-2000)}`)));
  });
}

export interface Bench {
  readonly dir: string;
  readonly certsDir: string;
  readonly dataDir: string;
  readonly coord: ChildProcess;
  readonly address: string;
  /** The HTTP base URL, e.g. http://127.0.0.1:PORT. */
  readonly url: string;
  readonly bootstrap: string;
  /** An admin's API token (user `bench`, group admins), for CLI commands run against this coordinator. */
  readonly apiToken: string;
  /** The coordinator's inspector port, when started with one (startBench's inspectPort). */
  readonly inspectPort: number | undefined;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Runs an execution (runbook or ad-hoc) and long-polls until it ends. */
  /** `endSeenAt`: wall clock (Date.now) when the long-poll returned the end. */
  runToEnd(path: string, body: unknown): Promise<{ ms: number; executionId: string; endSeenAt: number; view: { state: string; steps: Array<{ state: string }> } }>;
}

export async function startBench(o: { coordinatorArgs?: readonly string[]; bootstrapUses: number; profileDir?: string; logLevel?: string; portalPassword?: string; inspectPort?: number }): Promise<Bench> {
  // As the CLI does for the coordinator it spawns: HANDRAIL_ED25519=openssl applies here too.
  useEd25519Backend(ed25519Choice(process.env));
  const dir = await mkdtemp(join(tmpdir(), 'hr-bench-'));
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  await initCa({ certsDir });
  const data = await openDataDir(dataDir);
  await data.users.add('bench', ['admins'], { kind: 'cli', id: 'bench' }, Date.now());
  if (o.portalPassword !== undefined) await data.users.setPassword('bench', o.portalPassword, { kind: 'cli', id: 'bench' });
  const apiToken = (await data.users.issueToken('bench', 86_400_000, 'bench', { kind: 'cli', id: 'bench' }, Date.now())).token;
  const bootstrap = (await data.tokens.create({ labels: { bench: 'true' }, ttlMs: 3_600_000, uses: o.bootstrapUses, namePattern: null, description: 'bench', createdBy: 'bench' }, Date.now())).token;
  await data.close();
  const profile = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : [];
  const coord = spawn(
    process.execPath,
    [...profile, ...(o.inspectPort !== undefined ? [`--inspect=127.0.0.1:${o.inspectPort}`] : []), CLI, 'coordinator', '--data-dir', dataDir, '--certs-dir', certsDir, '--grpc-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--log-level', o.logLevel ?? 'info', '--heartbeat-interval', '10s', '--enroll-rate-limit', '0', ...(o.coordinatorArgs ?? [])],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // A bench that fails (or exits without stopping it) must not leave its coordinator running.
  process.once('exit', () => {
    if (coord.exitCode === null && coord.signalCode === null) coord.kill('SIGKILL');
  });
  const ports = await coordinatorListening(coord);
  const base = `http://127.0.0.1:${ports.http}`;
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  return {
    dir,
    certsDir,
    dataDir,
    coord,
    address: `127.0.0.1:${ports.grpc}`,
    url: base,
    bootstrap,
    apiToken,
    inspectPort: o.inspectPort,
    api,
    async runToEnd(path, body) {
      const t0 = performance.now();
      const { executionId } = await api<{ executionId: string }>('POST', path, body);
      let view: { state: string; steps: Array<{ state: string }> };
      do view = await api('GET', `/api/v1/executions/${executionId}?wait=60s`);
      while (view.state === 'running' || view.state === 'queued');
      return { ms: performance.now() - t0, executionId, endSeenAt: Date.now(), view };
    },
  };
}

/**
 * Enrolls `n` simulated agents (one shared RSA key, one CSR and certificate each) and connects
 * them, to a bench's coordinator or any other (tests pass their own).
 */
export async function simulatedFleet(b: Pick<Bench, 'certsDir' | 'address' | 'bootstrap'>, n: number, output?: (stepId: string) => Buffer): Promise<{ sims: SimAgent[]; enrollMs: number; connectMs: number }> {
  const caPem = await readFile(join(b.certsDir, 'ca.pem'), 'utf8');
  const shared = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = shared.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const addr = parseCoordinatorAddress(b.address);
  const client = new EnrollmentServiceClient(addr.target, credentials.createSsl(Buffer.from(caPem)), channelOptions(addr));
  const enrollOne = (i: number): Promise<EnrollResponse> =>
    new Promise((res, rej) =>
      client.enroll({ token: b.bootstrap, csrPem: createCsr(shared.privateKey, `sim-${i}`), labels: {}, facts: SIM_FACTS }, new Metadata(), { deadline: Date.now() + 60_000 }, (e: ServiceError | null, r?: EnrollResponse) => (e || !r ? rej(e) : res(r))),
    );
  let t = performance.now();
  const ids: SimIdentity[] = [];
  let dispatchKeys: Array<{ keyId: string; publicKeyPem: string }> = [];
  for (let i = 0; i < n; i += 32) {
    const batch = await Promise.all(Array.from({ length: Math.min(32, n - i) }, (_, k) => enrollOne(i + k)));
    for (const r of batch) ids.push({ agentId: r.agentId, certPem: r.certificatePem, serial: normalizeSerial(new X509Certificate(r.certificatePem).serialNumber) });
    // The deprecated unsigned list is empty now: the keys travel in the signed key set.
    const set = batch[0]?.dispatchKeySet;
    if (set) dispatchKeys = DispatchKeySet.decode(set.payload).keys;
  }
  client.close();
  const enrollMs = performance.now() - t;
  const keys = keyMap(dispatchKeys);
  const sims = ids.map((id) => new SimAgent(id, b.address, caPem, keyPem, shared.privateKey, keys, output));
  t = performance.now();
  for (let i = 0; i < sims.length; i += 100) await Promise.all(sims.slice(i, i + 100).map((s) => s.connect()));
  return { sims, enrollMs, connectMs: performance.now() - t };
}
