/**
 * Audit export bundles (format in docs/audit-format.md): one JSON Lines file holding a header
 * (CA certificate, audit public keys, the agent certificates the records use), the records,
 * the stored output of every step result they contain, and checkpoints. Building a bundle reads
 * the store; parsing one is pure.
 */
import type { Database } from '../store/database.js';
import { auditKeys, auditRecordsBySeqs, auditRecordsInRange, auditSeqRangeByTime, auditSeqsOfExecution, lastAuditSeq, listCheckpoints } from '../store/audit-queries.js';
import { allCertificates } from '../store/agent-queries.js';
import { stepOutputChunks } from '../store/execution-store.js';

export const BUNDLE_FORMAT = 'handrail-audit-bundle/v1';

export interface BundleKey {
  readonly kid: string;
  readonly alg: 'ed25519';
  /** SubjectPublicKeyInfo, DER, base64. */
  readonly spki: string;
  readonly created: string;
  readonly retired: string | null;
}

export interface BundleHeader {
  readonly format: typeof BUNDLE_FORMAT;
  readonly created: string;
  readonly selection: { readonly from: string | null; readonly to: string | null; readonly execution: string | null };
  /** The first record's seq and the hash it chains to (64 zeros for seq 1). */
  readonly first: { readonly seq: number; readonly prev: string } | null;
  /** True when the records run to the head of the log (checkpoints then prove no tail is missing). */
  readonly toHead: boolean;
  /** The coordinator's issuing CA certificate when it exported, DER, base64. */
  readonly ca: string;
  /**
   * Every CA certificate the coordinator has trusted (issuing, next, previous, retired), DER,
   * base64; absent in bundles from before CA roll-over. Not trusted for being listed: see
   * docs/audit-format.md, "Trust".
   */
  readonly cas?: readonly string[];
  readonly keys: readonly BundleKey[];
  readonly agentCertificates: ReadonlyArray<{ readonly serial: string; readonly agentId: string; readonly der: string }>;
}

export interface BundleRecord {
  readonly seq: number;
  readonly kid: string;
  readonly payload: Buffer;
  readonly sig: Buffer;
}

export interface BundleCheckpoint {
  readonly kid: string;
  readonly payload: Buffer;
  readonly sig: Buffer;
}

export interface Bundle {
  readonly header: BundleHeader;
  readonly records: readonly BundleRecord[];
  /** stepRunId → captured output. */
  readonly outputs: ReadonlyMap<string, { stdout: Buffer; stderr: Buffer }>;
  readonly checkpoints: readonly BundleCheckpoint[];
}

export class BundleFormatError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'BundleFormatError';
  }
}

/** The DER bytes of a PEM block. */
export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

export interface ExportSelection {
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly executionId?: string;
}

/**
 * The CA certificates a bundle carries: the issuing CA first (the header's `ca`), then every
 * other CA the coordinator trusted (allCaPems in pki/ca-rollover.ts), each once.
 */
export type BundleCas = string | readonly string[];

export function headerCas(cas: BundleCas): { ca: string; cas: string[] } {
  const list = typeof cas === 'string' ? [cas] : cas;
  const ders = [...new Set(list.map((p) => pemToDer(p).toString('base64')))];
  const first = ders[0];
  if (first === undefined) throw new Error('an audit export needs the CA certificate (certs/ca.pem)');
  return { ca: first, cas: ders };
}

// Years 0000-9999: where toISOString() keeps the fixed format records' `ts` have.
const FIRST_ISO_MS = Date.parse('0000-01-01T00:00:00.000Z');
const LAST_ISO_MS = Date.parse('9999-12-31T23:59:59.999Z');
const isoBound = (ms: number): string => new Date(Math.min(LAST_ISO_MS, Math.max(FIRST_ISO_MS, ms))).toISOString();

