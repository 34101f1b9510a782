/** `handrail audit export|verify`: signed execution records, exported and verified offline. */
import { constants, createWriteStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { BundleFormatError, exportBundle, parseCheckpointLine, type BundleCheckpoint } from '../../coordinator/audit/bundle.js';
import type { VerifyExpectation, VerifyOptions, VerifyReport } from '../../coordinator/audit/verify.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR, JSON_OUTPUT } from '../settings.js';
// Heavier modules (node-forge, SQLite, YAML, codecs) load with `await import` in the functions
// that use them, not with this module: `handrail --help` loads every command's module.

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
  const { openDataDir, STORE_FILE } = await import('../../coordinator/data-dir.js');
  const { formatRange } = await import('../../coordinator/audit/verify.js');
  const outFile = str(p.values, 'out');
  if (!outFile) throw new UsageError('--out FILE is required');
  const fromMs = time(p, 'from');
  const toMs = time(p, 'to');
  const executionId = str(p.values, 'execution');
  if (executionId && (fromMs !== undefined || toMs !== undefined)) throw new UsageError('give either --execution or --from/--to, not both');
  const caPem = await caCertificates(str(p.values, 'certs-dir') as string);
  const dataDir = str(p.values, 'data-dir') as string;
  if (!(await access(join(dataDir, STORE_FILE)).then(() => true, () => false))) throw new UsageError(`no Handrail store in ${dataDir} (pass --data-dir)`);
  const data = await openDataDir(dataDir, io.now);
  let lines = 0;
  let toHead = true;
  let first: number | undefined;
  let last: number | undefined;
  try {
    const stream = createWriteStream(outFile, { mode: 0o644 });
    for await (const line of exportBundle(data.db, caPem, { ...(fromMs !== undefined ? { fromMs } : {}), ...(toMs !== undefined ? { toMs } : {}), ...(executionId ? { executionId } : {}) }, io.now())) {
      if (!stream.write(line + '\n')) await once(stream, 'drain');
      if (lines === 0) toHead = (JSON.parse(line) as { toHead: boolean }).toHead;
      const seq = RECORD_SEQ.exec(line)?.[1];
      if (seq !== undefined) {
        first ??= Number(seq);
        last = Number(seq);
      }
      lines++;
    }
    stream.end();
    await once(stream, 'finish');
  } finally {
    await data.close();
  }
  const held = first === undefined ? 'no records' : `records ${first}..${last ?? first}`;
  io.err(`wrote ${outFile} (${lines} lines, ${held})\n`);
  // A partial bundle verifies only as what it is: say how, since its header is not trusted.
  if (executionId) io.err(`verify it with: handrail audit verify ${outFile} --execution ${executionId}\n`);
  else if (first !== undefined && (first !== 1 || !toHead)) io.err(`verify it with: handrail audit verify ${outFile} --range ${formatRange(first, toHead ? null : (last ?? first))}\n`);
  return 0;
}

