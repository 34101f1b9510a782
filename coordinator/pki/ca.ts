/**
 * The coordinator's certificate authority (node-forge for X.509, node:crypto for keys and
 * signatures). It issues the coordinator's server certificate and short-lived agent client
 * certificates from agent-made CSRs. Files in the certs dir: ca.pem, ca.key, server.pem,
 * server.key (keys 0600).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { access, chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import { failedPrecondition, invalidArgument } from '../../core/errors.js';
import { caFingerprint, issuedBy } from '../../core/ca-bundle.js';
import { forgeSigner } from '../../core/rsa-forge-signer.js';
import { normalizeSerial } from '../../core/x509-serial.js';

export { normalizeSerial };

export const CA_FILES = { caCert: 'ca.pem', caKey: 'ca.key', serverCert: 'server.pem', serverKey: 'server.key' } as const;

/** A DNS name every server certificate carries, so agents that dial an IP can verify a name. */
export const COORDINATOR_TLS_NAME = 'handrail-coordinator';

export interface CertificateAuthority {
  /** The CA that issues (agent certificates, the server certificate): ca.pem. */
  readonly caCertPem: string;
  readonly caKey: KeyObject;
  readonly caCert: forge.pki.Certificate;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  /** The next CA of a planned roll-over (ca-next.pem), if any. */
  readonly nextCaCertPem: string | undefined;
  /** The CA a roll-over switched away from (ca-previous.pem), trusted until `ca retire`. */
  readonly previousCaCertPem: string | undefined;
  /** Every CA agent client certificates may chain to, PEM, issuing CA first. */
  readonly trustedCaPems: readonly string[];
  /** The same, as one PEM text (for TLS). */
  readonly trustPem: string;
  /**
   * The CA bundle agents are sent (ca-bundle.json: its version; its CAs are trustedCaPems),
   * and the CA keys that sign it. Undefined when no roll-over ever happened.
   */
  readonly bundle: CaBundleState | undefined;
}

export interface CaBundleState {
  readonly version: number;
  readonly caPems: readonly string[];
  readonly signers: ReadonlyArray<{ readonly caPem: string; readonly privateKey: KeyObject }>;
}

