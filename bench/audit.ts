/**
 * Audit benchmark (issue 4): append rate with real Ed25519 signing and SQLite commits, then
 * offline verify rate of an exported N-record bundle (chain, every signature, spread over
 * worker threads). Targets on this machine: ≥ 10,000 appends/s, ≥ 20,000 verified records/s.
 *
 *   node dist/bench/audit.js [--records 1000000] [--batch 500] [--rounds 3]
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { openDataDir } from '../coordinator/data-dir.js';
import { initCa } from '../coordinator/pki/ca.js';
import { AuditEvents, type AuditEventInput } from '../coordinator/audit/events.js';
import { exportBundle, parseBundleLines } from '../coordinator/audit/bundle.js';
import { verifyBundle } from '../coordinator/audit/verify.js';
import { workerVerifier } from '../coordinator/audit/verify-workers.js';
import { median } from './proc-stats.js';
import { readFile } from 'node:fs/promises';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '1000000' }, batch: { type: 'string', default: '500' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.records);
const BATCH = Number(args.batch);
const out = (s: string): void => void process.stdout.write(s + '\n');

/** A record of realistic size: a dispatched step (~600 bytes of payload). */
function event(i: number): AuditEventInput {
  return {
    type: AuditEvents.stepDispatched,
    actor: { kind: 'system', id: 'coordinator' },
    data: {
      executionId: `exe-${Math.floor(i / 1000)}`,
      stepRunId: `sr-${i}`,
      agentId: `agt-${i % 2000}`,
      name: 'restart',
      argv: ['systemctl', 'restart', 'web'],
      script: null,
      env: { HANDRAIL_OPT_REASON: 'rolling restart after deploy 2026-11-23' },
      timeoutMs: 60_000,
      notAfter: new Date().toISOString(),
      requestSha256: 'ab'.repeat(32),
      keyId: 'dispatch-0123456789abcdef',
      signature: 'c2lnbmF0dXJl'.repeat(7),
    },
  };
}

async function main(): Promise<void> {
  out(`# Handrail audit benchmark — ${availableParallelism()} cores, Node ${process.version}, ${N} records, ${BATCH} per transaction`);
  const dir = await mkdtemp(join(tmpdir(), 'hr-audit-'));
  await initCa({ certsDir: join(dir, 'certs') });
  const data = await openDataDir(join(dir, 'data'));
  const rates: number[] = [];
  let done = 0;
  const chunk = Math.max(BATCH, Math.floor(N / 10));
  while (done < N) {
    const n = Math.min(chunk, N - done);
    const t0 = performance.now();
    for (let i = 0; i < n; i += BATCH) {
      const events = Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => event(done + i + k));
      await data.db.write((tx) => data.audit.append(tx, events));
    }
    const rate = (n / (performance.now() - t0)) * 1000;
    rates.push(rate);
    done += n;
  }
  out(`APPEND: median ${median(rates).toFixed(0)} records/s over ${rates.length} chunks of ${chunk} (real Ed25519 signing, hash chain, SQLite commit per ${BATCH}); min ${Math.min(...rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)}`);
  await data.audit.checkpoint();

  const bundle = join(dir, 'bundle.jsonl');
  const caPem = await readFile(join(dir, 'certs', 'ca.pem'), 'utf8');
  let t0 = performance.now();
  const ws = createWriteStream(bundle);
  for await (const line of exportBundle(data.db, caPem, {}, Date.now())) if (!ws.write(line + '\n')) await once(ws, 'drain');
  ws.end();
  await once(ws, 'finish');
  await data.close();
  out(`export: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(bundle)).size / 1024 / 1024).toFixed(0)} MB`);

  const verifyRates: number[] = [];
  for (let r = 0; r < Number(args.rounds); r++) {
    t0 = performance.now();
    const rl = createInterface({ input: createReadStream(bundle, 'utf8'), crlfDelay: Infinity });
    const b = await parseBundleLines(rl);
    const parsed = performance.now();
    const report = await verifyBundle(b, { verifier: workerVerifier() });
    const secs = (performance.now() - t0) / 1000;
    if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report.firstBad)}`);
    verifyRates.push(report.records / secs);
    out(`verify round ${r + 1}: ${report.records} records in ${secs.toFixed(1)} s (${((parsed - t0) / 1000).toFixed(1)} s reading the bundle) = ${(report.records / secs).toFixed(0)} records/s`);
  }
  out(`VERIFY: median ${median(verifyRates).toFixed(0)} records/s over ${verifyRates.length} rounds (read + parse + chain + every Ed25519 signature, ${availableParallelism()} worker threads)`);
  await writeFile(join(dir, 'done'), '');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
