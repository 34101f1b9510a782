/**
 * The agent's dispatch-key trust: which Ed25519 keys may sign its steps, and the one rule for
 * changing them. A new set is a signed statement; the agent takes it only when it is newer than
 * its own and signed by a key of its current set (the CA's signature counts at enrollment, and
 * for recovery only where the host owner allowed it). An unsigned message never adds or drops
 * a key.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { signPayload, verifyPayload } from './envelope.js';

export const DISPATCH_KEY_SET_TYPE = 'application/vnd.handrail.dispatch-key-set.v1+proto';
/** The signer name of a signature made with the coordinator CA's key. */
export const CA_SIGNER = 'ca';

export const KEY_SET_LIMITS = { maxPayloadBytes: 64 * 1024, maxSignatures: 8, maxKeys: 16, maxKeyIdLength: 128 } as const;

export interface DispatchPublicKey {
  readonly keyId: string;
  readonly publicKeyPem: string;
}

export interface DispatchKeySet {
  readonly version: number;
  readonly issuedAtMs: number;
  readonly keys: readonly DispatchPublicKey[];
}

export interface TrustSignature {
  readonly signer: string;
  readonly signature: Uint8Array;
}

export interface SignedDispatchKeySet {
  readonly payload: Uint8Array;
  readonly signatures: readonly TrustSignature[];
}

/** What an agent trusts now. Version 0 is a set from before signed sets (taken at enrollment). */
export interface TrustedDispatchKeys {
  readonly version: number;
  readonly keys: readonly DispatchPublicKey[];
}

export type KeySetVerdict =
  | { readonly ok: true; readonly set: DispatchKeySet; readonly signer: string; readonly changed: boolean }
  | { readonly ok: false; readonly reason: string };

export interface JudgeKeySetInput {
  readonly signed: SignedDispatchKeySet;
  /** Decodes the payload (the wire format lives with the transport); throws when malformed. */
  readonly decode: (payload: Uint8Array) => DispatchKeySet;
  /** undefined at enrollment: then only the CA's signature can vouch for the set. */
  readonly current: TrustedDispatchKeys | undefined;
  /** The keys of the CAs the agent trusts (the pinned CA, or the CAs of its CA bundle). */
  readonly caPublicKeys: readonly KeyObject[];
  /** The host owner allowed a CA-signed set to replace the current one (lost dispatch keys). */
  readonly allowCaRecovery: boolean;
}

export function signDispatchKeySet(payload: Uint8Array, signers: ReadonlyArray<{ signer: string; privateKey: KeyObject }>): SignedDispatchKeySet {
  return { payload, signatures: signers.map((s) => ({ signer: s.signer, signature: signPayload(DISPATCH_KEY_SET_TYPE, payload, s.privateKey) })) };
}

/** Decides whether a signed set may replace what the agent trusts now. Pure: no I/O. */
export function judgeDispatchKeySet(input: JudgeKeySetInput): KeySetVerdict {
  const { signed, current } = input;
  if (signed.payload.length === 0) return refuse('the dispatch key set is empty');
  if (signed.payload.length > KEY_SET_LIMITS.maxPayloadBytes) return refuse(`the dispatch key set is ${signed.payload.length} bytes (at most ${KEY_SET_LIMITS.maxPayloadBytes})`);
  if (signed.signatures.length === 0) return refuse('the dispatch key set is not signed');
  if (signed.signatures.length > KEY_SET_LIMITS.maxSignatures) return refuse(`the dispatch key set carries ${signed.signatures.length} signatures (at most ${KEY_SET_LIMITS.maxSignatures})`);
  // Who vouches for the bytes comes first: nothing unsigned is parsed further.
  const signer = trustedSigner(input);
  if (!signer.ok) return signer;
  let set: DispatchKeySet;
  try {
    set = input.decode(signed.payload);
  } catch (e) {
    return refuse(`the dispatch key set is malformed: ${(e as Error).message}`);
  }
  const shape = keySetProblem(set);
  if (shape) return refuse(shape);

  if (current) {
    if (set.version < current.version) return refuse(`the dispatch key set has version ${set.version}, older than the trusted version ${current.version}`);
    if (set.version === current.version) {
      if (sameKeys(set.keys, current.keys)) return { ok: true, set, signer: signer.name, changed: false };
      return refuse(`the dispatch key set has the trusted version ${set.version} but other keys`);
    }
  }
  return { ok: true, set, signer: signer.name, changed: true };
}

function trustedSigner(input: JudgeKeySetInput): { ok: true; name: string } | { ok: false; reason: string } {
  const { signed, current } = input;
  const byId = new Map<string, KeyObject>();
  for (const k of current?.keys ?? []) {
    try {
      byId.set(k.keyId, createPublicKey(k.publicKeyPem));
    } catch {
      // A key the agent cannot parse vouches for nothing.
    }
  }
  const caCounts = current === undefined || input.allowCaRecovery;
  let sawCa = false;
  const signers: string[] = [];
  for (const s of signed.signatures) {
    signers.push(s.signer);
    if (s.signer === CA_SIGNER) {
      sawCa = true;
      if (caCounts && input.caPublicKeys.some((k) => verifyPayload(DISPATCH_KEY_SET_TYPE, signed.payload, s.signature, k))) return { ok: true, name: CA_SIGNER };
      continue;
    }
    const key = byId.get(s.signer);
    if (key && verifyPayload(DISPATCH_KEY_SET_TYPE, signed.payload, s.signature, key)) return { ok: true, name: s.signer };
  }
  if (current === undefined) return refuse(sawCa ? 'the dispatch key set’s CA signature does not verify against the pinned CA' : 'the dispatch key set is not signed by the pinned CA');
  const hint = sawCa && !input.allowCaRecovery ? ' (a CA signature counts only on an agent started with --allow-ca-key-recovery)' : '';
  return refuse(`the dispatch key set is not signed by a trusted dispatch key (signers: ${signers.map((n) => JSON.stringify(n.slice(0, 80))).join(', ')})${hint}`);
}

function keySetProblem(set: DispatchKeySet): string | undefined {
  if (!Number.isSafeInteger(set.version) || set.version < 1) return `the dispatch key set has an invalid version ${String(set.version)}`;
  if (set.keys.length === 0) return 'the dispatch key set names no key';
  if (set.keys.length > KEY_SET_LIMITS.maxKeys) return `the dispatch key set names ${set.keys.length} keys (at most ${KEY_SET_LIMITS.maxKeys})`;
  const ids = new Set<string>();
  for (const k of set.keys) {
    if (k.keyId.length === 0 || k.keyId.length > KEY_SET_LIMITS.maxKeyIdLength || k.keyId === CA_SIGNER) return `the dispatch key set has an invalid key id ${JSON.stringify(k.keyId.slice(0, 80))}`;
    if (ids.has(k.keyId)) return `the dispatch key set names key ${k.keyId} twice`;
    ids.add(k.keyId);
    let key: KeyObject;
    try {
      key = createPublicKey(k.publicKeyPem);
    } catch {
      return `the dispatch key set's key ${k.keyId} is not a public key`;
    }
    if (key.asymmetricKeyType !== 'ed25519') return `the dispatch key set's key ${k.keyId} is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`;
  }
  return undefined;
}

function sameKeys(a: readonly DispatchPublicKey[], b: readonly DispatchPublicKey[]): boolean {
  if (a.length !== b.length) return false;
  const m = new Map(b.map((k) => [k.keyId, k.publicKeyPem.trim()]));
  return a.every((k) => m.get(k.keyId) === k.publicKeyPem.trim());
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
