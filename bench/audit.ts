/**
 * Audit benchmark (issue 4): append rate with real Ed25519 signing and SQLite commits, then the
 * offline verify rate of an N-record log — exported to a bundle file and streamed through the
 * verifier (chain, every coordinator signature on worker threads, agent-signed results with
 * their certificates and outputs), and verified straight from the store. Targets on this
 * machine: ≥ 20,000 appends/s (issue 10), ≥ 20,000 verified records/s.
 *
 *   node dist/bench/audit.js [--records 1000000] [--batch 500] [--rounds 3] [--results N] [--threads N]
 *
 * The log mixes the records a busy coordinator writes: per step a `step.dispatched` (~700 bytes)
 * and, for `--results` of them (default 1 %), an agent-signed `step.result` with stored output.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataDir, STORE_FILE } from '../coordinator/data-dir.js';
import { agentCertValidity, initCa, issueAgentCertificate, loadCa, parseCsr } from '../coordinator/pki/ca.js';
import { AuditEvents, auditEvent, type AuditEventInput } from '../coordinator/audit/events.js';
import { verifyBundleFile, verifyDatabase, writeBundleFile } from '../coordinator/audit/export.js';
import type { VerifyReport } from '../coordinator/audit/verify.js';
import { createCsr } from '../core/csr.js';
import { ed25519Backend, ed25519Sign, ed25519Verify, useEd25519Backend } from '../core/ed25519.js';
import { ed25519Choice } from '../cli/settings.js';
import { signPayload } from '../core/envelope.js';
import { STEP_RESULT_TYPE, type StepResult } from '../core/step.js';
import { encodeStepResult } from '../proto/codec/step-codec.js';
import { mb, median } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    results: { type: 'string' },
    threads: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(args.records);
const BATCH = Number(args.batch);
const RESULTS = Math.min(N, args.results !== undefined ? Number(args.results) : Math.floor(N / 100));
const THREADS = args.threads !== undefined ? Number(args.threads) : availableParallelism();
const out = (s: string): void => void process.stdout.write(s + '\n');
const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000)}`;
/** Process CPU (every thread, workers included) since `from`, in µs per record: comparable on a shared machine, where wall time is not. */
const cpuPer = (from: NodeJS.CpuUsage, n: number): string => {
  const u = process.cpuUsage(from);
  return `${((u.user + u.system) / n).toFixed(1)} µs CPU per record (${Math.round((n / (u.user + u.system)) * 1e6)} records per CPU-second)`;
};

/** A dispatched step, as the step dispatcher records it. */
function dispatched(i: number): AuditEventInput {
  return auditEvent(AuditEvents.stepDispatched, { kind: 'system', id: 'coordinator' }, {
    executionId: `exe-${Math.floor(i / 1000)}`,
    stepRunId: `sr-${i}`,
    agentId: `agt-${i % 2000}`,
    name: 'restart',
    argv: ['systemctl', 'restart', 'web'],
    script: null,
    env: { HANDRAIL_OPT_REASON: 'rolling restart after deploy 2026-11-23', HANDRAIL_OPT_TOKEN: '********' },
    timeoutMs: 60_000,
    notAfter: '2026-11-23T05:10:00.000Z',
    requestSha256: createHash('sha256').update(`req-${i}`).digest('hex'),
    keyId: 'dispatch-0123456789abcdef',
    signature: createHash('sha512').update(`sig-${i}`).digest('base64'),
  });
}

interface BenchAgent {
  readonly id: string;
  readonly key: KeyObject;
  readonly serial: string;
}

