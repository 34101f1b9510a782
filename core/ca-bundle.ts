/**
 * The CA bundle of a CA roll-over: which CA certificates an agent trusts for the coordinator's
 * server certificate and for its own renewed certificates, and the one rule for changing them.
 * A new bundle is a signed statement; the agent takes it only when it is at least as new as its
 * own, signed by the key of a CA it trusts now, made of self-signed CA certificates, and still
 * holding the CA that issued the agent's own certificate (dropping that CA is retirement, which
 * comes only after the agent was renewed onto the next CA). Pure: takes values.
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { signPayload, verifyPayload } from './envelope.js';
import type { TrustSignature } from './dispatch-key-set.js';

export const CA_BUNDLE_TYPE = 'application/vnd.handrail.ca-bundle.v1+proto';
export const CA_BUNDLE_LIMITS = { maxPayloadBytes: 64 * 1024, maxSignatures: 8, maxCas: 4 } as const;

export interface CaBundle {
  readonly version: number;
  readonly issuedAtMs: number;
  readonly caPems: readonly string[];
}

export interface SignedCaBundle {
  readonly payload: Uint8Array;
  readonly signatures: readonly TrustSignature[];
}

/** What an agent trusts now. Version 0: the CA pinned at enrollment, before any bundle. */
export interface TrustedCas {
  readonly version: number;
  readonly caPems: readonly string[];
}

export type CaBundleVerdict =
  | { readonly ok: true; readonly bundle: CaBundle; readonly fingerprints: readonly string[]; readonly signer: string; readonly changed: boolean }
  | { readonly ok: false; readonly reason: string };

export interface JudgeCaBundleInput {
  readonly signed: SignedCaBundle;
  /** Decodes the payload (the wire format lives with the transport); throws when malformed. */
  readonly decode: (payload: Uint8Array) => CaBundle;
  readonly current: TrustedCas;
  /** The agent's own certificate: the bundle must keep the CA that issued it. */
  readonly ownCertPem: string;
}

/** The signer name of a CA key's signature: "ca:" and the CA certificate's SHA-256 fingerprint. */
export function caSignerName(caPem: string): string {
  return `ca:${caFingerprint(caPem)}`;
}

/** SHA-256 of the certificate's DER, lower-case hex without colons. */
export function caFingerprint(caPem: string): string {
  return createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex');
}

/** Splits a PEM file into its certificates (a trust file may hold several). */
export function splitPems(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => `${p}\n`);
}

export function signCaBundle(payload: Uint8Array, signers: ReadonlyArray<{ caPem: string; privateKey: KeyObject }>): SignedCaBundle {
  return { payload, signatures: signers.map((s) => ({ signer: caSignerName(s.caPem), signature: signPayload(CA_BUNDLE_TYPE, payload, s.privateKey) })) };
}

/** Decides whether a signed bundle may replace the CAs the agent trusts now. */
export function judgeCaBundle(input: JudgeCaBundleInput): CaBundleVerdict {
  const { signed, current } = input;
  if (signed.payload.length === 0) return refuse('the CA bundle is empty');
  if (signed.payload.length > CA_BUNDLE_LIMITS.maxPayloadBytes) return refuse(`the CA bundle is ${signed.payload.length} bytes (at most ${CA_BUNDLE_LIMITS.maxPayloadBytes})`);
  if (signed.signatures.length === 0) return refuse('the CA bundle is not signed');
  if (signed.signatures.length > CA_BUNDLE_LIMITS.maxSignatures) return refuse(`the CA bundle carries ${signed.signatures.length} signatures (at most ${CA_BUNDLE_LIMITS.maxSignatures})`);
  // Who vouches for the bytes comes first: nothing unsigned is parsed further.
  const signer = trustedSigner(signed, current);
  if (!signer.ok) return signer;
  let bundle: CaBundle;
  try {
    bundle = input.decode(signed.payload);
  } catch (e) {
    return refuse(`the CA bundle is malformed: ${(e as Error).message}`);
  }
  if (!Number.isSafeInteger(bundle.version) || bundle.version < 1) return refuse(`the CA bundle has an invalid version ${String(bundle.version)}`);
  const shape = shapeOf(bundle);
  if (!shape.ok) return shape;
  const fingerprints = shape.fingerprints;
  const currentFps = fingerprintsOf(current.caPems);
  if (bundle.version < current.version) return refuse(`the CA bundle has version ${bundle.version}, older than the trusted version ${current.version}`);
  const same = sameSet(fingerprints, currentFps);
  if (bundle.version === current.version && !same) return refuse(`the CA bundle has the trusted version ${bundle.version} but other CAs`);
  const own = issuerOf(input.ownCertPem, shape.certs);
  if (own === undefined) {
    const ownIssuer = issuerName(input.ownCertPem);
    return refuse(`the CA bundle drops the CA that issued this agent's certificate (${ownIssuer}): the coordinator must renew this agent onto the next CA before retiring the old one`);
  }
  return { ok: true, bundle, fingerprints, signer: signer.name, changed: !same || bundle.version !== current.version };
}

