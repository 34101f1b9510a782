/**
 * Offline verification of audit records (docs/audit-format.md), as a pure, incremental checker:
 * feed it the bundle header, then records in order (each with the verdict on its coordinator
 * signature, computed wherever the caller likes: in this thread or on worker threads, see
 * verify-workers.ts), then outputs and checkpoints, and ask for the report. It checks, record by
 * record: sequence, hash chain, the coordinator's Ed25519 signature with the key the record
 * names, and for each agent result: the agent's signature against its certificate, that
 * certificate chaining to the CA and naming the agent, its validity when the result was signed,
 * and the stored output against the digests the agent signed. Checkpoints (in the bundle or kept
 * elsewhere) expose a log cut short or rewritten. The report names the first bad record and what
 * is wrong with it. No store, no files, no network.
 */
import { createHash, createPublicKey, X509Certificate, type Hash, type KeyObject } from 'node:crypto';
import { ed25519Verify } from '../../core/ed25519.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';
import { verifyPayload } from '../../core/envelope.js';
import { STEP_RESULT_TYPE } from '../../core/step.js';
import { normalizeSerial } from '../../core/x509-serial.js';
import type { Bundle, BundleCheckpoint, BundleHeader, BundleKey, BundleRecord } from './bundle.js';
import { GENESIS_PREV } from './record.js';

export interface SignatureItem {
  readonly kid: string;
  readonly payload: Uint8Array;
  readonly sig: Uint8Array;
}

/** Verifies many Ed25519 signatures (in this thread, or spread over worker threads). */
export type SignatureBatchVerifier = (keys: ReadonlyMap<string, string>, items: readonly SignatureItem[]) => Promise<boolean[]>;