/** A step result signed by a real agent key (RSA-2048, DSSE PAE), and the output it covers. */
function result(agent: BenchAgent, i: number, now: number): { event: AuditEventInput; stdout: Buffer } {
  const stdout = Buffer.from(`web restarted on host ${i}\n`.repeat(3));
  const r: StepResult = {
    executionId: 'exe-bench',
    stepId: `res-${i}`,
    agentId: agent.id,
    requestSha256: createHash('sha256').update(`req-${i}`).digest(),
    requestNonce: Buffer.alloc(16, 7),
    status: 'succeeded',
    exitCode: 0,
    signal: '',
    startedAtMs: now - 900,
    finishedAtMs: now - 100,
    stdoutSha256: createHash('sha256').update(stdout).digest(),
    stderrSha256: createHash('sha256').digest(),
    stdoutBytes: stdout.length,
    stderrBytes: 0,
    stdoutTruncated: false,
    stderrTruncated: false,
    error: '',
    signerCertificateSerial: agent.serial,
  };
  const payload = encodeStepResult(r);
  const event = auditEvent(AuditEvents.stepResult, { kind: 'agent', id: agent.id }, {
    executionId: r.executionId,
    stepRunId: r.stepId,
    agentId: agent.id,
    status: r.status,
    exitCode: r.exitCode,
    certificateSerial: agent.serial,
    payloadType: STEP_RESULT_TYPE,
    payload: Buffer.from(payload).toString('base64'),
    signature: signPayload(STEP_RESULT_TYPE, payload, agent.key).toString('base64'),
  });
  return { event, stdout };
}

