/**
 * Offline verification of audit records (docs/audit-format.md), as a pure, incremental checker:
 * feed it the bundle header, then records in order (each with the verdict on its coordinator
 * signature, computed wherever the caller likes: in this thread or on worker threads, see
 * verify-workers.ts), then outputs and checkpoints, and ask for the report. It checks, record by
 * record: sequence, hash chain, the coordinator's Ed25519 signature with the key the record
 * names, and for each agent result: the agent's signature against its certificate, that
 * certificate chaining to a trusted CA and naming the agent, its validity when the result was signed,
 * and the stored output against the digests the agent signed. Checkpoints (in the bundle or kept
 * elsewhere) expose a log cut short or rewritten. The report names the first bad record and what
 * is wrong with it. No store, no files, no network.
 *
 * Nothing in a bundle's header is signed, so nothing in it may weaken a verdict: what the records
 * must be (the whole log, a range of it, one execution's records) is what the caller asks for
 * (`VerifyOptions.expect`), never what the header says; an audit key is trusted only when the
 * caller pins it or a key.rotated record signed with a trusted key introduces it (with no pin,
 * the key of the first record is trusted on first use, and the report says so). CAs alike: the
 * header lists every CA of a roll-over, but one is trusted only when pinned or named beside a
 * trusted CA by a verified ca.rotation_planned / ca.switched record (with no CA pinned, the
 * first CA the log uses is trusted on first use).
 */
import { createHash, createPublicKey, X509Certificate, type Hash, type KeyObject } from 'node:crypto';
import { ed25519Verify } from '../../core/ed25519.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';
import { verifyPayload } from '../../core/envelope.js';
import { STEP_RESULT_TYPE } from '../../core/step.js';
import { normalizeSerial } from '../../core/x509-serial.js';
import { issuedBy } from '../../core/ca-bundle.js';
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
 * What the records can prove: `full` — the whole log from seq 1, nothing missing or reordered;
 * `range` — a contiguous run: nothing missing inside it, nothing said about records outside it;
 * `selection` — one execution's records: each record is authentic and the execution's, links
 * are checked between adjacent seqs only. Always the scope the caller asked for.
 */
export type VerifyScope = 'full' | 'range' | 'selection';

/**
 * What the caller expects the bundle to hold (default: the whole log). Only a caller can say a
 * bundle is partial: a header claiming so is not signed.
 */
export type VerifyExpectation =
  | { readonly kind: 'full' }
  /** Records `from`..`to` exactly; `to` null: from `from` to the head of the log (a checkpoint past the end is then truncation). */
  | { readonly kind: 'range'; readonly from: number; readonly to: number | null }
  /** The records of one execution (those whose signed `data.executionId` is the id). */
  | { readonly kind: 'execution'; readonly executionId: string };

/** How an audit key came to be trusted. */
export interface TrustedKey {
  readonly kid: string;
  /** `pinned` by the caller; `first-use`: the first record's key, with nothing pinned; `rotation`: introduced by a key.rotated record. */
  readonly how: 'pinned' | 'first-use' | 'rotation';
  /** The record that first used it (first-use) or introduced it (rotation). */
  readonly seq: number | null;
  /** The trusted key that signed the key.rotated record (rotation). */
  readonly by: string | null;
}

/** How a CA came to be trusted for agent certificates. */
export interface TrustedCa {
  /** SHA-256 fingerprint, AA:BB:… */
  readonly fingerprint256: string;
  /**
   * `pinned` by the caller; `first-use`: with no CA pinned, the first CA the log uses (the issuer
   * of the first agent result's certificate, or the CA a first roll-over record starts from);
   * `rotation`: named by a ca.rotation_planned or ca.switched record (signed with a trusted audit
   * key) beside a CA already trusted.
   */
  readonly how: 'pinned' | 'first-use' | 'rotation';
  /** The record it was first used at (first-use) or introduced by (rotation). */
  readonly seq: number | null;
  /** The record type that introduced it (rotation). */
  readonly event: string | null;
  /** The trusted CA the introducing record names beside it (rotation). */
  readonly by: string | null;
}

