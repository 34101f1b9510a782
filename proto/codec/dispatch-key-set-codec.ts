/** Wire mapping of the signed dispatch key set (core/dispatch-key-set.ts holds the rules). */
import { DispatchKeySet as WireKeySet, type SignedDispatchKeySet as WireSignedKeySet } from '../gen/handrail/v1/common.js';
import type { DispatchKeySet, SignedDispatchKeySet } from '../../core/dispatch-key-set.js';
import { buf } from './step-codec.js';

export function encodeDispatchKeySet(s: DispatchKeySet): Uint8Array {
  return WireKeySet.encode({ version: s.version, issuedAtMs: s.issuedAtMs, keys: s.keys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })) }).finish();
}

export function decodeDispatchKeySet(bytes: Uint8Array): DispatchKeySet {
  const w = WireKeySet.decode(bytes);
  return { version: w.version, issuedAtMs: w.issuedAtMs, keys: w.keys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })) };
}

export function signedKeySetFromWire(w: WireSignedKeySet): SignedDispatchKeySet {
  return { payload: w.payload, signatures: w.signatures.map((s) => ({ signer: s.signer, signature: s.signature })) };
}

export function signedKeySetToWire(s: SignedDispatchKeySet): WireSignedKeySet {
  return { payload: buf(s.payload), signatures: s.signatures.map((x) => ({ signer: x.signer, signature: buf(x.signature) })) };
}
