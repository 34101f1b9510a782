/**
 * The coordinator's certificate authority (node-forge for X.509, node:crypto for keys and
 * signatures). It issues the coordinator's server certificate and short-lived agent client
 * certificates from agent-made CSRs. Files in the certs dir: ca.pem, ca.key, server.pem,
 * server.key (keys 0600).
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import { failedPrecondition, invalidArgument } from '../../core/errors.js';
import { forgeSigner } from '../../core/rsa-forge-signer.js';
import { normalizeSerial } from '../../core/x509-serial.js';

export { normalizeSerial };

export const CA_FILES = { caCert: 'ca.pem', caKey: 'ca.key', serverCert: 'server.pem', serverKey: 'server.key' } as const;

/** A DNS name every server certificate carries, so agents that dial an IP can verify a name. */
export const COORDINATOR_TLS_NAME = 'handrail-coordinator';

export interface CertificateAuthority {
  readonly caCertPem: string;
  readonly caKey: KeyObject;
  readonly caCert: forge.pki.Certificate;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  /** The next CA of a planned roll-over (ca-next.pem), if any. */
  readonly nextCaCertPem: string | undefined;
  /** What agent client certificates may chain to: the CA, and the next one during a roll-over. */
  readonly trustPem: string;
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
  const now = options.now ?? Date.now();
  const org = options.organization ?? 'Handrail';
  const { caKeys, caCert, caCertPem } = makeCaCertificate(org, now, options.caValidityDays ?? 3650);

  const sans = defaultSans(options.sans ?? []);
  const serverKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const server = forge.pki.createCertificate();
  server.publicKey = forge.pki.publicKeyFromPem(serverKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  server.serialNumber = newSerialHex();
  server.validity.notBefore = new Date(now - 5 * 60_000);
  server.validity.notAfter = new Date(now + (options.serverValidityDays ?? 397) * 86_400_000);
  server.setSubject([
    { name: 'commonName', value: COORDINATOR_TLS_NAME },
    { name: 'organizationName', value: org },
  ]);
  server.setIssuer(caCert.subject.attributes);
  server.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: sans.map((s) => (isIP(s) ? { type: 7, ip: s } : { type: 2, value: s })),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(forgeSigner(caKeys.privateKey), forge.md.sha256.create());

  await writeSecret(join(dir, CA_FILES.caKey), caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  await writeSecret(join(dir, CA_FILES.serverKey), serverKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  await writeFile(join(dir, CA_FILES.caCert), caCertPem, { mode: 0o644 });
  await writeFile(join(dir, CA_FILES.serverCert), forge.pki.certificateToPem(server) + caCertPem, { mode: 0o644 });
  return { files, sans };
}

export async function loadCa(certsDir: string): Promise<CertificateAuthority> {
  const read = async (f: string): Promise<string> => {
    const path = join(certsDir, f);
    try {
      return await readFile(path, 'utf8');
    } catch {
      throw failedPrecondition(`missing ${path}`, 'run `handrail ca init` first (or point --certs-dir at the CA)');
    }
  };
  const caCertPem = await read(CA_FILES.caCert);
  const caKeyPem = await read(CA_FILES.caKey);
  const nextCaCertPem = await readFile(join(certsDir, CA_NEXT_FILES.caCert), 'utf8').catch(() => undefined);
  return {
    caCertPem,
    nextCaCertPem,
    trustPem: nextCaCertPem ? `${caCertPem.trim()}\n${nextCaCertPem.trim()}\n` : caCertPem,
    caKey: createPrivateKey(caKeyPem),
    caCert: forge.pki.certificateFromPem(caCertPem),
    serverCertPem: await read(CA_FILES.serverCert),
    serverKeyPem: await read(CA_FILES.serverKey),
  };
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


function makeCaCertificate(org: string, now: number, days: number, label = ''): { caKeys: { privateKey: KeyObject; publicKey: KeyObject }; caCert: forge.pki.Certificate; caCertPem: string } {
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

export interface CaSummary {
  readonly fingerprint256: string;
  readonly subject: string;
  readonly notAfter: string;
}

export function caSummary(pem: string): CaSummary {
  const x = new X509Certificate(pem);
  return { fingerprint256: x.fingerprint256, subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() };
}

/**
 * Starts a CA roll-over: a new CA (its own key, a later serial and a distinct name) written as
 * ca-next.pem / ca-next.key. From the coordinator's next start it trusts agent certificates of
 * both CAs (the overlap); ca.pem stays the CA that issues and that agents pin until the rest of
 * the roll-over (README, "CA roll-over") moves them.
 */
export async function planCaRotation(certsDir: string, now: number, days = 3650): Promise<{ current: CaSummary; next: CaSummary }> {
  const currentPem = await readFile(join(certsDir, CA_FILES.caCert), 'utf8').catch(() => {
    throw failedPrecondition(`missing ${join(certsDir, CA_FILES.caCert)}`, 'run `handrail ca init` first (or point --certs-dir at the CA)');
  });
  const nextCert = join(certsDir, CA_NEXT_FILES.caCert);
  if (await exists(nextCert)) throw failedPrecondition(`a CA roll-over is already planned (${nextCert} exists)`, 'see `handrail ca status`');
  const org = new X509Certificate(currentPem).subject.match(/^O=(.*)$/m)?.[1] ?? 'Handrail';
  const { caKeys, caCertPem } = makeCaCertificate(org, now, days, ` ${new Date(now).toISOString().slice(0, 10)}`);
  await writeSecret(join(certsDir, CA_NEXT_FILES.caKey), caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  await writeFile(nextCert, caCertPem, { mode: 0o644 });
  return { current: caSummary(currentPem), next: caSummary(caCertPem) };
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

async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
