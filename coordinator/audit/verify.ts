/**
 * Offline verification of an audit bundle (docs/audit-format.md). Checks, record by record:
 * sequence, hash chain, the coordinator's Ed25519 signature with the key the record names,
 * and for each agent result: the agent's signature against its certificate, that certificate
 * chaining to the CA, the agent's identity, and the stored output against the digests the agent
 * signed. Checkpoints (in the bundle or kept elsewhere) expose a log cut short. Reports the
 * first bad record and what is wrong with it. Needs no store, no server and no network.
 */
import { createHash, createPublicKey, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { decodeStepResult } from '../../proto/codec/step-codec.js';
import { verifyPayload } from '../../core/envelope.js';
import { STEP_RESULT_TYPE } from '../../core/step.js';
import type { Bundle, BundleCheckpoint } from './bundle.js';
import { GENESIS_PREV } from './record.js';

export interface SignatureItem {
  readonly kid: string;
  readonly payload: Buffer;
  readonly sig: Buffer;
}

/** Verifies many Ed25519 signatures (in this thread, or spread over worker threads). */
export type SignatureBatchVerifier = (keys: ReadonlyMap<string, string>, items: readonly SignatureItem[]) => Promise<boolean[]>;

export const verifyInThread: SignatureBatchVerifier = async (keys, items) => {
  const objs = new Map<string, KeyObject>();
  for (const [kid, spki] of keys) objs.set(kid, createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' }));
  return items.map((it) => {
    const k = objs.get(it.kid);
    if (!k) return false;
    try {
      return verify(null, it.payload, k, it.sig);
    } catch {
      return false;
    }
  });
};

export interface VerifyReport {
  readonly ok: boolean;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly stepResults: number;
  readonly outputsChecked: number;
  readonly checkpoints: number;
  readonly keysUsed: readonly string[];
  /** The first bad record (seq null: a problem not tied to one record, e.g. a missing tail). */
  readonly firstBad?: { readonly seq: number | null; readonly reason: string };
}

interface RecordBody {
  v?: unknown;
  seq?: unknown;
  ts?: unknown;
  type?: unknown;
  prev?: unknown;
  kid?: unknown;
  data?: unknown;
}

interface ResultData {
  executionId?: unknown;
  stepRunId?: unknown;
  agentId?: unknown;
  certificateSerial?: unknown;
  payloadType?: unknown;
  payload?: unknown;
  signature?: unknown;
}

export async function verifyBundle(b: Bundle, opts: { externalCheckpoints?: readonly BundleCheckpoint[]; verifier?: SignatureBatchVerifier } = {}): Promise<VerifyReport> {
  const keys = new Map(b.header.keys.map((k) => [k.kid, k.spki]));
  const checkpoints = [...b.checkpoints, ...(opts.externalCheckpoints ?? [])];
  const verdicts = await (opts.verifier ?? verifyInThread)(keys, [...b.records.map((r) => ({ kid: r.kid, payload: r.payload, sig: r.sig })), ...checkpoints]);

  const used = new Set<string>();
  let stepResults = 0;
  let outputsChecked = 0;
  let expectedSeq = b.header.first?.seq ?? 1;
  let prevHash = b.header.first?.prev ?? GENESIS_PREV;
  const hashes = new Map<number, string>();
  const partial = b.header.selection.execution !== null;

  const summary = (): VerifyReport => ({
    ok: true,
    records: b.records.length,
    firstSeq: b.records[0]?.seq ?? null,
    lastSeq: b.records.at(-1)?.seq ?? null,
    stepResults,
    outputsChecked,
    checkpoints: checkpoints.length,
    keysUsed: [...used],
  });
  const fail = (seq: number | null, reason: string): VerifyReport => ({ ...summary(), ok: false, firstBad: { seq, reason } });

  let ca: X509Certificate;
  try {
    ca = new X509Certificate(Buffer.from(b.header.ca, 'base64'));
  } catch {
    return fail(null, 'the bundle\'s CA certificate does not parse');
  }
  const certs = new Map<string, { cert: X509Certificate; agentId: string; chainOk: boolean }>();
  for (const c of b.header.agentCertificates) {
    const cert = new X509Certificate(Buffer.from(c.der, 'base64'));
    certs.set(c.serial, { cert, agentId: c.agentId, chainOk: cert.checkIssued(ca) && cert.verify(ca.publicKey) });
  }

  for (let i = 0; i < b.records.length; i++) {
    const r = b.records[i] as (typeof b.records)[number];
    // An execution's records are a selection: sequence gaps are expected there, chain links are not checkable.
    if (!partial && r.seq !== expectedSeq) {
      return fail(r.seq, r.seq > expectedSeq ? `expected record ${expectedSeq} next, found ${r.seq}: record${r.seq - expectedSeq > 1 ? `s ${expectedSeq}-${r.seq - 1} are` : ` ${expectedSeq} is`} missing` : `record ${r.seq} is out of order (expected ${expectedSeq})`);
    }
    const hash = createHash('sha256').update(r.payload).digest('hex');
    let body: RecordBody;
    try {
      body = JSON.parse(r.payload.toString('utf8')) as RecordBody;
    } catch {
      return fail(r.seq, 'payload is not valid JSON (altered?)');
    }
    if (body.v !== 1) return fail(r.seq, `unsupported record version ${JSON.stringify(body.v)}`);
    if (body.seq !== r.seq) return fail(r.seq, `the signed payload says seq ${JSON.stringify(body.seq)}, the line says ${r.seq} (moved?)`);
    if (body.kid !== r.kid) return fail(r.seq, `the signed payload names key ${JSON.stringify(body.kid)}, the line names ${r.kid}`);
    if (!partial && body.prev !== prevHash) return fail(r.seq, `hash chain broken: prev is ${String(body.prev).slice(0, 16)}…, the previous record hashes to ${prevHash.slice(0, 16)}…`);
    if (!keys.has(r.kid)) return fail(r.seq, `signed with an unknown key ${r.kid}`);
    if (!verdicts[i]) return fail(r.seq, `coordinator signature does not verify with key ${r.kid}`);
    used.add(r.kid);

    if (body.type === 'step.result') {
      stepResults++;
      const problem = checkAgentResult(body.data as ResultData, certs, b.outputs);
      if (problem) return fail(r.seq, problem.reason);
      outputsChecked += problem === undefined ? 2 : 0;
    }
    hashes.set(r.seq, hash);
    prevHash = hash;
    expectedSeq = r.seq + 1;
  }

  const lastSeq = b.records.at(-1)?.seq ?? (b.header.first ? b.header.first.seq - 1 : 0);
  for (let j = 0; j < checkpoints.length; j++) {
    const cp = checkpoints[j] as BundleCheckpoint;
    if (!verdicts[b.records.length + j]) return fail(null, `checkpoint signature does not verify (key ${cp.kid})`);
    const body = JSON.parse(cp.payload.toString('utf8')) as { seq: number; head: string; ts: string; kind?: string };
    if (body.kind !== 'checkpoint') return fail(null, 'a checkpoint line does not hold a checkpoint');
    if (partial) continue;
    if (body.seq > lastSeq) {
      if (b.header.toHead || j >= b.checkpoints.length) return fail(null, `log truncated: a checkpoint signed at ${body.ts} covers record ${body.seq}, but the log ends at ${lastSeq}`);
      continue;
    }
    const h = hashes.get(body.seq);
    if (h !== undefined && h !== body.head) return fail(body.seq, `record ${body.seq} does not match the checkpoint signed at ${body.ts} (rewritten?)`);
  }

  return summary();
}

function checkAgentResult(
  d: ResultData,
  certs: ReadonlyMap<string, { cert: X509Certificate; agentId: string; chainOk: boolean }>,
  outputs: Bundle['outputs'],
): { reason: string } | undefined {
  if (typeof d.payload !== 'string' || typeof d.signature !== 'string' || typeof d.certificateSerial !== 'string' || typeof d.agentId !== 'string') {
    return { reason: 'step result record lacks the agent-signed payload, signature or certificate serial' };
  }
  const c = certs.get(d.certificateSerial);
  if (!c) return { reason: `the agent certificate ${d.certificateSerial} is not in the bundle` };
  if (!c.chainOk) return { reason: `the agent certificate ${d.certificateSerial} does not chain to the CA` };
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(c.cert.subject)?.[1];
  if (cn !== d.agentId) return { reason: `result attributed to agent ${d.agentId} but certificate ${d.certificateSerial} belongs to ${cn ?? '?'}` };
  const payload = Buffer.from(d.payload, 'base64');
  if (!verifyPayload(STEP_RESULT_TYPE, payload, Buffer.from(d.signature, 'base64'), c.cert.publicKey)) {
    return { reason: `agent signature does not verify with ${d.agentId}'s certificate ${d.certificateSerial} (forged or altered result)` };
  }
  let result;
  try {
    result = decodeStepResult(payload);
  } catch {
    return { reason: 'the agent-signed result does not decode' };
  }
  if (result.agentId !== d.agentId || result.stepId !== d.stepRunId || result.executionId !== d.executionId) {
    return { reason: 'the record\'s ids do not match the result the agent signed' };
  }
  if (result.finishedAtMs < Date.parse(c.cert.validFrom) || result.finishedAtMs > Date.parse(c.cert.validTo)) {
    return { reason: `the result was signed outside certificate ${d.certificateSerial}'s validity` };
  }
  const out = outputs.get(result.stepId) ?? { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  for (const [name, data, digest, bytes] of [
    ['stdout', out.stdout, result.stdoutSha256, result.stdoutBytes],
    ['stderr', out.stderr, result.stderrSha256, result.stderrBytes],
  ] as const) {
    if (data.length !== bytes) return { reason: `stored ${name} is ${data.length} bytes; the agent signed for ${bytes}` };
    if (!createHash('sha256').update(data).digest().equals(Buffer.from(digest))) return { reason: `stored ${name} does not match the SHA-256 the agent signed` };
  }
  return undefined;
}
