/**
 * The agent's own cost per step, without a coordinator: a real StepExecutor (real journal on
 * disk, real spawn of `true`, RSA-signed result) fed pre-signed envelopes in this process, as
 * the agent runs (--lite-mode). Per step it reads this process's CPU time (process.cpuUsage:
 * microseconds, all threads) and the time from handing the envelope to the executor to the
 * signed result reaching the stream. The first steps run cold (code not yet compiled, modules
 * loaded lazily), as in bench/vs-ssh where each agent runs only a few: they are shown apart.
 *
 *   npm run build && node dist/bench/agent-step-local.js [--steps 300]
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { Spool } from '../agent/spool.js';
import { StepExecutor, type Link } from '../agent/step-executor.js';
import { StepJournal } from '../agent/step-journal.js';
import { signEnvelope } from '../core/envelope.js';
import { STEP_REQUEST_TYPE, type Envelope } from '../core/step.js';
import { encodeStepRequest } from '../proto/codec/step-codec.js';
import type { ConnectRequest } from '../proto/gen/handrail/v1/gateway.js';
import { median, percentile } from './proc-stats.js';

const args = parseArgs({ options: { steps: { type: 'string', default: '300' }, child: { type: 'boolean', default: false } } }).values;

if (!args.child) {
  // Run as the agent runs: same V8 flags, a fresh process so the first steps are really cold.
  const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, fileURLToPath(import.meta.url), '--child', '--steps', args.steps], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const out = (s: string): void => void process.stdout.write(s + '\n');
const steps = Number(args.steps);
const dir = await mkdtemp(join(tmpdir(), 'hr-agent-step-'));
await mkdir(join(dir, 'spool'));
await mkdir(join(dir, 'tmp'));
const journal = new StepJournal(join(dir, 'journal.log'));
await journal.load(Date.now());

const agentId = 'agt-bench';
const { privateKey: agentKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dispatch = generateKeyPairSync('ed25519');
const keys: ReadonlyMap<string, KeyObject> = new Map([['k1', dispatch.publicKey]]);

let onResult: ((stepId: string) => void) | undefined;
const link: Link = {
  generation: 1,
  send(msg: ConnectRequest): Promise<void> {
    if (msg.msg?.$case === 'result') onResult?.('');
    return Promise.resolve();
  },
};
const executor = new StepExecutor({
  identity: () => ({ agentId, privateKey: agentKey, serial: '01' }),
  dispatchKeys: () => keys,
  localPolicy: () => ({ allowAdhoc: true, allowScripts: true, runbooks: null, denyCommands: [] }),
  nonces: journal,
  spool: new Spool(join(dir, 'spool'), journal),
  link: () => link,
  log: pino({ level: 'warn' }, pino.destination({ dest: '/dev/null', sync: true })),
  now: Date.now,
  baseEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  defaultWorkingDir: dir,
  tempDir: join(dir, 'tmp'),
  maxConcurrentSteps: 4,
  killGraceMs: 5_000,
});

// Signed before anything is timed: the coordinator's share is not the agent's.
const envelopes: Array<{ stepId: string; env: Envelope }> = [];
for (let i = 0; i < steps; i++) {
  const stepId = `stp-${i}`;
  const payload = encodeStepRequest({
    executionId: `exe-${i}`, stepId, agentId, argv: ['true'], script: undefined, env: {}, workingDir: '', timeoutMs: 60_000,
    issuedAtMs: Date.now(), notAfterMs: Date.now() + 3_600_000, nonce: randomBytes(16), runbookId: '', runbookOwner: '', maxOutputBytes: 1 << 20,
  });
  envelopes.push({ stepId, env: signEnvelope(STEP_REQUEST_TYPE, payload, { keyId: 'k1', privateKey: dispatch.privateKey }) });
}

const cpuUs: number[] = [];
const latencyMs: number[] = [];
for (const { stepId, env } of envelopes) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const sent = new Promise<void>((resolve) => (onResult = () => resolve()));
  await executor.handle(env);
  await sent;
  latencyMs.push(performance.now() - t0);
  executor.acknowledge(stepId);
  // The acknowledgement's journal record is written before the next step's clock starts.
  await journal.written();
  const c = process.cpuUsage(c0);
  cpuUs.push(c.user + c.system);
}
await journal.close();
await rm(dir, { recursive: true, force: true });

const warm = cpuUs.slice(20);
const warmLatency = latencyMs.slice(20);
const ms = (us: number): string => (us / 1000).toFixed(2);
out(`cores: ${cpus().length}, node ${process.version} ${process.execArgv.join(' ')}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
out(`cold: step 1 ${ms(cpuUs[0]!)} ms CPU, ${latencyMs[0]!.toFixed(2)} ms to result; step 2 ${ms(cpuUs[1]!)} ms CPU; steps 3-10 median ${ms(median(cpuUs.slice(2, 10)))} ms CPU`);
out(`AGENT STEP LOCAL: warm (steps 21-${steps}) median ${ms(median(warm))} ms CPU per step (p90 ${ms(percentile(warm, 90))}), envelope to result sent median ${median(warmLatency).toFixed(2)} ms (p90 ${percentile(warmLatency, 90).toFixed(2)})`);