function trustedSigner(signed: SignedCaBundle, current: TrustedCas): { ok: true; name: string } | { ok: false; reason: string } {
  const byName = new Map<string, KeyObject>();
  for (const pem of current.caPems) {
    try {
      byName.set(caSignerName(pem), new X509Certificate(pem).publicKey);
    } catch {
      // A CA the agent cannot parse vouches for nothing.
    }
  }
  const signers: string[] = [];
  for (const s of signed.signatures) {
    signers.push(s.signer);
    const key = byName.get(s.signer);
    if (key && verifyPayload(CA_BUNDLE_TYPE, signed.payload, s.signature, key)) return { ok: true, name: s.signer };
  }
  return refuse(`the CA bundle is not signed by a CA this agent trusts (signers: ${signers.map((n) => JSON.stringify(n.slice(0, 80))).join(', ')})`);
}

function shapeOf(bundle: CaBundle): { ok: true; certs: X509Certificate[]; fingerprints: string[] } | { ok: false; reason: string } {
  if (bundle.caPems.length === 0) return refuse('the CA bundle names no CA');
  if (bundle.caPems.length > CA_BUNDLE_LIMITS.maxCas) return refuse(`the CA bundle names ${bundle.caPems.length} CAs (at most ${CA_BUNDLE_LIMITS.maxCas})`);
  const certs: X509Certificate[] = [];
  const fingerprints: string[] = [];
  for (const [i, pem] of bundle.caPems.entries()) {
    if (splitPems(pem).length !== 1) return refuse(`the CA bundle's entry ${i + 1} is not exactly one PEM certificate`);
    let x: X509Certificate;
    try {
      x = new X509Certificate(pem);
    } catch (e) {
      return refuse(`the CA bundle's entry ${i + 1} does not parse: ${(e as Error).message}`);
    }
    if (!x.ca) return refuse(`the CA bundle's entry ${i + 1} (${oneLine(x.subject)}) is not a CA certificate`);
    if (!issuedBy(x, x)) return refuse(`the CA bundle's entry ${i + 1} (${oneLine(x.subject)}) is not a self-signed root`);
    const fp = caFingerprint(pem);
    if (fingerprints.includes(fp)) return refuse(`the CA bundle names the CA ${fp.slice(0, 16)}… twice`);
    certs.push(x);
    fingerprints.push(fp);
  }
  return { ok: true, certs, fingerprints };
}

/** Whether `ca` issued `cert`: the names chain and the CA's key verifies the certificate's signature. */
export function issuedBy(cert: X509Certificate, ca: X509Certificate): boolean {
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

function issuerOf(certPem: string, cas: readonly X509Certificate[]): X509Certificate | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return undefined;
  }
  return cas.find((ca) => issuedBy(cert, ca));
}

function issuerName(certPem: string): string {
  try {
    return oneLine(new X509Certificate(certPem).issuer);
  } catch {
    return 'unreadable certificate';
  }
}

function fingerprintsOf(pems: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of pems) {
    try {
      out.push(caFingerprint(p));
    } catch {
      // skipped: it cannot match anything
    }
  }
  return out;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ').slice(0, 200);
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