const RECORD_SEQ = /^\{"t":"record","seq":(\d+),/;

export const auditVerify: CommandSpec = {
  name: 'audit verify',
  usage: 'audit verify FILE [--range FROM..TO | --execution ID] [--checkpoints FILE] [--trust-key KEYID]… [--trust-ca-fingerprint SHA256]… [--trust-file FILE] | audit verify [--data-dir DIR] [--certs-dir DIR]',
  summary:
    'Verify audit records offline: the hash chain, every coordinator and agent signature, agent certificates against the CA, outputs against signed digests, and checkpoints. ' +
    'A bundle must hold the whole log unless --range or --execution says otherwise (its header is not signed, so its own word is not taken). ' +
    'Audit keys are trusted only when pinned (--trust-key, --trust-file) or introduced by a key.rotated record signed with a trusted key; with no pin, the first record\'s key is trusted on first use, and the report says so. ' +
    'Likewise CAs (a bundle carries every CA of a CA roll-over): pinned (--trust-ca-fingerprint, --trust-file), introduced by a signed ca.rotation_planned or ca.switched record, or, with none pinned, the first CA the log uses. ' +
    'Exits 1 naming the first bad record.',
  options: {
    'data-dir': { ...DATA_DIR, description: 'verify the live store in this data dir (when no bundle FILE is given)' },
    db: { type: 'string', placeholder: 'PATH', description: 'deprecated: use --data-dir (a data dir, or its handrail.db)' },
    'certs-dir': { ...CERTS_DIR, description: 'where the CA certificates (ca.pem and those of CA roll-overs) are, for --data-dir' },
    range: { type: 'string', placeholder: 'FROM..TO', description: 'the bundle holds records FROM..TO only (FROM.. = from FROM to the head of the log); a checkpoint past TO is reported, not failed' },
    execution: { type: 'string', placeholder: 'ID', description: 'the bundle holds the records of execution ID only (`audit export --execution ID`)' },
    checkpoints: { type: 'string', placeholder: 'FILE', description: 'checkpoint lines kept elsewhere (from `handrail audit checkpoint`): detects a shortened or rewritten log' },
    'trust-key': { type: 'string', multiple: true, env: 'HANDRAIL_AUDIT_TRUST_KEYS', configKey: 'auditTrustKeys', placeholder: 'KEYID', description: 'trust this audit key id from the first record (repeatable); other keys only through key.rotated records signed with a trusted key' },
    'trust-ca-fingerprint': {
      type: 'string',
      multiple: true,
      env: 'HANDRAIL_AUDIT_TRUST_CA',
      configKey: 'auditTrustCaFingerprint',
      placeholder: 'SHA256',
      description: 'a CA certificate\'s SHA-256 fingerprint (`openssl x509 -noout -fingerprint -sha256 -in ca.pem`), repeatable; other CAs only through ca.rotation_planned/ca.switched records signed with a trusted audit key',
    },
    'trust-file': { type: 'string', env: 'HANDRAIL_AUDIT_TRUST_FILE', configKey: 'auditTrustFile', placeholder: 'FILE', description: 'trust anchors, one per line: audit key ids and CA fingerprints (# comments)' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

/** What the bundle must hold: the whole log unless the user says it is partial. */
async function expectation(p: ParsedCommand): Promise<VerifyExpectation> {
  const { FULL_LOG, parseRange } = await import('../../coordinator/audit/verify.js');
  const rangeText = str(p.values, 'range');
  const execution = str(p.values, 'execution');
  if (rangeText !== undefined && execution !== undefined) throw new UsageError('give either --range or --execution, not both');
  if (execution !== undefined) {
    if (execution.trim() === '') throw new UsageError('--execution needs an execution id');
    return { kind: 'execution', executionId: execution };
  }
  if (rangeText === undefined) return FULL_LOG;
  const range = parseRange(rangeText);
  if (!range) throw new UsageError(`--range "${rangeText}" is not a range of record numbers: use FROM..TO (e.g. 1..300) or FROM.. (to the head of the log)`);
  return range;
}

/** Pinned audit key ids and CA fingerprint, from the flags and a trust file. */
async function trustAnchors(p: ParsedCommand): Promise<NonNullable<VerifyOptions['trust']>> {
  const { parseTrustAnchors } = await import('../../coordinator/audit/trust-anchors.js');
  const { isAuditKeyId, normalizeFingerprint } = await import('../../coordinator/audit/verify.js');
  const keyIds = list(p.values, 'trust-key');
  for (const k of keyIds) if (!isAuditKeyId(k)) throw new UsageError(`--trust-key "${k}" is not an audit key id (audit- and 16 hex digits, as \`audit verify\` prints it)`);
  const cas: string[] = [];
  for (const caFlag of list(p.values, 'trust-ca-fingerprint')) {
    const fp = normalizeFingerprint(caFlag);
    if (!fp) throw new UsageError(`--trust-ca-fingerprint "${caFlag}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`);
    cas.push(fp);
  }
  const file = str(p.values, 'trust-file');
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read the trust file ${file} (--trust-file): ${why(e)}`, 'give the file of pinned key ids and CA fingerprints you keep apart from the coordinator');
    });
    const { anchors, problems } = parseTrustAnchors(text);
    const first = problems[0];
    if (first) throw new UsageError(`${file}:${first.line}: ${first.message}`);
    keyIds.push(...anchors.keyIds);
    cas.push(...anchors.caFingerprints);
  }
  const ca = [...new Set(cas)];
  return { ...(keyIds.length > 0 ? { keyIds: [...new Set(keyIds)] } : {}), ...(ca.length > 0 ? { caFingerprints256: ca } : {}) };
}

async function externalCheckpoints(p: ParsedCommand): Promise<BundleCheckpoint[]> {
  const cpFile = str(p.values, 'checkpoints');
  if (!cpFile) return [];
  const text = await readFile(cpFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the checkpoints file ${cpFile} (--checkpoints): ${why(e)}`, 'give the audit.checkpoint lines you shipped from the coordinator log');
  });
  const out: BundleCheckpoint[] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '') return;
    try {
      out.push(parseCheckpointLine(l));
    } catch (e) {
      throw new UsageError(`${cpFile}:${i + 1}: ${(e as Error).message}`);
    }
  });
  return out;
}

