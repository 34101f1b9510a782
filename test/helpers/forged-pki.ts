/**
 * What an attacker (or the real CA, for control cases) can make: certificates for a CSR's key
 * or any other key, from any CA, and dispatch key sets and CA bundles signed by any key or by nobody.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initCa, issueAgentCertificate, loadCa, parseCsr, type CertificateAuthority, type ParsedCsr } from '../../coordinator/pki/ca.js';
import { signDispatchKeySet, type DispatchKeySet, type SignedDispatchKeySet } from '../../core/dispatch-key-set.js';
import { encodeDispatchKeySet, signedKeySetToWire } from '../../proto/codec/dispatch-key-set-codec.js';
import type { SignedDispatchKeySet as WireSignedKeySet } from '../../proto/gen/handrail/v1/common.js';
import { workspace } from './processes.js';
import forge from 'node-forge';
import { signCaBundle, type SignedCaBundle } from '../../core/ca-bundle.js';
import { encodeCaBundle, signedCaBundleToWire } from '../../proto/codec/ca-bundle-codec.js';
import type { SignedCaBundle as WireSignedCaBundle } from '../../proto/gen/handrail/v1/common.js';

export { loadCa, parseCsr, type CertificateAuthority, type ParsedCsr };

/** A CA of the attacker's own, with the same subject names as a real one. */
export async function foreignCa(): Promise<CertificateAuthority> {
  const dir = await workspace('hr-foreign-ca-');
  await initCa({ certsDir: dir });
  return loadCa(dir);
}

export function certFor(ca: CertificateAuthority, publicKeyPem: string, agentId: string, validity: { notBefore: number; notAfter: number }): string {
  return issueAgentCertificate(ca, { commonName: agentId, publicKeyPem, publicKeyBits: 2048 }, agentId, validity).pem;
}

export function rsaPublicKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

export interface DispatchKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
}

export function newDispatchKey(keyId: string): DispatchKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The coordinator's real dispatch key, read from its data dir. */
export async function realDispatchKey(dataDir: string, keyId: string): Promise<DispatchKey> {
  const privateKey = createPrivateKey(await readFile(join(dataDir, 'keys', 'dispatch', `${keyId}.key`), 'utf8'));
  return { keyId, privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}

export function keySet(version: number, keys: readonly DispatchKey[], signers: ReadonlyArray<{ signer: string; privateKey: KeyObject }>): SignedDispatchKeySet {
  const set: DispatchKeySet = { version, issuedAtMs: Date.now(), keys: keys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })) };
  return signDispatchKeySet(encodeDispatchKeySet(set), signers);
}

export function wire(s: SignedDispatchKeySet): WireSignedKeySet {
  return signedKeySetToWire(s);
}

/** A CA from its certificate and key files (enough to issue certificates with certFor). */
export function caFromPem(caCertPem: string, caKeyPem: string): CertificateAuthority {
  return {
    caCertPem,
    caKey: createPrivateKey(caKeyPem),
    caCert: forge.pki.certificateFromPem(caCertPem),
    serverCertPem: '',
    serverKeyPem: '',
    nextCaCertPem: undefined,
    previousCaCertPem: undefined,
    trustedCaPems: [caCertPem],
    trustPem: caCertPem,
    bundle: undefined,
  };
}

/** A CA bundle as an attacker (or, for control cases, the real coordinator) can sign it. */
export function caBundle(version: number, caPems: readonly string[], signers: ReadonlyArray<{ caPem: string; privateKey: KeyObject }>): SignedCaBundle {
  return signCaBundle(encodeCaBundle({ version, issuedAtMs: Date.now(), caPems }), signers);
}

export function wireCaBundle(s: SignedCaBundle): WireSignedCaBundle {
  return signedCaBundleToWire(s);
}
