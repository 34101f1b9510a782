/** Signing and verifying DSSE-style envelopes (Ed25519 for the coordinator, RSA for agents). */
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { pae } from './pae.js';
import { ed25519Sign } from './ed25519.js';
import type { Envelope } from './step.js';

export function signEnvelope(payloadType: string, payload: Uint8Array, key: { keyId: string; privateKey: KeyObject }): Envelope {
  return { payloadType, payload, keyId: key.keyId, signature: ed25519Sign(pae(payloadType, payload), key.privateKey) };
}

/** Ed25519 keys take no digest; RSA keys use SHA-256 (PKCS#1 v1.5). */
function digestFor(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'rsa' ? 'sha256' : null;
}

export function signPayload(payloadType: string, payload: Uint8Array, privateKey: KeyObject): Buffer {
  return sign(digestFor(privateKey), pae(payloadType, payload), privateKey);
}

export function verifyPayload(payloadType: string, payload: Uint8Array, signature: Uint8Array, publicKey: KeyObject): boolean {
  try {
    return verify(digestFor(publicKey), pae(payloadType, payload), publicKey, signature);
  } catch {
    return false;
  }
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