export interface IssuedCertificate {
  readonly pem: string;
  /** Upper-case hex without leading zeros: how Node's TLS layer reports it. */
  readonly serial: string;
  readonly fingerprint256: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface InitCaOptions {
  certsDir: string;
  /** Extra subject alternative names for the server certificate (DNS names or IPs). */
  sans?: readonly string[];
  force?: boolean;
  now?: number;
  caValidityDays?: number;
  serverValidityDays?: number;
  organization?: string;
}

export async function initCa(options: InitCaOptions): Promise<{ files: string[]; sans: string[] }> {
  const dir = options.certsDir;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const files = Object.values(CA_FILES).map((f) => join(dir, f));
  if (!options.force) {
    for (const f of files) {
      if (await exists(f)) {
        throw failedPrecondition(`${f} already exists`, 'pass --force to replace the CA; every enrolled agent will then have to enroll again');
      }
    }
  }
  // A new CA ends any roll-over of the old one.
  for (const f of [...Object.values(CA_NEXT_FILES), ...Object.values(CA_PREVIOUS_FILES), CA_BUNDLE_FILE]) await rm(join(dir, f), { force: true });
  const now = options.now ?? Date.now();
  const org = options.organization ?? 'Handrail';
  const { caKeys, caCert, caCertPem } = makeCaCertificate(org, now, options.caValidityDays ?? 3650);

  const sans = defaultSans(options.sans ?? []);
  const server = issueServerCertificate({ caCert, caKey: caKeys.privateKey }, sans, now, options.serverValidityDays ?? 397, org);

  await writeSecret(join(dir, CA_FILES.caKey), caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  await writeSecret(join(dir, CA_FILES.serverKey), server.keyPem);
  await writeFile(join(dir, CA_FILES.caCert), caCertPem, { mode: 0o644 });
  await writeFile(join(dir, CA_FILES.serverCert), server.certPem + caCertPem, { mode: 0o644 });
  return { files, sans };
}

/**
 * Loads the CA files of the certs dir and checks they fit together (each key matches its
 * certificate, the server certificate chains to the issuing CA, ca-bundle.json names exactly the
 * CAs present). A roll-over step writes several files; a running coordinator that reads them
 * half-written gets an error here and keeps what it had until the next read.
 */
/** The coordinator's server certificate (TLS for agents and, with --http-tls, HTTPS), issued by `ca`. */
export function issueServerCertificate(ca: { caCert: forge.pki.Certificate; caKey: KeyObject }, sans: readonly string[], now: number, days: number, org: string): { certPem: string; keyPem: string } {
  const serverKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const server = forge.pki.createCertificate();
  server.publicKey = forge.pki.publicKeyFromPem(serverKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  server.serialNumber = newSerialHex();
  server.validity.notBefore = new Date(now - 5 * 60_000);
  server.validity.notAfter = new Date(now + days * 86_400_000);
  server.setSubject([
    { name: 'commonName', value: COORDINATOR_TLS_NAME },
    { name: 'organizationName', value: org },
  ]);
  server.setIssuer(ca.caCert.subject.attributes);
  server.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(forgeSigner(ca.caKey), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(server), keyPem: serverKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export async function loadCa(certsDir: string): Promise<CertificateAuthority> {
  const path = (f: string): string => join(certsDir, f);
  const read = async (f: string): Promise<string> => {
    try {
      return await readFile(path(f), 'utf8');
    } catch {
      throw failedPrecondition(`missing ${path(f)}`, 'run `handrail ca init` first (or point --certs-dir at the CA)');
    }
  };
  const optional = (f: string): Promise<string | undefined> => readFile(path(f), 'utf8').catch(() => undefined);
  const caCertPem = await read(CA_FILES.caCert);
  const caKey = createPrivateKey(await read(CA_FILES.caKey));
  const serverCertPem = await read(CA_FILES.serverCert);
  const serverKeyPem = await read(CA_FILES.serverKey);
  const nextCaCertPem = await optional(CA_NEXT_FILES.caCert);
  const previousCaCertPem = await optional(CA_PREVIOUS_FILES.caCert);
  const bundleText = await optional(CA_BUNDLE_FILE);
  const caX = new X509Certificate(caCertPem);
  if (!caX.checkPrivateKey(caKey)) throw failedPrecondition(`${path(CA_FILES.caKey)} is not the key of ${path(CA_FILES.caCert)}`, 'a CA roll-over step may be half done: see `handrail ca status`');
  const serverX = new X509Certificate(serverCertPem);
  if (!serverX.checkPrivateKey(createPrivateKey(serverKeyPem))) throw failedPrecondition(`${path(CA_FILES.serverKey)} is not the key of ${path(CA_FILES.serverCert)}`, 'a CA roll-over step may be half done: see `handrail ca status`');
  if (!issuedBy(serverX, caX)) throw failedPrecondition(`${path(CA_FILES.serverCert)} is not issued by ${path(CA_FILES.caCert)}`, 'a CA roll-over step may be half done: see `handrail ca status`');
  const trustedCaPems = [caCertPem, ...(nextCaCertPem ? [nextCaCertPem] : []), ...(previousCaCertPem ? [previousCaCertPem] : [])];
  const signers: Array<{ caPem: string; privateKey: KeyObject }> = [{ caPem: caCertPem, privateKey: caKey }];
  for (const [pem, keyFile] of [
    [nextCaCertPem, CA_NEXT_FILES.caKey],
    [previousCaCertPem, CA_PREVIOUS_FILES.caKey],
  ] as const) {
    if (!pem) continue;
    const key = createPrivateKey(await read(keyFile));
    if (!new X509Certificate(pem).checkPrivateKey(key)) throw failedPrecondition(`${path(keyFile)} does not match its CA certificate`, 'a CA roll-over step may be half done: see `handrail ca status`');
    signers.push({ caPem: pem, privateKey: key });
  }
  let bundle: CaBundleState | undefined;
  if (bundleText !== undefined) {
    const file = parseBundleFile(bundleText, path(CA_BUNDLE_FILE));
    const present = trustedCaPems.map(caFingerprint);
    if (file.fingerprints.length !== present.length || !present.every((f) => file.fingerprints.includes(f))) {
      throw failedPrecondition(`${path(CA_BUNDLE_FILE)} names other CAs than the certs dir holds`, 'a CA roll-over step may be half done: see `handrail ca status`');
    }
    bundle = { version: file.version, caPems: trustedCaPems, signers };
  }
  return {
    caCertPem,
    nextCaCertPem,
    previousCaCertPem,
    trustedCaPems,
    trustPem: trustedCaPems.map((p) => p.trim()).join('\n') + '\n',
    bundle,
    caKey,
    caCert: forge.pki.certificateFromPem(caCertPem),
    serverCertPem,
    serverKeyPem,
  };
}

/** ca-bundle.json: the version of the CA bundle agents are sent, and the CAs it holds. */
export interface CaBundleFile {
  readonly version: number;
  readonly fingerprints: readonly string[];
}

export function parseBundleFile(text: string, where: string): CaBundleFile {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw failedPrecondition(`${where} is not JSON`, 'restore it from a backup, or see `handrail ca status`');
  }
  const o = v as { version?: unknown; fingerprints?: unknown };
  if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1 || !Array.isArray(o.fingerprints) || !o.fingerprints.every((f) => typeof f === 'string')) {
    throw failedPrecondition(`${where} does not hold a version and a list of fingerprints`, 'restore it from a backup, or see `handrail ca status`');
  }
  return { version: o.version, fingerprints: o.fingerprints as string[] };
}

export interface ParsedCsr {
  readonly commonName: string;
  readonly publicKeyPem: string;
  readonly publicKeyBits: number;
}

/** Parses and checks a CSR: well-formed PEM, self-signature valid, RSA key of at least 2048 bits. */
export function parseCsr(csrPem: string): ParsedCsr {
  if (csrPem.length > 16_384) throw invalidArgument('CSR is too large');
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    throw invalidArgument(`CSR is not a valid PEM PKCS#10 request: ${(e as Error).message}`);
  }
  let signatureOk = false;
  try {
    signatureOk = csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) throw invalidArgument('CSR signature does not verify');
  const pub = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!pub || typeof pub.n?.bitLength !== 'function') throw invalidArgument('CSR must carry an RSA public key');
  const bits = pub.n.bitLength();
  if (bits < 2048) throw invalidArgument(`CSR key is ${bits} bits; at least 2048 are required`);
  const cn = csr.subject.getField('CN') as { value?: unknown } | null;
  const commonName = typeof cn?.value === 'string' ? cn.value : '';
  return { commonName, publicKeyPem: forge.pki.publicKeyToPem(pub), publicKeyBits: bits };
}

/**
 * Validity of a new agent certificate: backdated a little for clock skew (at most a minute,
 * and at most a tenth of the lifetime, so that short test lifetimes still renew sensibly).
 */
export function agentCertValidity(now: number, ttlMs: number): { notBefore: number; notAfter: number } {
  return { notBefore: now - Math.min(60_000, Math.floor(ttlMs / 10)), notAfter: now + ttlMs };
}

/** Issues an agent client certificate: CN = agent id, clientAuth only. */
export function issueAgentCertificate(
  ca: CertificateAuthority,
  csr: ParsedCsr,
  agentId: string,
  validity: { notBefore: number; notAfter: number },
): IssuedCertificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(csr.publicKeyPem);
  cert.serialNumber = newSerialHex();
  cert.validity.notBefore = new Date(validity.notBefore);
  cert.validity.notAfter = new Date(validity.notAfter);
  cert.setSubject([
    { name: 'commonName', value: agentId },
    { name: 'organizationName', value: 'Handrail' },
    { name: 'organizationalUnitName', value: 'agent' },
  ]);
  cert.setIssuer(ca.caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 6, value: `urn:handrail:agent:${agentId}` }] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forgeSigner(ca.caKey), forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  const x = new X509Certificate(pem);
  return {
    pem,
    serial: normalizeSerial(x.serialNumber),
    fingerprint256: x.fingerprint256,
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
  };
}

