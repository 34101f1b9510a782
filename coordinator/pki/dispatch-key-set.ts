/**
 * The signed statement of which keys sign step envelopes, as agents receive it at enrollment
 * (signed by the CA and the dispatch key), on every connection and at renewal (signed by the
 * dispatch key alone, so the CA key is needed only when an agent enrolls).
 */
import { CA_SIGNER, signDispatchKeySet, type SignedDispatchKeySet } from '../../core/dispatch-key-set.js';
import { encodeDispatchKeySet } from '../../proto/codec/dispatch-key-set-codec.js';
import type { CertificateAuthority } from './ca.js';
import type { Keyring } from './keyring.js';

export async function currentDispatchKeySet(keyring: Keyring, now: number, ca?: CertificateAuthority): Promise<SignedDispatchKeySet> {
  const live = (await keyring.publicKeys('dispatch')).filter((k) => k.retiredAt === null);
  const active = keyring.active('dispatch');
  // The newest key's creation time: it grows with every rotation, and needs no counter of its own.
  const version = Math.max(1, ...live.map((k) => k.createdAt));
  const payload = encodeDispatchKeySet({ version, issuedAtMs: now, keys: live.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })) });
  const signers = [{ signer: active.keyId, privateKey: active.privateKey }];
  if (ca) signers.push({ signer: CA_SIGNER, privateKey: ca.caKey });
  return signDispatchKeySet(payload, signers);
}