/** Streams a bundle's lines from the store (records in seq order). */
export async function* exportBundle(db: Database, caPem: BundleCas, sel: ExportSelection, now: number): AsyncGenerator<string> {
  // Checkpoints before the head: each then covers a record this export holds, so one past the
  // end of the records is evidence of truncation, never one written while exporting.
  const cps = await listCheckpoints(db);
  const lastSeq = await lastAuditSeq(db);
  // Select by seq range: time bounds are found through the records' own timestamps.
  let fromSeq = 1;
  let toSeq = lastSeq;
  if (sel.fromMs !== undefined || sel.toMs !== undefined) {
    const range = await auditSeqRangeByTime(db, { ...(sel.fromMs !== undefined ? { fromIso: isoBound(sel.fromMs) } : {}), ...(sel.toMs !== undefined ? { toIso: isoBound(sel.toMs) } : {}) });
    fromSeq = range?.from ?? lastSeq + 1;
    toSeq = range?.to ?? 0;
  }
  let seqs: number[] | undefined;
  if (sel.executionId !== undefined) {
    seqs = await auditSeqsOfExecution(db, sel.executionId);
  }
  const keys = await auditKeys(db);
  const certRows = await allCertificates(db);
  const used = new Set<string>();
  const outputsWanted = new Set<string>();
  const selected = async function* (): AsyncGenerator<{ seq: number; payload: Buffer; key_id: string; signature: Buffer; hash: string }> {
    if (seqs) {
      for (let i = 0; i < seqs.length; i += 500) {
        const chunk = seqs.slice(i, i + 500);
        const rows = await auditRecordsBySeqs(db, chunk);
        yield* rows;
      }
      return;
    }
    for (let s = fromSeq; s <= toSeq; s += 5000) {
      const rows = await auditRecordsInRange(db, s, Math.min(toSeq, s + 4999));
      yield* rows;
    }
  };
  // First pass: which certificates and outputs the records need (the header comes first).
  let first: { seq: number; prev: string } | null = null;
  for await (const r of selected()) {
    if (!first) first = { seq: r.seq, prev: (JSON.parse(r.payload.toString('utf8')) as { prev: string }).prev };
    const text = r.payload.toString('utf8');
    if (text.includes('"type":"step.result"')) {
      const data = (JSON.parse(text) as { data: { certificateSerial: string; stepRunId: string } }).data;
      used.add(data.certificateSerial);
      outputsWanted.add(data.stepRunId);
    }
  }
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    created: new Date(now).toISOString(),
    selection: {
      from: sel.fromMs === undefined ? null : new Date(sel.fromMs).toISOString(),
      to: sel.toMs === undefined ? null : new Date(sel.toMs).toISOString(),
      execution: sel.executionId ?? null,
    },
    first,
    toHead: !seqs && toSeq === lastSeq,
    ...headerCas(caPem),
    keys: keys.map((k) => ({
      kid: k.key_id,
      alg: 'ed25519',
      spki: pemToDer(k.public_key_pem).toString('base64'),
      created: new Date(k.created_at).toISOString(),
      retired: k.retired_at === null ? null : new Date(k.retired_at).toISOString(),
    })),
    agentCertificates: certRows.filter((c) => used.has(c.serial)).map((c) => ({ serial: c.serial, agentId: c.agent_id, der: pemToDer(c.certificate_pem).toString('base64') })),
  };
  yield JSON.stringify(header);
  for await (const r of selected()) {
    yield JSON.stringify({ t: 'record', seq: r.seq, kid: r.key_id, payload: r.payload.toString('base64'), sig: r.signature.toString('base64') });
  }
  for (const id of outputsWanted) {
    for (const stream of [1, 2] as const) {
      const data = Buffer.concat(await stepOutputChunks(db, id, stream));
      if (data.length > 0) yield JSON.stringify({ t: 'output', stepRunId: id, stream: stream === 1 ? 'stdout' : 'stderr', data: data.toString('base64') });
    }
  }
  // Only the checkpoints a verifier can check against these records: of a selected record, or of
  // the record a range links to. Others would prove nothing about this bundle.
  const selectedSeqs = seqs ? new Set(seqs) : undefined;
  const checkable = (n: number): boolean => (selectedSeqs ? selectedSeqs.has(n) : n >= fromSeq - 1 && n <= toSeq);
  for (const c of cps) {
    if (checkable(c.seq)) yield JSON.stringify({ t: 'checkpoint', kid: c.key_id, payload: c.payload.toString('base64'), sig: c.signature.toString('base64') });
  }
}

/**
 * Strict base64: Node's decoder skips characters outside the alphabet, so the decoded bytes must
 * encode back to exactly the text (canonical padding, as the exporter writes it). Cheaper than a
 * regular expression over every record's payload.
 */
function b64(v: unknown, line: number, what: string): Buffer {
  if (typeof v !== 'string') throw new BundleFormatError(line, `${what} is not base64`);
  const bytes = Buffer.from(v, 'base64');
  if (bytes.toString('base64') !== v) throw new BundleFormatError(line, `${what} is not base64`);
  return bytes;
}

/** One line of a bundle, parsed. */
export type BundleItem =
  | { readonly t: 'header'; readonly header: BundleHeader }
  | { readonly t: 'record'; readonly record: BundleRecord }
  | { readonly t: 'output'; readonly stepRunId: string; readonly stream: 'stdout' | 'stderr'; readonly data: Buffer }
  | { readonly t: 'checkpoint'; readonly checkpoint: BundleCheckpoint };

const isString = (v: unknown): v is string => typeof v === 'string';
const isNullableString = (v: unknown): boolean => v === null || typeof v === 'string';

