/**
 * What this agent trusts to sign its steps, and the only way that changes: a signed key set
 * judged by core/dispatch-key-set.ts, written to the identity file before it takes effect.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { judgeDispatchKeySet, type DispatchKeySet, type KeySetVerdict, type SignedDispatchKeySet, type TrustedDispatchKeys } from '../core/dispatch-key-set.js';
import type { AgentIdentityFile } from './state-dir.js';

export interface DispatchTrustDeps {
  readonly identity: AgentIdentityFile;
  /** The keys of the CAs the agent trusts now (they change during a CA roll-over). */
  readonly caPublicKeys: () => readonly KeyObject[];
  readonly allowCaRecovery: boolean;
  readonly decode: (payload: Uint8Array) => DispatchKeySet;
  readonly persist: (identity: AgentIdentityFile) => Promise<void>;
}

export class DispatchTrust {
  private identity: AgentIdentityFile;
  private byId: Map<string, KeyObject>;
  /** Offers are judged one at a time, each against the outcome of the one before. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: DispatchTrustDeps) {
    this.identity = d.identity;
    this.byId = toKeyMap(d.identity.dispatchKeys);
  }

  keys(): ReadonlyMap<string, KeyObject> {
    return this.byId;
  }

  get trusted(): TrustedDispatchKeys {
    return { version: this.identity.dispatchKeySetVersion ?? 0, keys: this.identity.dispatchKeys };
  }

  /**
   * Resolves once every set offered so far is judged (and saved). A step that names a key this
   * agent does not know waits for it: the set that introduces the key may still be on its way
   * to disk (a reconnect after a rotation delivers the set and then the steps it signs).
   */
  settled(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  /** Judges a signed set; a newer, properly signed one is saved, then used. */
  offer(signed: SignedDispatchKeySet): Promise<KeySetVerdict> {
    const next = this.queue.then(async (): Promise<KeySetVerdict> => {
      const verdict = judgeDispatchKeySet({ signed, decode: this.d.decode, current: this.trusted, caPublicKeys: this.d.caPublicKeys(), allowCaRecovery: this.d.allowCaRecovery });
      if (!verdict.ok || !verdict.changed) return verdict;
      const identity: AgentIdentityFile = {
        ...this.identity,
        dispatchKeys: verdict.set.keys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })),
        dispatchKeySetVersion: verdict.set.version,
      };
      await this.d.persist(identity);
      this.identity = identity;
      this.byId = toKeyMap(identity.dispatchKeys);
      return verdict;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function toKeyMap(keys: ReadonlyArray<{ keyId: string; publicKeyPem: string }>): Map<string, KeyObject> {
  return new Map(keys.map((k) => [k.keyId, createPublicKey(k.publicKeyPem)]));
}
