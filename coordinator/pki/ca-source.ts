/**
 * The coordinator's CA as the certs dir holds it now. `handrail ca rotate|switch|retire` change
 * the files from another process; the gateway calls refresh() about once a second and takes up
 * a change (new trust, new server certificate, new issuing CA, new bundle) without a restart.
 * Files caught half-written fail loadCa's checks and the CA loaded before stays in use.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { caFingerprint, issuedBy, signCaBundle, type SignedCaBundle } from '../../core/ca-bundle.js';
import { encodeCaBundle } from '../../proto/codec/ca-bundle-codec.js';
import { CA_BUNDLE_FILE, CA_FILES, CA_NEXT_FILES, CA_PREVIOUS_FILES, loadCa, type CertificateAuthority } from './ca.js';

const WATCHED = [...Object.values(CA_FILES), ...Object.values(CA_NEXT_FILES), ...Object.values(CA_PREVIOUS_FILES), CA_BUNDLE_FILE];

export class CaSource {
  private digest = '';
  private signed: { version: number; bundle: SignedCaBundle } | undefined;
  /** The trusted CAs parsed once per CA change: issuerOf runs for every agent stream. */
  private trusted: ReadonlyArray<{ readonly x509: X509Certificate; readonly fingerprint: string }>;

  private constructor(
    private readonly certsDir: string,
    private ca: CertificateAuthority,
  ) {
    this.trusted = parseTrusted(ca);
  }

  static async open(certsDir: string): Promise<CaSource> {
    const s = new CaSource(certsDir, await loadCa(certsDir));
    s.digest = await s.filesDigest();
    return s;
  }

  /** For a CA made in memory (tests, tools): never refreshed from disk. */
  static fixed(ca: CertificateAuthority): CaSource {
    return new CaSource('', ca);
  }

  get current(): CertificateAuthority {
    return this.ca;
  }

  /** Rereads the certs dir; resolves true when the CA changed (and was taken up). Throws when the files do not fit together. */
  async refresh(): Promise<boolean> {
    if (this.certsDir === '') return false;
    const digest = await this.filesDigest();
    if (digest === this.digest) return false;
    const ca = await loadCa(this.certsDir);
    this.trusted = parseTrusted(ca);
    this.ca = ca;
    this.digest = digest;
    return true;
  }

  /** The signed bundle agents are sent (signed once per version), or undefined if no roll-over ever happened. */
  signedBundle(): SignedCaBundle | undefined {
    const b = this.ca.bundle;
    if (!b) return undefined;
    if (this.signed?.version !== b.version) {
      const payload = encodeCaBundle({ version: b.version, issuedAtMs: b.version, caPems: b.caPems });
      this.signed = { version: b.version, bundle: signCaBundle(payload, b.signers) };
    }
    return this.signed.bundle;
  }

  /** SHA-256 fingerprint (hex) of the trusted CA that issued a certificate (DER), or undefined if none did. */
  issuerOf(certDer: Buffer): string | undefined {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certDer);
    } catch {
      return undefined;
    }
    return this.signerOf(cert);
  }

  /**
   * The same for a certificate whose chain the TLS handshake has verified against the trusted
   * CAs: which of them issued it is told by name and key identifier (checkIssued, as the
   * handshake found it), and a signature is checked only when more than one would fit. This
   * runs for every agent connection, where parsing the DER again and an RSA verification cost
   * about 210 µs on 2 cores (bench/peer-certificate measures the whole read).
   */
  issuerOfVerified(cert: X509Certificate): string | undefined {
    let match: { readonly fingerprint: string } | undefined;
    for (const t of this.trusted) {
      if (!cert.checkIssued(t.x509)) continue;
      if (match) return this.signerOf(cert);
      match = t;
    }
    return match?.fingerprint;
  }

  /** The trusted CA whose signature the certificate carries (name, key identifier and signature checked). */
  private signerOf(cert: X509Certificate): string | undefined {
    return this.trusted.find(({ x509 }) => issuedBy(cert, x509))?.fingerprint;
  }

  trustedFingerprints(): string[] {
    return this.trusted.map((t) => t.fingerprint);
  }

  private async filesDigest(): Promise<string> {
    const h = createHash('sha256');
    for (const f of WATCHED) h.update(f).update('\0').update((await readFile(join(this.certsDir, f)).catch(() => Buffer.alloc(0))) as Uint8Array).update('\0');
    return h.digest('hex');
  }
}

function parseTrusted(ca: CertificateAuthority): Array<{ x509: X509Certificate; fingerprint: string }> {
  return ca.trustedCaPems.map((pem) => ({ x509: new X509Certificate(pem), fingerprint: caFingerprint(pem) }));
}
