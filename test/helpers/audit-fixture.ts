/**
 * A small, real PKI and audit log for the audit tests: a CA (node-forge), RSA-2048 agents with
 * certificates (CN = agent id), one agent certified by another CA, audit keys from fixed seeds,
 * and a builder that appends signed records, agent-signed results and outputs, and can rewrite
 * records the way someone holding the coordinator's audit key could.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { AuditEvents, auditEvent, type AuditEventInput } from '../../coordinator/audit/events.js';
import { BUNDLE_FORMAT, type Bundle, type BundleCheckpoint, type BundleHeader, type BundleRecord } from '../../coordinator/audit/bundle.js';
import { GENESIS_PREV, sealCheckpoint, sealRecord } from '../../coordinator/audit/record.js';
import { auditKeyIdFor } from '../../coordinator/audit/verify.js';
import { signPayload } from '../../core/envelope.js';
import { STEP_RESULT_TYPE, type StepResult } from '../../core/step.js';
import { normalizeSerial } from '../../core/x509-serial.js';
import { encodeStepResult } from '../../proto/codec/step-codec.js';

export const T0 = Date.UTC(2026, 10, 23, 5, 0, 0, 0);

export interface TestAgent {
  readonly id: string;
  readonly key: KeyObject;
  readonly serial: string;
  readonly der: string;
}

export interface AuditKey {
  readonly kid: string;
  /** The same id, under the name the record sealer takes. */
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly spki: string;
}

/** An Ed25519 audit key from a fixed 32-byte seed (PKCS#8 prefix for Ed25519 + seed). */
export function auditKey(seedByte: number): AuditKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, seedByte)]), format: 'der', type: 'pkcs8' });
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const kid = auditKeyIdFor(der);
  return { kid, keyId: kid, privateKey, spki: der.toString('base64') };
}

interface Ca {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
  readonly der: string;
  readonly pem: string;
}

let serialCounter = 0x1000;
const nextSerial = (): string => `7f${(serialCounter++).toString(16).padStart(6, '0')}`;

function rsaPair(): { node: KeyObject; forgePublic: forge.pki.PublicKey; forgePrivate: forge.pki.rsa.PrivateKey } {
  // node:crypto makes the key (forge's pure-JS RSA key generation takes seconds); forge signs the certificates.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    node: privateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    forgePrivate: forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey,
  };
}

function derOf(cert: forge.pki.Certificate): string {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary').toString('base64');
}

