/**
 * Which CAs this agent trusts — for the coordinator's server certificate and for its own
 * renewed certificates — and the only way that changes: a signed CA bundle judged by
 * core/ca-bundle.ts, written to identity/ca.pem (then its version to agent.json) before it is
 * used. The CA pinned at enrollment is version 0.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { judgeCaBundle, splitPems, type CaBundle, type CaBundleVerdict, type SignedCaBundle, type TrustedCas } from '../core/ca-bundle.js';

export interface CaTrustDeps {
  /** identity/ca.pem as read at start (one or more CA certificates). */
  readonly caPem: string;
  readonly version: number;
  readonly decode: (payload: Uint8Array) => CaBundle;
  /** Writes the CA file, then the version: a crash between leaves a newer file, which the same bundle repairs. */
  readonly persist: (caPem: string, version: number) => Promise<void>;
}

export class CaTrust {
  private pems: string[];
  private version: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: CaTrustDeps) {
    this.pems = splitPems(d.caPem);
    this.version = d.version;
  }

  /** The trusted CAs as one PEM text (TLS trust, renewal checks). */
  pem(): string {
    return this.pems.join('');
  }

  publicKeys(): KeyObject[] {
    return this.pems.map((p) => createPublicKey(p));
  }

  get trusted(): TrustedCas {
    return { version: this.version, caPems: this.pems };
  }

  /** Judges a signed bundle against what is trusted now and the agent's own certificate; a newer, valid one is saved, then used. */
  offer(signed: SignedCaBundle, ownCertPem: string): Promise<CaBundleVerdict> {
    const next = this.queue.then(async (): Promise<CaBundleVerdict> => {
      const verdict = judgeCaBundle({ signed, decode: this.d.decode, current: this.trusted, ownCertPem });
      if (!verdict.ok || !verdict.changed) return verdict;
      const pems = verdict.bundle.caPems.map((p) => `${p.trim()}\n`);
      await this.d.persist(pems.join(''), verdict.bundle.version);
      this.pems = pems;
      this.version = verdict.bundle.version;
      return verdict;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
