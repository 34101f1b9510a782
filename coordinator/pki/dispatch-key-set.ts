/**
 * The signed statement of which keys sign step envelopes, as agents receive it at enrollment
 * (signed by the CA and the dispatch key), on every connection, at renewal and at rotation
 * (signed by the dispatch key alone, so the CA key is needed only when an agent enrolls).
 * Published keys that do not sign yet are in it: that is how agents learn them before use.
 */
import { CA_SIGNER, signDispatchKeySet, type SignedDispatchKeySet } from '../../core/dispatch-key-set.js';
import { encodeDispatchKeySet } from '../../proto/codec/dispatch-key-set-codec.js';
import type { CertificateAuthority } from './ca.js';
import { dispatchSetVersion, type Keyring } from './keyring.js';

export async function currentDispatchKeySet(keyring: Keyring, now: number, ca?: CertificateAuthority): Promise<SignedDispatchKeySet> {
  const all = await keyring.publicKeys('dispatch');
  const live = all.filter((k) => k.retiredAt === null);
  const signing = await keyring.liveKeys('dispatch');
  const payload = encodeDispatchKeySet({ version: dispatchSetVersion(all), issuedAtMs: now, keys: live.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })) });
  const signers = signing.map((k) => ({ signer: k.keyId, privateKey: k.privateKey }));
  if (ca) signers.push({ signer: CA_SIGNER, privateKey: ca.caKey });
  return signDispatchKeySet(payload, signers);
}