/** Parses base64 SubjectPublicKeyInfo DER keys by kid. */
export function publicKeyObjects(keys: ReadonlyMap<string, string>): Map<string, KeyObject> {
  const objs = new Map<string, KeyObject>();
  for (const [kid, spki] of keys) {
    try {
      objs.set(kid, createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' }));
    } catch {
      // An unparsable key verifies nothing: its records fail as signed with an unusable key.
    }
  }
  return objs;
}

export function verifySignature(key: KeyObject | undefined, item: SignatureItem): boolean {
  if (!key) return false;
  try {
    return ed25519Verify(item.payload, key, item.sig);
  } catch {
    return false;
  }
}

export const verifyInThread: SignatureBatchVerifier = async (keys, items) => {
  const objs = publicKeyObjects(keys);
  return items.map((it) => verifySignature(objs.get(it.kid), it));
};

/**
 * What the records can prove, from the header's selection: `full` — the whole log from seq 1,
 * nothing missing or reordered; `range` — a contiguous run (`--from/--to`): nothing missing
 * inside it, nothing said about records outside it; `selection` — one execution's records
 * (`--execution`): each record is authentic and links are checked between adjacent seqs only.
 * The header is not signed, so a report must always say which of these it proves.
 */
export type VerifyScope = 'full' | 'range' | 'selection';

export interface VerifyReport {
  readonly ok: boolean;
  readonly scope: VerifyScope;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly stepResults: number;
  readonly outputsChecked: number;
  readonly checkpoints: number;
  readonly keysUsed: readonly string[];
  /** SHA-256 fingerprint of the CA certificate agent certificates were checked against (AA:BB:…). */
  readonly caFingerprint256: string | null;
  /** The first bad record (seq null: a problem not tied to one record, e.g. a missing tail). */
  readonly firstBad?: { readonly seq: number | null; readonly reason: string };
}

export interface VerifyOptions {
  /**
   * Trust anchors kept outside the bundle. Without them a bundle proves only that it is
   * consistent with the keys and CA it carries; with them, that those are the real ones.
   */
  readonly trust?: {
    /** Audit key ids (`audit-…`, a digest of the key) the records may be signed with. */
    readonly keyIds?: readonly string[];
    /** The CA certificate's SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it. */
    readonly caFingerprint256?: string;
  };
}

interface RecordBody {
  v?: unknown;
  seq?: unknown;
  prev?: unknown;
  kid?: unknown;
  type?: unknown;
  data?: unknown;
}

interface ResultData {
  executionId?: unknown;
  stepRunId?: unknown;
  agentId?: unknown;
  status?: unknown;
  exitCode?: unknown;
  certificateSerial?: unknown;
  payloadType?: unknown;
  payload?: unknown;
  signature?: unknown;
}

interface AgentCert {
  readonly cert: X509Certificate;
  readonly agentId: string;
  readonly serial: string;
  readonly cn: string | undefined;
  readonly chainOk: boolean;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** What the agent signed about one stream, checked against the stored output at the end. */
interface OutputClaim {
  readonly seq: number;
  readonly stepRunId: string;
  readonly digests: { readonly stdout: Buffer; readonly stderr: Buffer };
  readonly bytes: { readonly stdout: number; readonly stderr: number };
}

interface Failure {
  readonly seq: number | null;
  readonly reason: string;
}

/** Record hashes by seq, 32 bytes each in 64 Ki-record pages (a million records: 32 MB). */
class HashIndex {
  private static readonly PAGE = 65_536;
  private readonly pages = new Map<number, { hashes: Buffer; present: Uint8Array }>();

  set(seq: number, hash: Buffer): void {
    const p = Math.floor(seq / HashIndex.PAGE);
    let page = this.pages.get(p);
    if (!page) {
      page = { hashes: Buffer.alloc(32 * HashIndex.PAGE), present: new Uint8Array(HashIndex.PAGE) };
      this.pages.set(p, page);
    }
    const i = seq % HashIndex.PAGE;
    hash.copy(page.hashes, i * 32);
    page.present[i] = 1;
  }

  get(seq: number): string | undefined {
    const page = this.pages.get(Math.floor(seq / HashIndex.PAGE));
    const i = seq % HashIndex.PAGE;
    if (!page || page.present[i] !== 1) return undefined;
    return page.hashes.toString('hex', i * 32, i * 32 + 32);
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const short = (h: unknown): string => (typeof h === 'string' ? `${h.slice(0, 16)}…` : JSON.stringify(h));

/** The key id a key must carry: purpose `audit-` and 16 hex digits of SHA-256 over its SPKI DER. */
export function auditKeyIdFor(spkiDer: Uint8Array): string {
  return `audit-${createHash('sha256').update(spkiDer).digest('hex').slice(0, 16)}`;
}

export function scopeOf(header: BundleHeader): VerifyScope {
  if (header.selection.execution !== null) return 'selection';
  if (header.selection.from !== null || header.selection.to !== null) return 'range';
  return 'full';
}

/**
 * The incremental checker. Call `record()` for every record in file order, then `output()` and
 * `checkpoint()` in any order, then `report()`. Once a record has failed, later records are only
 * counted (`settled` tells the caller it may stop computing signature verdicts).
 */
export class AuditVerifier {
  readonly scope: VerifyScope;
  private readonly keys = new Set<string>();
  private readonly certs = new Map<string, AgentCert>();
  private readonly ca: X509Certificate | undefined;
  private setupFailure: Failure | undefined;
  private recordFailure: Failure | undefined;
  private readonly hashes = new HashIndex();
  private readonly claims: OutputClaim[] = [];
  private readonly outputs = new Map<string, { stdout: Hash; stderr: Hash; stdoutBytes: number; stderrBytes: number }>();
  private readonly checkpointsSeen: Array<{ cp: BundleCheckpoint; sigOk: boolean; external: boolean }> = [];
  private readonly used = new Set<string>();
  private readonly trustedKeys: ReadonlySet<string> | undefined;
  private count = 0;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private expectedSeq: number;
  private prevHash: string;
  private stepResults = 0;

  constructor(
    private readonly header: BundleHeader,
    options: VerifyOptions = {},
  ) {
    this.scope = scopeOf(header);
    this.expectedSeq = this.scope === 'full' ? 1 : (header.first?.seq ?? 1);
    this.prevHash = this.scope === 'full' ? GENESIS_PREV : (header.first?.prev ?? GENESIS_PREV);
    this.trustedKeys = options.trust?.keyIds ? new Set(options.trust.keyIds) : undefined;
    for (const k of header.keys) this.addKey(k);
    try {
      this.ca = new X509Certificate(Buffer.from(header.ca, 'base64'));
    } catch {
      this.setupFailure ??= { seq: null, reason: "the bundle's CA certificate does not parse" };
      return;
    }
    const pinned = options.trust?.caFingerprint256;
    if (pinned !== undefined && pinned.replace(/:/g, '').toUpperCase() !== this.ca.fingerprint256.replace(/:/g, '')) {
      this.setupFailure ??= { seq: null, reason: `the bundle's CA certificate (${this.ca.fingerprint256}) is not the trusted CA (${pinned})` };
    }
    for (const c of header.agentCertificates) this.addCert(c);
  }

  private addKey(k: BundleKey): void {
    // A key id is a digest of the key: a swapped key cannot keep the id records name.
    if (auditKeyIdFor(Buffer.from(k.spki, 'base64')) !== k.kid) {
      this.setupFailure ??= { seq: null, reason: `the bundle's key ${k.kid} is not the key that id names (its SHA-256 differs)` };
      return;
    }
    this.keys.add(k.kid);
  }

  private addCert(c: BundleHeader['agentCertificates'][number]): void {
    if (!this.ca) return;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(c.der, 'base64'));
    } catch {
      // Left out: a result naming it fails as "not in the bundle".
      return;
    }
    const serial = normalizeSerial(cert.serialNumber);
    // A certificate is filed under the serial it really has, whatever the header line claims.
    this.certs.set(serial, {
      cert,
      agentId: c.agentId,
      serial,
      cn: /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1],
      chainOk: cert.checkIssued(this.ca) && cert.verify(this.ca.publicKey),
      notBefore: Date.parse(cert.validFrom),
      notAfter: Date.parse(cert.validTo),
    });
  }

  /** True once the verdict is fixed: later records need no signature verdicts. */
  get settled(): boolean {
    return this.recordFailure !== undefined || this.setupFailure !== undefined;
  }

  /** One record, in file order, with the verdict on its coordinator signature. */
  record(r: BundleRecord, signatureOk: boolean): void {
    this.count++;
    this.firstSeq ??= r.seq;
    const last = this.lastSeq;
    this.lastSeq = r.seq;
    if (this.settled) return;
    const failure = this.check(r, signatureOk, last);
    if (failure) this.recordFailure = failure;
  }

  private check(r: BundleRecord, signatureOk: boolean, last: number | null): Failure | undefined {
    const fail = (reason: string): Failure => ({ seq: r.seq, reason });
    if (this.scope === 'selection') {
      if (last !== null && r.seq <= last) return fail(`record ${r.seq} is out of order (it follows ${last})`);
    } else if (r.seq !== this.expectedSeq) {
      const e = this.expectedSeq;
      return fail(r.seq > e ? `expected record ${e} next, found ${r.seq}: record${r.seq - e > 1 ? `s ${e}-${r.seq - 1} are` : ` ${e} is`} missing` : `record ${r.seq} is out of order (expected ${e})`);
    }
    // Bytes first: a changed byte anywhere is a bad signature, whatever else it breaks.
    if (!this.keys.has(r.kid)) return fail(`signed with an unknown key ${r.kid}`);
    if (this.trustedKeys && !this.trustedKeys.has(r.kid)) return fail(`signed with key ${r.kid}, which is not among the trusted keys`);
    if (!signatureOk) return fail(`coordinator signature does not verify with key ${r.kid}`);
    let body: RecordBody;
    try {
      body = JSON.parse(Buffer.from(r.payload).toString('utf8')) as RecordBody;
    } catch {
      return fail('the signed payload is not JSON');
    }
    if (body.v !== 1) return fail(`unsupported record version ${JSON.stringify(body.v)}`);
    if (body.seq !== r.seq) return fail(`the signed payload says seq ${JSON.stringify(body.seq)}, the line says ${r.seq} (moved?)`);
    if (body.kid !== r.kid) return fail(`the signed payload names key ${JSON.stringify(body.kid)}, the line names ${r.kid}`);
    const linked = this.scope !== 'selection' || (last !== null && r.seq === last + 1);
    if (linked && body.prev !== this.prevHash) {
      return fail(`hash chain broken: prev is ${short(body.prev)}, the previous record hashes to ${short(this.prevHash)}`);
    }
    if (body.type === 'step.result') {
      this.stepResults++;
      const problem = this.checkResult(r.seq, (body.data ?? {}) as ResultData);
      if (problem) return fail(problem);
    }
    const hash = createHash('sha256').update(r.payload).digest();
    this.hashes.set(r.seq, hash);
    this.prevHash = hash.toString('hex');
    this.expectedSeq = r.seq + 1;
    this.used.add(r.kid);
    return undefined;
  }

  private checkResult(seq: number, d: ResultData): string | undefined {
    if (typeof d.payload !== 'string' || typeof d.signature !== 'string' || typeof d.certificateSerial !== 'string' || typeof d.agentId !== 'string') {
      return 'step result record lacks the agent-signed payload, signature or certificate serial';
    }
    if (d.payloadType !== STEP_RESULT_TYPE) return `step result payload type is ${JSON.stringify(d.payloadType)}, expected ${STEP_RESULT_TYPE}`;
    const serial = normalizeSerial(d.certificateSerial);
    const c = this.certs.get(serial);
    if (!c) return `the agent certificate ${d.certificateSerial} is not in the bundle`;
    if (!c.chainOk) return `the agent certificate ${d.certificateSerial} was not issued by the CA`;
    if (c.cn !== d.agentId) return `result attributed to agent ${d.agentId} but certificate ${d.certificateSerial} belongs to ${c.cn ?? '?'}`;
    const payload = Buffer.from(d.payload, 'base64');
    if (!verifyPayload(STEP_RESULT_TYPE, payload, Buffer.from(d.signature, 'base64'), c.cert.publicKey)) {
      return `agent signature does not verify with ${d.agentId}'s certificate ${d.certificateSerial} (forged or altered result)`;
    }
    let result;
    try {
      result = decodeStepResult(payload);
    } catch {
      return 'the agent-signed result does not decode';
    }
    if (result.agentId !== d.agentId || result.stepId !== d.stepRunId || result.executionId !== d.executionId) {
      return "the record's ids do not match the result the agent signed";
    }
    if (result.signerCertificateSerial !== '' && normalizeSerial(result.signerCertificateSerial) !== serial) {
      return `the agent signed with certificate ${result.signerCertificateSerial}, the record names ${d.certificateSerial}`;
    }
    if (d.status !== result.status || d.exitCode !== result.exitCode) {
      return `the record says ${String(d.status)}/${String(d.exitCode)}, the agent signed ${result.status}/${result.exitCode}`;
    }
    if (result.finishedAtMs < c.notBefore || result.finishedAtMs > c.notAfter) {
      return `the result (finished ${new Date(result.finishedAtMs).toISOString()}) was signed outside certificate ${d.certificateSerial}'s validity`;
    }
    this.claims.push({
      seq,
      stepRunId: result.stepId,
      digests: { stdout: Buffer.from(result.stdoutSha256), stderr: Buffer.from(result.stderrSha256) },
      bytes: { stdout: result.stdoutBytes, stderr: result.stderrBytes },
    });
    return undefined;
  }

  /** Stored output of a step run (several calls per stream are concatenated in call order). */
  output(stepRunId: string, stream: 'stdout' | 'stderr', data: Uint8Array): void {
    let o = this.outputs.get(stepRunId);
    if (!o) {
      o = { stdout: createHash('sha256'), stderr: createHash('sha256'), stdoutBytes: 0, stderrBytes: 0 };
      this.outputs.set(stepRunId, o);
    }
    o[stream].update(data);
    if (stream === 'stdout') o.stdoutBytes += data.length;
    else o.stderrBytes += data.length;
  }

  /** A signed checkpoint: from the bundle, or (`external`) kept outside it. */
  checkpoint(cp: BundleCheckpoint, signatureOk: boolean, external = false): void {
    this.checkpointsSeen.push({ cp, sigOk: signatureOk, external });
  }

  report(): VerifyReport {
    const failures: Failure[] = [];
    if (this.setupFailure) failures.push(this.setupFailure);
    if (this.recordFailure) failures.push(this.recordFailure);
    const before = this.recordFailure?.seq ?? Infinity;
    let outputsChecked = 0;
    const empty = createHash('sha256').digest();
    for (const c of this.claims) {
      if (c.seq >= before) break;
      const o = this.outputs.get(c.stepRunId);
      const got = o ? { stdout: o.stdout.copy().digest(), stderr: o.stderr.copy().digest() } : { stdout: empty, stderr: empty };
      const bytes = o ? { stdout: o.stdoutBytes, stderr: o.stderrBytes } : { stdout: 0, stderr: 0 };
      const bad = (['stdout', 'stderr'] as const).find((s) => bytes[s] !== c.bytes[s] || !got[s].equals(c.digests[s]));
      if (bad) {
        const reason = bytes[bad] !== c.bytes[bad] ? `stored ${bad} is ${bytes[bad]} bytes; the agent signed for ${c.bytes[bad]}` : `stored ${bad} does not match the SHA-256 the agent signed (${hex(c.digests[bad]).slice(0, 16)}…)`;
        failures.push({ seq: c.seq, reason });
        break;
      }
      outputsChecked += 2;
    }
    failures.push(...this.checkpointFailures());
    // The first bad record wins; problems of the log as a whole come after any record.
    const firstBad = failures.filter((f) => f.seq !== null).sort((a, b) => (a.seq as number) - (b.seq as number))[0] ?? failures[0];
    return {
      ok: firstBad === undefined,
      scope: this.scope,
      records: this.count,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      stepResults: this.stepResults,
      outputsChecked,
      checkpoints: this.checkpointsSeen.length,
      keysUsed: [...this.used],
      caFingerprint256: this.ca?.fingerprint256 ?? null,
      ...(firstBad ? { firstBad } : {}),
    };
  }

  private checkpointFailures(): Failure[] {
    const out: Failure[] = [];
    const lastSeq = this.lastSeq ?? (this.header.first ? this.header.first.seq - 1 : 0);
    const firstSeq = this.firstSeq ?? lastSeq + 1;
    for (const { cp, sigOk, external } of this.checkpointsSeen) {
      const where = external ? 'an external checkpoint' : "a bundle's checkpoint";
      if (!this.keys.has(cp.kid)) {
        out.push({ seq: null, reason: `${where} is signed with an unknown key ${cp.kid}` });
        continue;
      }
      if (!sigOk) {
        out.push({ seq: null, reason: `${where}'s signature does not verify (key ${cp.kid})` });
        continue;
      }
      let body: { kind?: unknown; seq?: unknown; head?: unknown; ts?: unknown; kid?: unknown };
      try {
        body = JSON.parse(Buffer.from(cp.payload).toString('utf8')) as typeof body;
      } catch {
        out.push({ seq: null, reason: `${where} is not JSON` });
        continue;
      }
      if (body.kind !== 'checkpoint' || typeof body.seq !== 'number' || typeof body.head !== 'string' || body.kid !== cp.kid) {
        out.push({ seq: null, reason: `${where} does not hold a checkpoint` });
        continue;
      }
      const n = body.seq;
      const at = `checkpoint signed at ${String(body.ts)}`;
      if (n > lastSeq) {
        // Only a log that claims to run to the head can be short; a range or selection ends where it was cut.
        if (this.scope === 'full' || (this.scope === 'range' && this.header.toHead)) out.push({ seq: null, reason: `log truncated: a ${at} covers record ${n}, but the log ends at ${lastSeq}` });
        continue;
      }
      if (this.scope !== 'selection' && n === firstSeq - 1 && n > 0) {
        // The record just before a range: its hash is what the range's first record links to.
        if (body.head !== (this.header.first?.prev ?? GENESIS_PREV)) out.push({ seq: firstSeq, reason: `record ${firstSeq} links to ${short(this.header.first?.prev)}, but the ${at} says record ${n} hashes to ${short(body.head)}` });
        continue;
      }
      const h = this.hashes.get(n);
      if (h !== undefined && h !== body.head) out.push({ seq: n, reason: `record ${n} does not match the ${at} (rewritten?)` });
    }
    return out;
  }
}

/** Verifies a whole in-memory bundle (tests, small bundles); large files stream through export.ts. */
export async function verifyBundle(b: Bundle, opts: VerifyOptions & { externalCheckpoints?: readonly BundleCheckpoint[]; verifier?: SignatureBatchVerifier } = {}): Promise<VerifyReport> {
  const keys = new Map(b.header.keys.map((k) => [k.kid, k.spki]));
  const external = opts.externalCheckpoints ?? [];
  const items: SignatureItem[] = [...b.records, ...b.checkpoints, ...external];
  const verdicts = await (opts.verifier ?? verifyInThread)(keys, items);
  const v = new AuditVerifier(b.header, opts);
  b.records.forEach((r, i) => v.record(r, verdicts[i] === true));
  for (const [id, o] of b.outputs) {
    v.output(id, 'stdout', o.stdout);
    v.output(id, 'stderr', o.stderr);
  }
  b.checkpoints.forEach((cp, i) => v.checkpoint(cp, verdicts[b.records.length + i] === true));
  external.forEach((cp, i) => v.checkpoint(cp, verdicts[b.records.length + b.checkpoints.length + i] === true, true));
  return v.report();
}
