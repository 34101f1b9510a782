/**
 * Ed25519 signing and verifying for the coordinator's own keys (dispatch envelopes, audit
 * records, checkpoints) and for audit verification. libsodium (sodium-native, prebuilt) when it
 * loads: on this machine it signs about 1.9x and verifies about 1.8x as fast as OpenSSL 3.0
 * through node:crypto, and both are on hot paths (three signatures per step; every record on
 * verify). RFC 8032 signatures are deterministic, so both produce the same bytes; node:crypto is
 * the fallback wherever the addon is missing. Non-Ed25519 keys always go to node:crypto.
 * The choice is the process's, made once at start by its entry point (cli/ maps
 * HANDRAIL_ED25519=openssl to useEd25519Backend('openssl')); nothing here reads the environment.
 */
import { createRequire } from 'node:module';
import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';

interface Sodium {
  crypto_sign_detached(signature: Buffer, message: Uint8Array, secretKey: Buffer): void;
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Buffer): boolean;
}

const SIGNATURE_BYTES = 64;
const require = createRequire(import.meta.url);
let sodium: Sodium | null | undefined;
let choice: Ed25519Choice = 'auto';

/** `auto` (the default): libsodium where the addon loads, else OpenSSL; `openssl`: always node:crypto. */
export type Ed25519Choice = 'auto' | 'openssl';

/** Sets which implementation this process uses; call it at start, before the first signature. */
export function useEd25519Backend(c: Ed25519Choice): void {
  choice = c;
  sodium = undefined;
}

function loadSodium(): Sodium | null {
  if (sodium === undefined) {
    try {
      sodium = choice === 'openssl' ? null : (require('sodium-native') as Sodium);
    } catch {
      sodium = null;
    }
  }
  return sodium;
}

/** Which implementation signs and verifies in this process. */
export function ed25519Backend(): 'libsodium' | 'openssl' {
  return loadSodium() ? 'libsodium' : 'openssl';
}

/** Where the addon lives, for worker threads (an eval'd worker resolves modules from the cwd). */
export function sodiumModulePath(): string | null {
  if (!loadSodium()) return null;
  try {
    return require.resolve('sodium-native');
  } catch {
    return null;
  }
}

// Raw key bytes, derived once per key object.
const secretKeys = new WeakMap<KeyObject, Buffer>();
const publicKeys = new WeakMap<KeyObject, Buffer>();

/** libsodium's 64-byte secret key (seed, then public key) for an Ed25519 private key; cached per key. */
export function ed25519SecretKey(key: KeyObject): Buffer {
  let sk = secretKeys.get(key);
  if (!sk) {
    const jwk = key.export({ format: 'jwk' });
    // libsodium's secret key is the 32-byte seed followed by the 32-byte public key.
    sk = Buffer.concat([Buffer.from(jwk.d as string, 'base64url'), Buffer.from(jwk.x as string, 'base64url')]);
    secretKeys.set(key, sk);
  }
  return sk;
}

export function rawPublicKey(key: KeyObject): Buffer {
  let pk = publicKeys.get(key);
  if (!pk) {
    pk = Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url');
    publicKeys.set(key, pk);
  }
  return pk;
}

export function ed25519Sign(message: Uint8Array, privateKey: KeyObject): Buffer {
  const lib = loadSodium();
  if (!lib || privateKey.asymmetricKeyType !== 'ed25519') return nodeSign(null, message, privateKey);
  const signature = Buffer.allocUnsafe(SIGNATURE_BYTES);
  lib.crypto_sign_detached(signature, message, ed25519SecretKey(privateKey));
  return signature;
}

/** False for a wrong-length or otherwise unusable signature, never an exception. */
export function ed25519Verify(message: Uint8Array, publicKey: KeyObject, signature: Uint8Array): boolean {
  const lib = loadSodium();
  try {
    if (!lib || publicKey.asymmetricKeyType !== 'ed25519') return nodeVerify(null, message, publicKey, signature);
    if (signature.length !== SIGNATURE_BYTES) return false;
    return lib.crypto_sign_verify_detached(signature, message, rawPublicKey(publicKey));
  } catch {
    return false;
  }
}