async function main(): Promise<void> {
  useEd25519Backend(ed25519Choice(process.env));
  out(`# Handrail audit benchmark — ${availableParallelism()} cores, Node ${process.version}, ${N} records (${RESULTS} agent-signed results), ${BATCH} per transaction, ${THREADS} verify threads, Ed25519 by ${ed25519Backend()}`);
  const dir = await mkdtemp(join(tmpdir(), 'hr-audit-bench-'));
  const certsDir = join(dir, 'certs');
  await initCa({ certsDir });
  const ca = await loadCa(certsDir);
  const data = await openDataDir(join(dir, 'data'));
  const now = Date.now();

  // One enrolled agent with a real certificate, one execution whose step runs hold the outputs.
  const agentKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const agentId = 'agt-bench';
  const cert = issueAgentCertificate(ca, parseCsr(createCsr(agentKey, agentId)), agentId, agentCertValidity(now - 3_600_000, 86_400_000));
  const agent: BenchAgent = { id: agentId, key: agentKey, serial: cert.serial };
  await data.db.write(async (tx) => {
    await tx.run('INSERT INTO agents (id, name, enrolled_at, cert_serial, cert_not_after) VALUES (?, ?, ?, ?, ?)', [agentId, 'bench', now, cert.serial, cert.notAfter]);
    await tx.run('INSERT INTO agent_certificates (serial, agent_id, fingerprint256, not_before, not_after, certificate_pem, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [cert.serial, agentId, cert.fingerprint256, cert.notBefore, cert.notAfter, cert.pem, now]);
    await tx.run("INSERT INTO executions (id, kind, requested_by, state, created_at) VALUES ('exe-bench', 'adhoc', 'bench', 'succeeded', ?)", [now]);
  });

  // Results are signed up front: RSA signing is the agent's cost, not the coordinator's.
  let t0 = performance.now();
  const resultEvery = RESULTS > 0 ? Math.floor(N / RESULTS) : Infinity;
  const results = new Map<number, { event: AuditEventInput; stdout: Buffer }>();
  for (let k = 0; k < RESULTS; k++) results.set(k * resultEvery + Math.floor(resultEvery / 2), result(agent, k * resultEvery + Math.floor(resultEvery / 2), now));
  out(`setup: ${results.size} agent-signed results in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const chunkRates: number[] = [];
  let done = 0;
  const chunk = Math.max(BATCH, Math.floor(N / 10));
  const appendStart = performance.now();
  const appendCpu = process.cpuUsage();
  while (done < N) {
    const n = Math.min(chunk, N - done);
    t0 = performance.now();
    for (let i = 0; i < n; i += BATCH) {
      const first = done + i;
      const events: AuditEventInput[] = [];
      const outputs: Array<{ id: string; data: Buffer }> = [];
      for (let j = first; j < first + Math.min(BATCH, n - i); j++) {
        const res = results.get(j);
        if (res) {
          events.push(res.event);
          outputs.push({ id: `res-${j}`, data: res.stdout });
        } else {
          events.push(dispatched(j));
        }
      }
      await data.db.write(async (tx) => {
        for (const o of outputs) {
          tx.queueInsert('step_runs', ['id', 'execution_id', 'agent_id', 'step_index', 'name', 'state'], [o.id, 'exe-bench', agentId, 0, 'restart', 'succeeded']);
          tx.queueInsert('step_output', ['step_run_id', 'stream', 'offset', 'data', 'received_at'], [o.id, 1, 0, o.data, now]);
        }
        await data.audit.append(tx, events);
      });
    }
    chunkRates.push((n / (performance.now() - t0)) * 1000);
    done += n;
  }
  const appendMs = performance.now() - appendStart;
  out(`APPEND (bulk): ${rate(N, appendMs)} records/s overall; median ${median(chunkRates).toFixed(0)} over ${chunkRates.length} chunks (min ${Math.min(...chunkRates).toFixed(0)}, max ${Math.max(...chunkRates).toFixed(0)}) — real Ed25519 signing, hash chain, one SQLite commit per ${BATCH}; ${cpuPer(appendCpu, N)}`);

  // The engine's way: many callers each appending one record, grouped per tick by db.batch.
  const single = Math.min(50_000, N);
  t0 = performance.now();
  const singleCpu = process.cpuUsage();
  for (let i = 0; i < single; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, single - i) }, (_, k) => data.db.batch((tx) => data.audit.append(tx, dispatched(N + i + k)))));
  }
  out(`APPEND (one record per caller, ${BATCH} concurrent callers grouped by db.batch): ${rate(single, performance.now() - t0)} records/s over ${single}; ${cpuPer(singleCpu, single)}`);
  await data.audit.checkpoint();
  const total = N + single;

  const bundle = join(dir, 'bundle.jsonl');
  const caPem = await readFile(join(certsDir, 'ca.pem'), 'utf8');
  t0 = performance.now();
  await writeBundleFile(data.db, caPem, {}, Date.now(), bundle);
  out(`export: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${mb((await stat(bundle)).size)}`);
  await data.close();

  const check = (r: VerifyReport): void => {
    if (!r.ok || r.records !== total || r.stepResults !== RESULTS) throw new Error(`verification failed: ${JSON.stringify(r)}`);
  };
  const fileRates: number[] = [];
  for (let round = 1; round <= Number(args.rounds); round++) {
    t0 = performance.now();
    const verifyCpu = process.cpuUsage();
    const r = await verifyBundleFile(bundle, { threads: THREADS });
    const ms = performance.now() - t0;
    check(r);
    fileRates.push((r.records / ms) * 1000);
    out(`verify bundle round ${round}: ${r.records} records (${r.stepResults} results, ${r.outputsChecked} outputs) in ${(ms / 1000).toFixed(1)} s = ${rate(r.records, ms)} records/s; ${cpuPer(verifyCpu, r.records)}`);
  }
  t0 = performance.now();
  const fromDb = await verifyDatabase(join(dir, 'data', STORE_FILE), caPem, { threads: THREADS });
  const dbMs = performance.now() - t0;
  check(fromDb);
  out(`verify store: ${fromDb.records} records in ${(dbMs / 1000).toFixed(1)} s = ${rate(fromDb.records, dbMs)} records/s`);
  // The physical limit: one Ed25519 verification per record, and this many per CPU-second.
  const probe = generateKeyPairSync('ed25519');
  const message = Buffer.from(JSON.stringify(dispatched(0)));
  const sig = ed25519Sign(message, probe.privateKey);
  const probeCpu = process.cpuUsage();
  for (let i = 0; i < 5000; i++) if (!ed25519Verify(message, probe.publicKey, sig)) throw new Error('probe signature did not verify');
  out(`LIMIT: Ed25519 verify of a ${message.length}-byte message by ${ed25519Backend()}: ${cpuPer(probeCpu, 5000).replace('per record', 'each').replace('records per CPU-second', 'per second per core')}`);
  out(`VERIFY: median ${median(fileRates).toFixed(0)} records/s over ${fileRates.length} rounds (read + parse + chain + every Ed25519 signature on ${THREADS} threads + agent results), peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
  if (!args.keep) await rm(dir, { recursive: true, force: true });
  else out(`kept ${dir}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
