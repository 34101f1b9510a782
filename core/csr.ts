/** Agent-side CSR creation: the private key stays with the caller; only the CSR leaves. */
import { createPublicKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { forgeSigner } from './rsa-forge-signer.js';

export function createCsr(privateKey: KeyObject, commonName: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString());
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(forgeSigner(privateKey), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
