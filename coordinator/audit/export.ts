/**
 * The audit log's edges to files and the store: writing an export bundle to a file, verifying a
 * bundle file, and verifying the live store directly (`handrail audit verify --data-dir`). Both
 * verifications stream, so a million-record log is checked in bounded memory with signature
 * checks spread over worker threads. Format: docs/audit-format.md.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Database } from '../store/database.js';
import { auditKeys, auditRecordsInRange, lastAuditSeq, listCheckpoints } from '../store/audit-queries.js';
import { allCertificates } from '../store/agent-queries.js';
import { stepOutputOfMany } from '../store/execution-store.js';
import { BUNDLE_FORMAT, bundleItems, exportBundle, headerCas, parseCheckpointLine, pemToDer, type BundleCas, type BundleCheckpoint, type BundleHeader, type BundleItem, type ExportSelection } from './bundle.js';
import { GENESIS_PREV } from './record.js';
import { verifyItems, type StreamVerifyOptions } from './verify-stream.js';
import type { VerifyReport } from './verify.js';

/** Writes a bundle of the store's records (all, a time range, or one execution) to `path`. */
export async function writeBundleFile(db: Database, caPem: BundleCas, selection: ExportSelection, now: number, path: string): Promise<{ lines: number }> {
  const out = createWriteStream(path, { mode: 0o644 });
  let lines = 0;
  try {
    for await (const line of exportBundle(db, caPem, selection, now)) {
      if (!out.write(line + '\n')) await once(out, 'drain');
      lines++;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return { lines };
}

export async function* fileLines(path: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  yield* rl;
}

/** Verifies a bundle file. Throws BundleFormatError (with the line) for a malformed file. */
export function verifyBundleFile(path: string, opts: StreamVerifyOptions = {}): Promise<VerifyReport> {
  return verifyItems(bundleItems(fileLines(path)), opts);
}

/** Reads checkpoint lines (`handrail audit checkpoint` output) kept outside the coordinator. */
export async function readCheckpointFile(path: string): Promise<BundleCheckpoint[]> {
  const text = await readFile(path, 'utf8');
  const out: BundleCheckpoint[] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '') return;
    try {
      out.push(parseCheckpointLine(l));
    } catch (e) {
      throw new Error(`${path}:${i + 1}: ${(e as Error).message}`, { cause: e });
    }
  });
  return out;
}

const PAGE = 5000;
const RESULT_MARK = Buffer.from('"type":"step.result"');

/**
 * The whole log in the store as bundle items: a header (every audit key, every agent
 * certificate, the given CAs), the records up to the head as it was when reading began, the
 * output of every step result, and the checkpoints stored by then.
 */
export async function* databaseItems(db: Database, caPem: BundleCas, now: number = Date.now()): AsyncGenerator<BundleItem> {
  // Checkpoints before the head (see exportBundle): one past the last record means truncation.
  const cps = await listCheckpoints(db);
  const last = await lastAuditSeq(db);
  const keys = await auditKeys(db);
  const certs = await allCertificates(db);
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    created: new Date(now).toISOString(),
    selection: { from: null, to: null, execution: null },
    first: last > 0 ? { seq: 1, prev: GENESIS_PREV } : null,
    toHead: true,
    ...headerCas(caPem),
    keys: keys.map((k) => ({
      kid: k.key_id,
      alg: 'ed25519',
      spki: pemToDer(k.public_key_pem).toString('base64'),
      created: new Date(k.created_at).toISOString(),
      retired: k.retired_at === null ? null : new Date(k.retired_at).toISOString(),
    })),
    agentCertificates: certs.map((c) => ({ serial: c.serial, agentId: c.agent_id, der: pemToDer(c.certificate_pem).toString('base64') })),
  };
  yield { t: 'header', header };
  const results = new Set<string>();
  for (let from = 1; from <= last; from += PAGE) {
    const rows = await auditRecordsInRange(db, from, Math.min(last, from + PAGE - 1));
    for (const r of rows) {
      if (r.payload.includes(RESULT_MARK)) {
        const id = (JSON.parse(r.payload.toString('utf8')) as { type?: string; data?: { stepRunId?: unknown } }).data?.stepRunId;
        if (typeof id === 'string') results.add(id);
      }
      yield { t: 'record', record: { seq: r.seq, kid: r.key_id, payload: r.payload, sig: r.signature } };
    }
  }
  const ids = [...results];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await stepOutputOfMany(db, chunk);
    for (const o of rows) yield { t: 'output', stepRunId: o.step_run_id, stream: o.stream === 1 ? 'stdout' : 'stderr', data: o.data };
  }
  for (const c of cps) yield { t: 'checkpoint', checkpoint: { kid: c.key_id, payload: c.payload, sig: c.signature } };
}

/** Verifies the store at `dbPath` (opened read-only) against the CA certificates `caPem` (issuing CA first). */
export async function verifyDatabase(dbPath: string, caPem: BundleCas, opts: StreamVerifyOptions = {}): Promise<VerifyReport> {
  const db = await Database.open(dbPath, { readonly: true });
  try {
    return await verifyItems(databaseItems(db, caPem), opts);
  } finally {
    await db.close();
  }
}