export interface TrustReport {
  readonly keys: readonly TrustedKey[];
  /** The bundle header's `ca` (the coordinator's issuing CA when it exported), and whether it was pinned. */
  readonly ca: { readonly fingerprint256: string | null; readonly pinned: boolean };
  /** Every CA trusted for agent certificates, in the order it became trusted. */
  readonly cas: readonly TrustedCa[];
}

/** A verified checkpoint of a record the bundle does not hold, so it proves nothing here. */
export interface UncheckedCheckpoint {
  readonly seq: number;
  readonly ts: string;
  readonly external: boolean;
  readonly reason: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly scope: VerifyScope;
  readonly expected: VerifyExpectation;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly stepResults: number;
  readonly outputsChecked: number;
  readonly checkpoints: number;
  readonly keysUsed: readonly string[];
  /** SHA-256 fingerprint of the bundle header's `ca` (AA:BB:…); every CA trusted is in `trust.cas`. */
  readonly caFingerprint256: string | null;
  /** What was trusted, and why: print it, so that an unpinned key is never trusted silently. */
  readonly trust: TrustReport;
  /** Checkpoints of records outside what was asked for (a range, an execution): not checked. */
  readonly unchecked: readonly UncheckedCheckpoint[];
  /** The first bad record (seq null: a problem not tied to one record, e.g. a missing tail). */
  readonly firstBad?: { readonly seq: number | null; readonly reason: string };
  /** On failure, what the unsigned header claims, when that may explain it (it is not trusted). */
  readonly hint?: string;
}

export interface VerifyOptions {
  /** What the bundle must hold (default: the whole log). */
  readonly expect?: VerifyExpectation;
  /**
   * Trust anchors kept outside the bundle. Without them the first record's key is trusted on
   * first use and the CA is the bundle's own; with them, those are checked against what you hold.
   */
  readonly trust?: {
    /** Audit key ids (`audit-…`, a digest of the key) trusted from the start; others only through key.rotated records they sign. */
    readonly keyIds?: readonly string[];
    /** A CA certificate's SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it (colons and case optional). */
    readonly caFingerprint256?: string;
    /** More pinned CAs (the CAs of a roll-over you hold); others only through signed roll-over records. */
    readonly caFingerprints256?: readonly string[];
  };
}

export const FULL_LOG: VerifyExpectation = { kind: 'full' };

export function scopeOf(e: VerifyExpectation): VerifyScope {
  return e.kind === 'execution' ? 'selection' : e.kind;
}

/** `FROM..TO` or `FROM..` as a range expectation; undefined when the text is not one. */
export function parseRange(text: string): VerifyExpectation | undefined {
  const m = /^(\d+)\.\.(\d*)$/.exec(text.trim());
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === '' ? null : Number(m[2]);
  if (!Number.isSafeInteger(from) || from < 1 || (to !== null && (!Number.isSafeInteger(to) || to < from))) return undefined;
  return { kind: 'range', from, to };
}

export function formatRange(from: number, to: number | null): string {
  return `${from}..${to ?? ''}`;
}

/** A fingerprint as upper-case hex without colons, or undefined when it is not 32 bytes of hex. */
export function normalizeFingerprint(text: string): string | undefined {
  const hexDigits = text.trim().replace(/^sha256[:=]\s*/i, '').replace(/:/g, '').toUpperCase();
  return /^[0-9A-F]{64}$/.test(hexDigits) ? hexDigits : undefined;
}