function makeCa(name: string): Ca {
  const k = rsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.forgePublic;
  cert.serialNumber = nextSerial();
  cert.validity.notBefore = new Date(T0 - 365 * 86_400_000);
  cert.validity.notAfter = new Date(T0 + 365 * 86_400_000);
  const subject = [{ name: 'commonName', value: name }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  cert.sign(k.forgePrivate, forge.md.sha256.create());
  return { cert, key: k.forgePrivate, der: derOf(cert), pem: forge.pki.certificateToPem(cert) };
}

function makeAgent(ca: Ca, id: string, validity: { from: number; to: number } = { from: T0 - 3_600_000, to: T0 + 86_400_000 }): TestAgent {
  const k = rsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.forgePublic;
  cert.serialNumber = nextSerial();
  cert.validity.notBefore = new Date(validity.from);
  cert.validity.notAfter = new Date(validity.to);
  cert.setSubject([{ name: 'commonName', value: id }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([{ name: 'basicConstraints', cA: false, critical: true }]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { id, key: k.node, serial: normalizeSerial(cert.serialNumber), der: derOf(cert) };
}

export interface TestPki {
  readonly caPem: string;
  readonly caDer: string;
  readonly a: TestAgent;
  readonly b: TestAgent;
  /** Claims to be agent a, certified by another CA. */
  readonly impostor: TestAgent;
  /** Agent a's earlier certificate, expired an hour before T0. */
  readonly aExpired: TestAgent;
}

let pki: TestPki | undefined;

/** One PKI per test file (RSA key generation is the slow part). */
export function testPki(): TestPki {
  if (!pki) {
    const ca = makeCa('Handrail test CA');
    const other = makeCa('Some other CA');
    pki = {
      caPem: ca.pem,
      caDer: ca.der,
      a: makeAgent(ca, 'agt-a'),
      b: makeAgent(ca, 'agt-b'),
      impostor: makeAgent(other, 'agt-a'),
      aExpired: makeAgent(ca, 'agt-a', { from: T0 - 86_400_000, to: T0 - 3_600_000 }),
    };
  }
  return pki;
}

const SYSTEM = { kind: 'system', id: 'coordinator' } as const;

export interface ResultSpec {
  readonly executionId: string;
  readonly stepRunId: string;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly exitCode?: number;
  readonly finishedAtMs?: number;
  /** The certificate (and key) the agent signs with; default: the agent's own. */
  readonly signer?: TestAgent;
  /** The certificate serial the record names; default: the signer's. */
  readonly recordSerial?: string;
}

export function signedResult(agent: TestAgent, spec: ResultSpec): { result: StepResult; payload: Uint8Array; signature: Buffer } {
  const signer = spec.signer ?? agent;
  const stdout = Buffer.from(spec.stdout ?? '');
  const stderr = Buffer.from(spec.stderr ?? '');
  const result: StepResult = {
    executionId: spec.executionId,
    stepId: spec.stepRunId,
    agentId: agent.id,
    requestSha256: createHash('sha256').update(spec.stepRunId).digest(),
    requestNonce: Buffer.alloc(16, 1),
    status: (spec.exitCode ?? 0) === 0 ? 'succeeded' : 'failed',
    exitCode: spec.exitCode ?? 0,
    signal: '',
    startedAtMs: (spec.finishedAtMs ?? T0 + 1000) - 500,
    finishedAtMs: spec.finishedAtMs ?? T0 + 1000,
    stdoutSha256: createHash('sha256').update(stdout).digest(),
    stderrSha256: createHash('sha256').update(stderr).digest(),
    stdoutBytes: stdout.length,
    stderrBytes: stderr.length,
    stdoutTruncated: false,
    stderrTruncated: false,
    error: '',
    signerCertificateSerial: signer.serial,
  };
  const payload = encodeStepResult(result);
  return { result, payload, signature: signPayload(STEP_RESULT_TYPE, payload, signer.key) };
}

export function resultEvent(agent: TestAgent, spec: ResultSpec): AuditEventInput {
  const { result, payload, signature } = signedResult(agent, spec);
  return auditEvent(AuditEvents.stepResult, { kind: 'agent', id: agent.id }, {
    executionId: spec.executionId,
    stepRunId: spec.stepRunId,
    agentId: agent.id,
    status: result.status,
    exitCode: result.exitCode,
    certificateSerial: spec.recordSerial ?? (spec.signer ?? agent).serial,
    payloadType: STEP_RESULT_TYPE,
    payload: Buffer.from(payload).toString('base64'),
    signature: signature.toString('base64'),
  });
}

/** Plain events of assorted types for filler. */
export function filler(i: number): AuditEventInput {
  switch (i % 4) {
    case 0:
      return auditEvent(AuditEvents.tokenCreated, { kind: 'cli', id: 'root' }, { tokenId: `tok-${i}`, labels: { env: 'prod' }, expiresAt: new Date(T0).toISOString(), uses: 1, namePattern: null });
    case 1:
      return auditEvent(AuditEvents.policyDecided, { kind: 'user', id: 'alice' }, { requestId: `req-${i}`, executionId: `exe-${i}`, user: 'alice', action: 'run', runbookId: 'restart-web', allowed: true, rule: 'demo/ops', reason: 'allowed' });
    case 2:
      return auditEvent(AuditEvents.executionCompleted, SYSTEM, { executionId: `exe-${i}`, state: 'succeeded' });
    default:
      return auditEvent(AuditEvents.userChanged, { kind: 'cli', id: 'root' }, { user: 'bob', change: 'groups', groups: ['ops'] });
  }
}

/** Builds a log in memory exactly as AuditLog would write it. */
export class LogBuilder {
  readonly records: BundleRecord[] = [];
  readonly outputs = new Map<string, { stdout: Buffer; stderr: Buffer }>();
  readonly checkpoints: BundleCheckpoint[] = [];
  private readonly keys = new Map<string, AuditKey>();
  private head = { seq: 0, hash: GENESIS_PREV };
  private readonly certs = new Map<string, TestAgent>();

  constructor(public key: AuditKey) {
    this.keys.set(key.kid, key);
  }

  /** Switches to a new audit key (as `keyring.rotate('audit')` does); the old one stays published. */
  rotate(key: AuditKey): void {
    this.key = key;
    this.keys.set(key.kid, key);
  }

  append(event: AuditEventInput, ts = T0 + this.head.seq * 1000): BundleRecord {
    const rec = sealRecord(event, this.head.seq + 1, this.head.hash, ts, this.key);
    const r = { seq: rec.seq, kid: rec.keyId, payload: rec.payload, sig: rec.signature };
    this.records.push(r);
    this.head = { seq: rec.seq, hash: rec.hash };
    return r;
  }

  /** An agent-signed result, with the output the coordinator stored for it. */
  result(agent: TestAgent, spec: ResultSpec): BundleRecord {
    this.certs.set((spec.signer ?? agent).serial, spec.signer ?? agent);
    this.outputs.set(spec.stepRunId, { stdout: Buffer.from(spec.stdout ?? ''), stderr: Buffer.from(spec.stderr ?? '') });
    return this.append(resultEvent(agent, spec));
  }

  /** Publishes a certificate in the header without a result using it. */
  publish(agent: TestAgent): void {
    this.certs.set(agent.serial, agent);
  }

  checkpoint(tsMs = T0 + 3_600_000): BundleCheckpoint {
    const cp = sealCheckpoint(this.head.seq, this.head.hash, tsMs, this.key);
    const c = { kid: cp.keyId, payload: cp.payload, sig: cp.signature };
    this.checkpoints.push(c);
    return c;
  }

  header(overrides: Partial<BundleHeader> = {}): BundleHeader {
    return {
      format: BUNDLE_FORMAT,
      created: new Date(T0 + 7_200_000).toISOString(),
      selection: { from: null, to: null, execution: null },
      first: this.records.length > 0 ? { seq: 1, prev: GENESIS_PREV } : null,
      toHead: true,
      ca: testPki().caDer,
      keys: [...this.keys.values()].map((k) => ({ kid: k.kid, alg: 'ed25519' as const, spki: k.spki, created: new Date(T0).toISOString(), retired: null })),
      agentCertificates: [...this.certs.values()].map((c) => ({ serial: c.serial, agentId: c.id, der: c.der })),
      ...overrides,
    };
  }

  bundle(overrides: Partial<BundleHeader> = {}): Bundle {
    return { header: this.header(overrides), records: [...this.records], outputs: new Map(this.outputs), checkpoints: [...this.checkpoints] };
  }
}

export function body(r: BundleRecord): Record<string, unknown> {
  return JSON.parse(Buffer.from(r.payload).toString('utf8')) as Record<string, unknown>;
}

/**
 * What an attacker holding the audit key can do: rewrite record `seq` (with `edit`) and re-sign
 * it and every later record, so each signature and link is valid again.
 */
export function rewrite(records: readonly BundleRecord[], seq: number, edit: (body: Record<string, unknown>) => void, key: AuditKey): BundleRecord[] {
  const out: BundleRecord[] = [];
  let prev: string | undefined;
  for (const r of records) {
    if (r.seq < seq) {
      out.push(r);
      prev = createHash('sha256').update(r.payload).digest('hex');
      continue;
    }
    const b = body(r);
    if (r.seq === seq) edit(b);
    if (prev !== undefined) b['prev'] = prev;
    b['kid'] = key.kid;
    const payload = Buffer.from(JSON.stringify(b));
    out.push({ seq: r.seq, kid: key.kid, payload, sig: sign(null, payload, key.privateKey) });
    prev = createHash('sha256').update(payload).digest('hex');
  }
  return out;
}

/** Re-signs one record after `edit`, leaving every other record alone (links are not repaired). */
export function resign(r: BundleRecord, edit: (body: Record<string, unknown>) => void, key: AuditKey): BundleRecord {
  const b = body(r);
  edit(b);
  b['kid'] = key.kid;
  const payload = Buffer.from(JSON.stringify(b));
  return { seq: r.seq, kid: key.kid, payload, sig: sign(null, payload, key.privateKey) };
}

export function flipByte(b: Uint8Array, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = (c[at] as number) ^ 0x01;
  return c;
}

/** A bundle as the JSON Lines file `handrail audit export` writes. */
export function bundleText(b: Bundle): string {
  const b64 = (x: Uint8Array): string => Buffer.from(x).toString('base64');
  const lines = [JSON.stringify(b.header)];
  for (const r of b.records) lines.push(JSON.stringify({ t: 'record', seq: r.seq, kid: r.kid, payload: b64(r.payload), sig: b64(r.sig) }));
  for (const [id, o] of b.outputs) {
    if (o.stdout.length > 0) lines.push(JSON.stringify({ t: 'output', stepRunId: id, stream: 'stdout', data: b64(o.stdout) }));
    if (o.stderr.length > 0) lines.push(JSON.stringify({ t: 'output', stepRunId: id, stream: 'stderr', data: b64(o.stderr) }));
  }
  for (const c of b.checkpoints) lines.push(JSON.stringify({ t: 'checkpoint', kid: c.kid, payload: b64(c.payload), sig: b64(c.sig) }));
  return lines.join('\n') + '\n';
}

/** A checkpoint as the line `handrail audit checkpoint` prints. */
export function checkpointLine(c: BundleCheckpoint): string {
  return JSON.stringify({ checkpoint: Buffer.from(c.payload).toString('base64'), kid: c.kid, sig: Buffer.from(c.sig).toString('base64') });
}