/** The subject alternative name that marks a monitoring probe's certificate (issued only by `ca issue-probe`). */
export const PROBE_URN_PREFIX = 'urn:handrail:probe:';

/**
 * The subject's common name as X509Certificate.subject prints it (one `key=value` per line,
 * RFC 2253 escapes, control characters escaped, so no value can fake a line): '' when it has
 * none or more than one, as for getPeerCertificate()'s subject.CN not being a string.
 */
export function subjectCommonName(subject: string | undefined): string {
  const cns = (subject ?? '').split('\n').filter((l) => l.startsWith('CN='));
  return cns.length === 1 ? (cns[0] as string).slice(3) : '';
}

/** Whether a peer certificate (as Node reports subjectaltname) is a probe's: health and reflection only, never an agent stream. */
export function isProbeCertificate(subjectAltName: string | undefined): boolean {
  return (subjectAltName ?? '').split(', ').some((n) => n.startsWith(`URI:${PROBE_URN_PREFIX}`));
}

/**
 * A client certificate for a monitoring probe (grpc.health.v1, reflection on the agent port):
 * CN probe-<name>, OU probe, SAN urn:handrail:probe:<name>. The gateway routes it to health and
 * reflection and refuses it an agent stream; no agent certificate carries that name.
 */
export function issueProbeCertificate(ca: CertificateAuthority, name: string, publicKeyPem: string, validity: { notBefore: number; notAfter: number }): IssuedCertificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = newSerialHex();
  cert.validity.notBefore = new Date(validity.notBefore);
  cert.validity.notAfter = new Date(validity.notAfter);
  cert.setSubject([
    { name: 'commonName', value: `probe-${name}` },
    { name: 'organizationName', value: 'Handrail' },
    { name: 'organizationalUnitName', value: 'probe' },
  ]);
  cert.setIssuer(ca.caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 6, value: `${PROBE_URN_PREFIX}${name}` }] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forgeSigner(ca.caKey), forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert);
  const x = new X509Certificate(pem);
  return { pem, serial: normalizeSerial(x.serialNumber), fingerprint256: x.fingerprint256, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
}