const AUDIT_KEY_ID = /^audit-[0-9a-f]{16}$/;
export const isAuditKeyId = (s: string): boolean => AUDIT_KEY_ID.test(s);

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
  /** Fingerprint (normalized) of the bundle CA that issued it, or undefined when none did. */
  readonly issuer: string | undefined;
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
/** A normalized fingerprint as AA:BB:… (how Node and openssl print one). */
const colons = (fp: string): string => fp.match(/../g)?.join(':') ?? fp;
const short = (h: unknown): string => (typeof h === 'string' ? `${h.slice(0, 16)}…` : JSON.stringify(h));

/** The key id a key must carry: purpose `audit-` and 16 hex digits of SHA-256 over its SPKI DER. */
export function auditKeyIdFor(spkiDer: Uint8Array): string {
  return `audit-${createHash('sha256').update(spkiDer).digest('hex').slice(0, 16)}`;
}

/**
 * The incremental checker. Call `record()` for every record in file order, then `output()` and
 * `checkpoint()` in any order, then `report()`. Once a record has failed, later records are only
 * counted (`settled` tells the caller it may stop computing signature verdicts).
 */
export class AuditVerifier {
  readonly scope: VerifyScope;
  readonly expected: VerifyExpectation;
  private readonly keys = new Set<string>();
  private readonly certs = new Map<string, AgentCert>();
  private readonly ca: X509Certificate | undefined;
  private readonly caPinned: boolean;
  /** The bundle's CA certificates by normalized fingerprint (header `ca` and `cas`; not trusted by being listed). */
  private readonly caCerts = new Map<string, X509Certificate>();
  /** Trusted CAs by normalized fingerprint, in the order they became trusted. */
  private readonly trustedCas = new Map<string, TrustedCa>();
  private readonly caPins: readonly string[];
  private setupFailure: Failure | undefined;
  private recordFailure: Failure | undefined;
  private readonly hashes = new HashIndex();
  private readonly claims: OutputClaim[] = [];
  private readonly outputs = new Map<string, { stdout: Hash; stderr: Hash; stdoutBytes: number; stderrBytes: number }>();
  private readonly checkpointsSeen: Array<{ cp: BundleCheckpoint; sigOk: boolean; external: boolean }> = [];
  private readonly used = new Set<string>();
  /** Trusted audit keys in the order they became trusted. */
  private readonly trusted = new Map<string, TrustedKey>();
  private readonly pinned: boolean;
  private count = 0;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private expectedSeq: number;
  /** The hash the next record must link to; undefined: not known yet (the first record of a range from past seq 1). */
  private prevHash: string | undefined;
  /** The signed `prev` of the first record (a range's link to the record before it). */
  private firstPrev: string | undefined;
  private stepResults = 0;

