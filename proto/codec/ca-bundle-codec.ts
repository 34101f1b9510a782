/** Wire mapping of the signed CA bundle (core/ca-bundle.ts holds the rules). */
import { CaBundle as WireCaBundle, type SignedCaBundle as WireSignedCaBundle } from '../gen/handrail/v1/common.js';
import type { CaBundle, SignedCaBundle } from '../../core/ca-bundle.js';
import { buf } from './step-codec.js';

export function encodeCaBundle(b: CaBundle): Uint8Array {
  return WireCaBundle.encode({ version: b.version, issuedAtMs: b.issuedAtMs, caPems: [...b.caPems] }).finish();
}

export function decodeCaBundle(bytes: Uint8Array): CaBundle {
  const w = WireCaBundle.decode(bytes);
  return { version: w.version, issuedAtMs: w.issuedAtMs, caPems: w.caPems };
}

export function signedCaBundleFromWire(w: WireSignedCaBundle): SignedCaBundle {
  return { payload: w.payload, signatures: w.signatures.map((s) => ({ signer: s.signer, signature: s.signature })) };
}

export function signedCaBundleToWire(s: SignedCaBundle): WireSignedCaBundle {
  return { payload: buf(s.payload), signatures: s.signatures.map((x) => ({ signer: x.signer, signature: buf(x.signature) })) };
}