export function makeCaCertificate(org: string, now: number, days: number, label = ''): { caKeys: { privateKey: KeyObject; publicKey: KeyObject }; caCert: forge.pki.Certificate; caCertPem: string } {
  const caKeys = generateKeyPairSync('rsa', { modulusLength: 3072 });
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = forge.pki.publicKeyFromPem(caKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  caCert.serialNumber = newSerialHex();
  caCert.validity.notBefore = new Date(now - 5 * 60_000);
  caCert.validity.notAfter = new Date(now + days * 86_400_000);
  const caSubject = [
    { name: 'commonName', value: `${org} Handrail CA${label}` },
    { name: 'organizationName', value: org },
  ];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(forgeSigner(caKeys.privateKey), forge.md.sha256.create());
  return { caKeys, caCert, caCertPem: forge.pki.certificateToPem(caCert) };
}

/** The CA that takes over in a roll-over (`handrail ca rotate`), beside the current one. */
export const CA_NEXT_FILES = { caCert: 'ca-next.pem', caKey: 'ca-next.key' } as const;
/** The CA a roll-over switched away from (`handrail ca switch`), trusted until `handrail ca retire`. */
export const CA_PREVIOUS_FILES = { caCert: 'ca-previous.pem', caKey: 'ca-previous.key' } as const;
/** The version and CAs of the bundle agents are sent (written last by each roll-over step). */
export const CA_BUNDLE_FILE = 'ca-bundle.json';

export interface CaSummary {
  readonly fingerprint256: string;
  readonly subject: string;
  readonly notAfter: string;
}

export function caSummary(pem: string): CaSummary {
  const x = new X509Certificate(pem);
  return { fingerprint256: x.fingerprint256, subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() };
}

function newSerialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x10; // positive, and no leading zero byte to strip
  return b.toString('hex');
}

function defaultSans(extra: readonly string[]): string[] {
  const all = ['localhost', '127.0.0.1', '::1', COORDINATOR_TLS_NAME, ...extra];
  return [...new Set(all.map((s) => s.trim()).filter((s) => s.length > 0))];
}

export async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