  constructor(
    private readonly header: BundleHeader,
    options: VerifyOptions = {},
  ) {
    this.expected = options.expect ?? FULL_LOG;
    this.scope = scopeOf(this.expected);
    const from = this.expected.kind === 'range' ? this.expected.from : 1;
    this.expectedSeq = from;
    this.prevHash = from === 1 ? GENESIS_PREV : undefined;
    const pins = options.trust?.keyIds ?? [];
    this.pinned = pins.length > 0;
    for (const kid of pins) this.trusted.set(kid, { kid, how: 'pinned', seq: null, by: null });
    for (const k of header.keys) this.addKey(k);
    const pinText = [...(options.trust?.caFingerprint256 !== undefined ? [options.trust.caFingerprint256] : []), ...(options.trust?.caFingerprints256 ?? [])];
    this.caPins = [...new Set(pinText.map((t) => normalizeFingerprint(t) ?? t))];
    try {
      this.ca = new X509Certificate(Buffer.from(header.ca, 'base64'));
    } catch {
      this.caPinned = false;
      this.setupFailure ??= { seq: null, reason: "the bundle's CA certificate does not parse" };
      return;
    }
    this.caPinned = this.caPins.includes(normalizeFingerprint(this.ca.fingerprint256) ?? '');
    for (const [i, der] of [header.ca, ...(header.cas ?? [])].entries()) {
      let x: X509Certificate;
      try {
        x = new X509Certificate(Buffer.from(der, 'base64'));
      } catch {
        this.setupFailure ??= { seq: null, reason: `the bundle's CA certificate cas[${i - 1}] does not parse` };
        continue;
      }
      this.caCerts.set(normalizeFingerprint(x.fingerprint256) ?? x.fingerprint256, x);
    }
    for (const fp of this.caPins) {
      const x = this.caCerts.get(fp);
      if (x) this.trustedCas.set(fp, { fingerprint256: x.fingerprint256, how: 'pinned', seq: null, event: null, by: null });
    }
    if (this.caPins.length > 0 && this.trustedCas.size === 0) {
      const held = [...this.caCerts.values()].map((x) => x.fingerprint256);
      const what = held.length === 1 ? `the bundle's CA certificate (${held.join(', ')}) is not the trusted CA` : `none of the bundle's CA certificates (${held.join(', ')}) is a trusted CA`;
      this.setupFailure ??= { seq: null, reason: `${what} (${pinText.join(', ')})` };
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
      issuer: [...this.caCerts].find(([, ca]) => issuedBy(cert, ca))?.[0],
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
    const exp = this.expected;
    if (exp.kind === 'execution') {
      if (last !== null && r.seq <= last) return fail(`record ${r.seq} is out of order (it follows ${last})`);
    } else if (r.seq !== this.expectedSeq) {
      const e = this.expectedSeq;
      if (exp.kind === 'range' && last === null && r.seq < e) return fail(`record ${r.seq} is before the start of the range asked for (${formatRange(exp.from, exp.to)})`);
      return fail(r.seq > e ? `expected record ${e} next, found ${r.seq}: record${r.seq - e > 1 ? `s ${e}-${r.seq - 1} are` : ` ${e} is`} missing` : `record ${r.seq} is out of order (expected ${e})`);
    } else if (exp.kind === 'range' && exp.to !== null && r.seq > exp.to) {
      return fail(`record ${r.seq} is past the end of the range asked for (${formatRange(exp.from, exp.to)})`);
    }
    // Bytes first: a changed byte anywhere is a bad signature, whatever else it breaks.
    if (!this.keys.has(r.kid)) return fail(`signed with an unknown key ${r.kid}`);
    if (!this.trusted.has(r.kid)) {
      // Trust on first use: with nothing pinned, the key the chain starts with.
      if (this.pinned || this.trusted.size > 0) return fail(`signed with key ${r.kid}, which is not trusted: ${this.untrustedWhy(r)}`);
      this.trusted.set(r.kid, { kid: r.kid, how: 'first-use', seq: r.seq, by: null });
    }
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
    if (exp.kind === 'execution') {
      const id = (body.data as { executionId?: unknown } | null | undefined)?.executionId;
      if (id !== exp.executionId) return fail(`record ${r.seq} is not a record of execution ${exp.executionId} (${id === undefined || id === null ? 'it has no executionId' : `its executionId is ${JSON.stringify(id)}`})`);
    }
    const linked = exp.kind !== 'execution' || (last !== null && r.seq === last + 1);
    if (linked && this.prevHash !== undefined && body.prev !== this.prevHash) {
      return fail(`hash chain broken: prev is ${short(body.prev)}, the previous record hashes to ${short(this.prevHash)}`);
    }
    if (last === null) this.firstPrev = typeof body.prev === 'string' ? body.prev : undefined;
    if (body.type === 'step.result') {
      this.stepResults++;
      const problem = this.checkResult(r.seq, (body.data ?? {}) as ResultData);
      if (problem) return fail(problem);
    }
    if (body.type === 'key.rotated') this.introduce(r, body.data);
    if (body.type === 'ca.rotation_planned' || body.type === 'ca.switched') this.introduceCa(r.seq, body.type, body.data);
    const hash = createHash('sha256').update(r.payload).digest();
    this.hashes.set(r.seq, hash);
    this.prevHash = hash.toString('hex');
    this.expectedSeq = r.seq + 1;
    this.used.add(r.kid);
    return undefined;
  }

  /** A verified key.rotated record, signed with a trusted key, makes the audit key it names trusted. */
  private introduce(r: BundleRecord, data: unknown): void {
    const d = (data ?? {}) as { purpose?: unknown; keyId?: unknown };
    if (d.purpose !== 'audit' || typeof d.keyId !== 'string' || this.trusted.has(d.keyId)) return;
    this.trusted.set(d.keyId, { kid: d.keyId, how: 'rotation', seq: r.seq, by: r.kid });
  }

  /**
   * A verified roll-over record (signed with a trusted audit key) names two CAs: the one rolled
   * from and the one rolled to. When one of them is trusted, the other is trusted from this
   * record on. With nothing pinned and no CA trusted yet, the CA the roll-over starts from is
   * the first CA the log uses.
   */
  private introduceCa(seq: number, event: string, data: unknown): void {
    const d = (data ?? {}) as { currentFingerprint256?: unknown; nextFingerprint256?: unknown; previousFingerprint256?: unknown };
    const [fromText, toText] = event === 'ca.switched' ? [d.previousFingerprint256, d.currentFingerprint256] : [d.currentFingerprint256, d.nextFingerprint256];
    const from = typeof fromText === 'string' ? normalizeFingerprint(fromText) : undefined;
    const to = typeof toText === 'string' ? normalizeFingerprint(toText) : undefined;
    if (from === undefined || to === undefined) return;
    if (this.caPins.length === 0 && this.trustedCas.size === 0) this.trustCa(from, { how: 'first-use', seq, event: null, by: null });
    for (const [a, b] of [[from, to], [to, from]] as const) {
      const by = this.trustedCas.get(a);
      if (by && !this.trustedCas.has(b)) this.trustCa(b, { how: 'rotation', seq, event, by: by.fingerprint256 });
    }
  }

  private trustCa(fp: string, how: Omit<TrustedCa, 'fingerprint256'>): void {
    this.trustedCas.set(fp, { fingerprint256: this.caCerts.get(fp)?.fingerprint256 ?? colons(fp), ...how });
  }

  private untrustedCaWhy(fp: string): string {
    const trusted = [...this.trustedCas.values()].map((c) => c.fingerprint256).join(', ');
    return this.caPins.length > 0
      ? `not pinned (trusted: ${trusted}) and no ca.rotation_planned or ca.switched record signed with a trusted audit key introduces it before this record`
      : `the log starts with CA ${trusted} (trusted on first use) and no ca.rotation_planned or ca.switched record signed with a trusted audit key introduces ${colons(fp)} before this record`;
  }

  private untrustedWhy(r: BundleRecord): string {
    const trusted = [...this.trusted.values()];
    const why = this.pinned
      ? `not pinned (trusted: ${trusted.map((k) => k.kid).join(', ')}) and no key.rotated record signed by a trusted key introduces it`
      : `the chain starts with ${trusted[0]?.kid ?? '?'} (trusted on first use) and no key.rotated record signed by a trusted key introduces ${r.kid}`;
    // A rotation must be signed by a key already trusted; one signed with the new key proves nothing.
    try {
      const b = JSON.parse(Buffer.from(r.payload).toString('utf8')) as RecordBody;
      const d = (b.data ?? {}) as { keyId?: unknown };
      if (b.type === 'key.rotated' && d.keyId === r.kid) {
        return `${why}; this key.rotated record introduces it but is signed with it, not with the previous key (pin both keys with --trust-key if you know them)`;
      }
    } catch {
      // Not JSON: the signature or payload checks say so once the key is trusted.
    }
    return why;
  }

  private checkResult(seq: number, d: ResultData): string | undefined {
    if (typeof d.payload !== 'string' || typeof d.signature !== 'string' || typeof d.certificateSerial !== 'string' || typeof d.agentId !== 'string') {
      return 'step result record lacks the agent-signed payload, signature or certificate serial';
    }
    if (d.payloadType !== STEP_RESULT_TYPE) return `step result payload type is ${JSON.stringify(d.payloadType)}, expected ${STEP_RESULT_TYPE}`;
    const serial = normalizeSerial(d.certificateSerial);
    const c = this.certs.get(serial);
    if (!c) return `the agent certificate ${d.certificateSerial} is not in the bundle`;
    if (c.issuer === undefined) return `the agent certificate ${d.certificateSerial} was not issued by the CA${this.caCerts.size > 1 ? ' (by none of the bundle\'s CAs)' : ''}`;
    // Trust on first use: with no CA pinned, the CA the first result's certificate chains to.
    if (this.caPins.length === 0 && this.trustedCas.size === 0) this.trustCa(c.issuer, { how: 'first-use', seq, event: null, by: null });
    if (!this.trustedCas.has(c.issuer)) return `the agent certificate ${d.certificateSerial} was issued by CA ${colons(c.issuer)}, which is not trusted: ${this.untrustedCaWhy(c.issuer)}`;
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
    const extent = this.extentFailure();
    if (extent) failures.push(extent);
    const { failures: cpFailures, unchecked } = this.checkpointResults();
    failures.push(...cpFailures);
    // The first bad record wins; problems of the log as a whole come after any record.
    const firstBad = failures.filter((f) => f.seq !== null).sort((a, b) => (a.seq as number) - (b.seq as number))[0] ?? failures[0];
    const hint = firstBad ? this.hint() : undefined;
    return {
      ok: firstBad === undefined,
      scope: this.scope,
      expected: this.expected,
      records: this.count,
      firstSeq: this.firstSeq,
      lastSeq: this.lastSeq,
      stepResults: this.stepResults,
      outputsChecked,
      checkpoints: this.checkpointsSeen.length,
      keysUsed: [...this.used],
      caFingerprint256: this.ca?.fingerprint256 ?? null,
      trust: { keys: [...this.trusted.values()], ca: { fingerprint256: this.ca?.fingerprint256 ?? null, pinned: this.caPinned }, cas: [...this.trustedCas.values()] },
      unchecked,
      ...(firstBad ? { firstBad } : {}),
      ...(hint ? { hint } : {}),
    };
  }

  /** A bundle that holds less than what was asked for. */
  private extentFailure(): Failure | undefined {
    if (this.recordFailure) return undefined;
    const exp = this.expected;
    if (exp.kind === 'execution') return this.count === 0 ? { seq: null, reason: `the bundle holds no records of execution ${exp.executionId}` } : undefined;
    if (exp.kind !== 'range') return undefined;
    const end = this.lastSeq ?? exp.from - 1;
    if (exp.to === null) return this.count === 0 ? { seq: null, reason: `the bundle holds no records (the range asked for starts at ${exp.from})` } : undefined;
    if (end >= exp.to) return undefined;
    const missing = end + 1 === exp.to ? `record ${exp.to} is` : `records ${end + 1}-${exp.to} are`;
    return { seq: null, reason: `the bundle ends at record ${end}, but the range asked for runs to ${exp.to}: ${missing} missing` };
  }

  /** What the unsigned header claims, when the caller asked for the whole log and it did not verify. */
  private hint(): string | undefined {
    if (this.expected.kind !== 'full') return undefined;
    const sel = this.header.selection;
    const first = this.firstSeq ?? this.header.first?.seq;
    if (sel.execution !== null) {
      return `the bundle's header (not signed) says it holds the records of execution ${sel.execution}: verify it with --execution ${sel.execution} only if you exported exactly that`;
    }
    if (sel.from !== null || sel.to !== null || !this.header.toHead || (first !== undefined && first !== 1)) {
      const range = formatRange(first ?? 1, this.header.toHead ? null : this.lastSeq ?? first ?? 1);
      return `the bundle's header (not signed) says this is a range export (records ${range}): verify it with --range ${range} only if you exported exactly that range`;
    }
    return undefined;
  }

  private checkpointResults(): { failures: Failure[]; unchecked: UncheckedCheckpoint[] } {
    const failures: Failure[] = [];
    const unchecked: UncheckedCheckpoint[] = [];
    const exp = this.expected;
    const start = exp.kind === 'range' ? exp.from : 1;
    const end = this.lastSeq ?? start - 1;
    // Only a log that must run to the head can be short; a range or selection ends where it was cut.
    const toHead = exp.kind === 'full' || (exp.kind === 'range' && exp.to === null);
    const outside = exp.kind === 'range' ? `the range ${formatRange(exp.from, exp.to)}` : exp.kind === 'execution' ? `the records of execution ${exp.executionId}` : 'the log';
    for (const { cp, sigOk, external } of this.checkpointsSeen) {
      const where = external ? 'an external checkpoint' : "a bundle's checkpoint";
      if (!this.keys.has(cp.kid)) {
        failures.push({ seq: null, reason: `${where} is signed with an unknown key ${cp.kid}` });
        continue;
      }
      if (!this.trusted.has(cp.kid)) {
        // An empty log has no first record: its checkpoint's key is the first use.
        if (this.pinned || this.trusted.size > 0 || this.count > 0) {
          failures.push({ seq: null, reason: `${where} is signed with key ${cp.kid}, which is not trusted` });
          continue;
        }
        this.trusted.set(cp.kid, { kid: cp.kid, how: 'first-use', seq: null, by: null });
      }
      if (!sigOk) {
        failures.push({ seq: null, reason: `${where}'s signature does not verify (key ${cp.kid})` });
        continue;
      }
      let body: { kind?: unknown; seq?: unknown; head?: unknown; ts?: unknown; kid?: unknown };
      try {
        body = JSON.parse(Buffer.from(cp.payload).toString('utf8')) as typeof body;
      } catch {
        failures.push({ seq: null, reason: `${where} is not JSON` });
        continue;
      }
      if (body.kind !== 'checkpoint' || typeof body.seq !== 'number' || typeof body.head !== 'string' || body.kid !== cp.kid) {
        failures.push({ seq: null, reason: `${where} does not hold a checkpoint` });
        continue;
      }
      const n = body.seq;
      const ts = String(body.ts);
      const at = `checkpoint signed at ${ts}`;
      if (n === 0) {
        if (body.head !== GENESIS_PREV) failures.push({ seq: null, reason: `a ${at} says the empty log hashes to ${short(body.head)}` });
        continue;
      }
      if (n > end) {
        if (toHead) failures.push({ seq: null, reason: `log truncated: a ${at} covers record ${n}, but the log ends at ${end}` });
        else unchecked.push({ seq: n, ts, external, reason: `past the end of ${outside}` });
        continue;
      }
      if (exp.kind !== 'execution' && n === start - 1) {
        // The record just before a range: its hash is what the range's first record links to.
        if (this.firstPrev !== undefined && body.head !== this.firstPrev) failures.push({ seq: start, reason: `record ${start} links to ${short(this.firstPrev)}, but the ${at} says record ${n} hashes to ${short(body.head)}` });
        continue;
      }
      const h = this.hashes.get(n);
      if (h === undefined) {
        // Verification stopped before it (that failure is reported), or the record is not part of what was asked for.
        const failedAt = this.setupFailure ? 0 : (this.recordFailure?.seq ?? Infinity);
        const stopped = n >= failedAt;
        if (!stopped) unchecked.push({ seq: n, ts, external, reason: exp.kind === 'execution' ? `not one of ${outside}` : `before the start of ${outside}` });
        continue;
      }
      if (h !== body.head) failures.push({ seq: n, reason: `record ${n} does not match the ${at} (rewritten?)` });
    }
    return { failures, unchecked };
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