export async function runAuditVerify(p: ParsedCommand, io: CliIo): Promise<number> {
  const { STORE_FILE } = await import('../../coordinator/data-dir.js');
  const { verifyBundleFile, verifyDatabase } = await import('../../coordinator/audit/export.js');
  const { reportLines } = await import('./audit-report.js');
  const file = p.positionals[0];
  if (p.positionals.length > 1) throw new UsageError(`one bundle FILE at a time (got ${p.positionals.length})`);
  const dbFlag = str(p.values, 'db');
  if (file !== undefined && dbFlag !== undefined) throw new UsageError('give a bundle FILE or --data-dir DIR, not both');
  if (dbFlag !== undefined) io.err('handrail audit verify: --db is deprecated; use --data-dir DIR\n');
  const expect = await expectation(p);
  if (file === undefined && expect.kind !== 'full') throw new UsageError('--range and --execution apply to a bundle FILE: a store always holds the whole log');
  const options = { expect, trust: await trustAnchors(p), externalCheckpoints: await externalCheckpoints(p) };
  const started = performance.now();
  let report: VerifyReport;
  try {
    if (file !== undefined) {
      report = await verifyBundleFile(file, options);
    } else {
      const dataDir = dbFlag ?? (str(p.values, 'data-dir') as string);
      const path = dataDir.endsWith('.db') ? dataDir : join(dataDir, STORE_FILE);
      if (!(await access(path).then(() => true, () => false))) throw new UsageError(`no Handrail store at ${path} (pass --data-dir DIR, or a bundle FILE)`);
      const certsDir = str(p.values, 'certs-dir') as string;
      report = await verifyDatabase(path, await caCertificates(certsDir), options);
    }
  } catch (e) {
    if (e instanceof BundleFormatError) {
      io.err(`handrail audit verify: ${file ?? ''}: ${e.message}\n`);
      return 1;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') {
      throw new UsageError(`cannot read the audit bundle ${file ?? ''}: ${why(e as NodeJS.ErrnoException)}`, 'give a file written by `handrail audit export --out FILE`, or verify the store itself with `handrail audit verify --data-dir DIR`');
    }
    throw e;
  }
  const secs = (performance.now() - started) / 1000;
  if (bool(p.values, 'json')) io.out(JSON.stringify({ ...report, seconds: Number(secs.toFixed(3)) }) + '\n');
  else io.out(reportLines(report, secs, { externalCheckpoints: options.externalCheckpoints.length > 0 }).join('\n') + '\n');
  return report.ok ? 0 : 1;
}

/**
 * The CA certificates a bundle carries: ca.pem (the issuing CA) first, then every CA of a
 * roll-over (ca-next.pem, ca-previous.pem, ca-retired-*.pem). The verifier trusts them only
 * when pinned or introduced by signed roll-over records.
 */
async function caCertificates(certsDir: string): Promise<string[]> {
  const { allCaPems } = await import('../../coordinator/pki/ca-rollover.js');
  await access(join(certsDir, 'ca.pem'), constants.R_OK).catch(() => {
    throw new UsageError(`cannot read the CA certificate ${join(certsDir, 'ca.pem')} (pass --certs-dir)`);
  });
  // ca.pem first, then the CAs of any roll-over.
  return allCaPems(certsDir);
}

/** Why a file could not be read, in words. */
function why(e: NodeJS.ErrnoException): string {
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
}
