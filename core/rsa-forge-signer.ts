/**
 * Lets node-forge build X.509 structures while node:crypto (native OpenSSL) does the RSA
 * private-key operation: forge's pure-JS RSA signing is ~50x slower, which matters when a
 * coordinator issues certificates for thousands of agents.
 */
import { constants, privateEncrypt, type KeyObject } from 'node:crypto';
import type forge from 'node-forge';

// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017, section 9.2 note 1).
const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** An object forge's `cert.sign()` / `csr.sign()` accept in place of a forge private key. */
export function forgeSigner(privateKey: KeyObject): forge.pki.rsa.PrivateKey {
  const signer = {
    sign(md: forge.md.MessageDigest): string {
      if (md.algorithm !== 'sha256') throw new Error(`unsupported digest ${md.algorithm}`);
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      const signature = privateEncrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]),
      );
      return signature.toString('binary');
    },
  };
  return signer as unknown as forge.pki.rsa.PrivateKey;
}
