/** `handrail audit export|verify`: signed execution records, exported and verified offline. */
import { createReadStream, createWriteStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openDataDir, STORE_FILE } from '../../coordinator/data-dir.js';
import { Database } from '../../coordinator/store/database.js';
import { BundleFormatError, exportBundle, parseBundleLines, parseCheckpointLine, type BundleCheckpoint } from '../../coordinator/audit/bundle.js';
import { verifyBundle } from '../../coordinator/audit/verify.js';
import { workerVerifier } from '../../coordinator/audit/verify-workers.js';
import type { CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR, JSON_OUTPUT } from '../settings.js';

export const auditExport: CommandSpec = {
  name: 'audit export',
  usage: 'audit export [--from TIME --to TIME | --execution ID] --out FILE',
  summary: 'Write a bundle of audit records with the public keys, CA and agent certificates and outputs they need, to verify offline.',
  options: {
    'data-dir': DATA_DIR,
    'certs-dir': CERTS_DIR,
    from: { type: 'string', placeholder: 'TIME', description: 'first record time (ISO 8601, e.g. 2026-11-01T00:00:00Z)' },
    to: { type: 'string', placeholder: 'TIME', description: 'last record time (ISO 8601)' },
    execution: { type: 'string', placeholder: 'ID', description: 'only the records of one execution' },
    out: { type: 'string', placeholder: 'FILE', description: 'where to write the bundle (JSON Lines)' },
  },
};

function time(p: ParsedCommand, name: string): number | undefined {
  const v = str(p.values, name);
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--${name} "${v}" is not a time: use ISO 8601, e.g. 2026-11-01T00:00:00Z`);
  return t;
}

export async function runAuditExport(p: ParsedCommand, io: CliIo): Promise<number> {
  const outFile = str(p.values, 'out');
  if (!outFile) throw new UsageError('--out FILE is required');
  const fromMs = time(p, 'from');
  const toMs = time(p, 'to');
  const executionId = str(p.values, 'execution');
  if (executionId && (fromMs !== undefined || toMs !== undefined)) throw new UsageError('give either --execution or --from/--to, not both');
  const caPem = await readFile(join(str(p.values, 'certs-dir') as string, 'ca.pem'), 'utf8').catch(() => {
    throw new UsageError(`cannot read ${join(str(p.values, 'certs-dir') as string, 'ca.pem')} (pass --certs-dir)`);
  });
  const dataDir = str(p.values, 'data-dir') as string;
  if (!(await access(join(dataDir, STORE_FILE)).then(() => true, () => false))) throw new UsageError(`no Handrail store in ${dataDir} (pass --data-dir)`);
  const data = await openDataDir(dataDir, io.now);
  let lines = 0;
  try {
    const stream = createWriteStream(outFile, { mode: 0o644 });
    for await (const line of exportBundle(data.db, caPem, { ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}), ...(executionId ? { executionId } : {}) }, io.now())) {
      if (!stream.write(line + '\n')) await once(stream, 'drain');
      lines++;
    }
    stream.end();
    await once(stream, 'finish');
  } finally {
    await data.close();
  }
  io.err(`wrote ${outFile} (${lines} lines)\n`);
  return 0;
}

export const auditVerify: CommandSpec = {
  name: 'audit verify',
  usage: 'audit verify FILE [--checkpoints FILE] | audit verify --db PATH [--certs-dir DIR]',
  summary: 'Verify audit records offline: the hash chain, every coordinator and agent signature, agent certificates against the CA, outputs against signed digests, and checkpoints. Exits 1 naming the first bad record.',
  options: {
    db: { type: 'string', placeholder: 'PATH', description: 'verify the live store (handrail.db, or a data dir) instead of a bundle' },
    'certs-dir': CERTS_DIR,
    checkpoints: { type: 'string', placeholder: 'FILE', description: 'checkpoint lines kept elsewhere (from `handrail audit checkpoint`): detects a shortened log' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

async function* fileLines(path: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const l of rl) yield l;
}

export async function runAuditVerify(p: ParsedCommand, io: CliIo): Promise<number> {
  const file = p.positionals[0];
  const dbPath = str(p.values, 'db');
  if ((file === undefined) === (dbPath === undefined)) throw new UsageError('give a bundle FILE or --db PATH (one of them)');
  const external: BundleCheckpoint[] = [];
  const cpFile = str(p.values, 'checkpoints');
  if (cpFile) {
    const text = await readFile(cpFile, 'utf8').catch(() => {
      throw new UsageError(`cannot read ${cpFile}`);
    });
    text.split('\n').forEach((l, i) => {
      if (l.trim() === '') return;
      try {
        external.push(parseCheckpointLine(l));
      } catch (e) {
        throw new UsageError(`${cpFile}:${i + 1}: ${(e as Error).message}`);
      }
    });
  }
  const started = performance.now();
  let bundle;
  try {
    if (file) {
      bundle = await parseBundleLines(fileLines(file));
    } else {
      const path = (dbPath as string).endsWith('.db') ? (dbPath as string) : join(dbPath as string, STORE_FILE);
      const caPem = await readFile(join(str(p.values, 'certs-dir') as string, 'ca.pem'), 'utf8').catch(() => {
        throw new UsageError(`cannot read the CA certificate in ${str(p.values, 'certs-dir')} (pass --certs-dir)`);
      });
      const db = await Database.open(path, { readonly: true }).catch(() => {
        throw new UsageError(`cannot open ${path}`);
      });
      try {
        bundle = await parseBundleLines(exportBundle(db, caPem, {}, io.now()));
      } finally {
        await db.close();
      }
    }
  } catch (e) {
    if (e instanceof BundleFormatError) {
      io.err(`handrail audit verify: ${file ?? dbPath}: ${e.message}\n`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`cannot read ${file}`);
    throw e;
  }
  const report = await verifyBundle(bundle, { externalCheckpoints: external, verifier: workerVerifier() });
  const secs = (performance.now() - started) / 1000;
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify({ ...report, seconds: Number(secs.toFixed(3)) }) + '\n');
  } else if (report.ok) {
    io.out(`OK: ${report.records} records (seq ${report.firstSeq ?? '-'}..${report.lastSeq ?? '-'}), ${report.stepResults} agent-signed results with their output, ${report.checkpoints} checkpoint(s), keys ${report.keysUsed.join(', ') || '-'} (${secs.toFixed(1)} s)\n`);
  } else {
    io.out(`FAILED at ${report.firstBad?.seq === null ? 'the log as a whole' : `record ${report.firstBad?.seq}`}: ${report.firstBad?.reason}\n`);
  }
  return report.ok ? 0 : 1;
}