/** Checks the header's shape, so the verifier never meets a missing member. */
function parseHeader(v: Record<string, unknown>, n: number): BundleHeader {
  if (v['format'] !== BUNDLE_FORMAT) throw new BundleFormatError(n, `not a ${BUNDLE_FORMAT} file (the first line must be its header)`);
  const sel = v['selection'] as Record<string, unknown> | null | undefined;
  if (typeof sel !== 'object' || sel === null || !isNullableString(sel['from']) || !isNullableString(sel['to']) || !isNullableString(sel['execution'])) {
    throw new BundleFormatError(n, 'header needs selection {from, to, execution}');
  }
  const first = v['first'] as Record<string, unknown> | null | undefined;
  if (first !== null && (typeof first !== 'object' || typeof first['seq'] !== 'number' || !isString(first['prev']))) throw new BundleFormatError(n, 'header needs first {seq, prev} or null');
  if (typeof v['toHead'] !== 'boolean' || !isString(v['ca'])) throw new BundleFormatError(n, 'header needs toHead and ca');
  if (v['cas'] !== undefined && (!Array.isArray(v['cas']) || !v['cas'].every(isString))) throw new BundleFormatError(n, 'header cas must be a list of base64 certificates');
  const keys = v['keys'];
  if (!Array.isArray(keys) || !keys.every((k: Record<string, unknown>) => isString(k['kid']) && isString(k['spki']))) throw new BundleFormatError(n, 'header needs keys [{kid, spki}]');
  const certs = v['agentCertificates'];
  if (!Array.isArray(certs) || !certs.every((c: Record<string, unknown>) => isString(c['serial']) && isString(c['agentId']) && isString(c['der']))) {
    throw new BundleFormatError(n, 'header needs agentCertificates [{serial, agentId, der}]');
  }
  return v as unknown as BundleHeader;
}

/** Parses line `n` (1-based; line 1 is the header). Blank lines give undefined. */
export function parseBundleLine(raw: string, n: number): BundleItem | undefined {
  if (raw.trim() === '') return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new BundleFormatError(n, 'not JSON');
  }
  if (typeof v !== 'object' || v === null) throw new BundleFormatError(n, 'not a JSON object');
  if (n === 1) return { t: 'header', header: parseHeader(v, n) };
  switch (v['t']) {
    case 'record':
      if (typeof v['seq'] !== 'number' || !Number.isSafeInteger(v['seq']) || typeof v['kid'] !== 'string') throw new BundleFormatError(n, 'record needs seq and kid');
      return { t: 'record', record: { seq: v['seq'], kid: v['kid'], payload: b64(v['payload'], n, 'payload'), sig: b64(v['sig'], n, 'sig') } };
    case 'output': {
      const id = v['stepRunId'];
      const stream = v['stream'];
      if (typeof id !== 'string' || (stream !== 'stdout' && stream !== 'stderr')) throw new BundleFormatError(n, 'output needs stepRunId and stream');
      return { t: 'output', stepRunId: id, stream, data: b64(v['data'], n, 'data') };
    }
    case 'checkpoint':
      if (typeof v['kid'] !== 'string') throw new BundleFormatError(n, 'checkpoint needs kid');
      return { t: 'checkpoint', checkpoint: { kid: v['kid'], payload: b64(v['payload'], n, 'payload'), sig: b64(v['sig'], n, 'sig') } };
    default:
      throw new BundleFormatError(n, `unknown line type ${JSON.stringify(v['t'])}`);
  }
}

/** A bundle's lines as items (large bundles are streamed from disk). */
export async function* bundleItems(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<BundleItem> {
  let n = 0;
  let any = false;
  for await (const l of lines) {
    const item = parseBundleLine(l, ++n);
    if (item) {
      any = true;
      yield item;
    } else if (n === 1) {
      throw new BundleFormatError(1, 'the first line must be the header');
    }
  }
  if (!any) throw new BundleFormatError(1, 'empty file');
}

/** Parses a bundle's text into memory. Structural problems throw BundleFormatError naming the line. */
export function parseBundle(text: string): Promise<Bundle> {
  return parseBundleLines(text.split('\n'));
}

/** Parses a whole bundle into memory. */
export async function parseBundleLines(lines: AsyncIterable<string> | Iterable<string>): Promise<Bundle> {
  let header: BundleHeader | undefined;
  const records: BundleRecord[] = [];
  const outputs = new Map<string, { stdout: Buffer; stderr: Buffer }>();
  const checkpoints: BundleCheckpoint[] = [];
  for await (const item of bundleItems(lines)) {
    switch (item.t) {
      case 'header':
        header = item.header;
        break;
      case 'record':
        records.push(item.record);
        break;
      case 'output': {
        const o = outputs.get(item.stepRunId) ?? { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
        o[item.stream] = Buffer.concat([o[item.stream], item.data]);
        outputs.set(item.stepRunId, o);
        break;
      }
      case 'checkpoint':
        checkpoints.push(item.checkpoint);
        break;
    }
  }
  if (!header) throw new BundleFormatError(1, 'empty file');
  return { header, records, outputs, checkpoints };
}

/** A checkpoint line as `handrail audit checkpoint` prints it (external copies). */
export function parseCheckpointLine(line: string): BundleCheckpoint {
  const v = JSON.parse(line) as { checkpoint?: string; kid?: string; sig?: string };
  if (typeof v.checkpoint !== 'string' || typeof v.kid !== 'string' || typeof v.sig !== 'string') throw new Error('not a checkpoint line (expected {"checkpoint","kid","sig"})');
  return { kid: v.kid, payload: Buffer.from(v.checkpoint, 'base64'), sig: Buffer.from(v.sig, 'base64') };
}
