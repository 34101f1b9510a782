/**
 * When a CA roll-over may move on, decided from what agents acknowledged and which CA issued
 * their certificates. Pure: `handrail ca switch|retire|status` read the store and act on it.
 *
 * Switching the issuing CA changes the server certificate: an agent that does not trust the
 * next CA yet could no longer connect, online or not. So the switch waits for online agents to
 * acknowledge the bundle and refuses while an offline agent lacks it (unless forced). Retiring
 * the old CA locks out every agent whose certificate it issued, so that waits for renewals.
 */
import { X509Certificate } from 'node:crypto';
import type { CaBundleHolder } from '../registry/agent-registry.js';
import { names } from './dispatch-rotation.js';
import { issuedBy } from '../../core/ca-bundle.js';

export type { CaBundleHolder };

export function lackingBundle(holders: readonly CaBundleHolder[], version: number): CaBundleHolder[] {
  return holders.filter((h) => h.version === null || h.version < version);
}

export interface CaSwitchInput {
  readonly holders: readonly CaBundleHolder[];
  /** The bundle version naming the next CA. */
  readonly version: number;
  readonly waitedMs: number;
  readonly waitMs: number;
  readonly force: boolean;
}

export type CaSwitchDecision =
  | { readonly kind: 'switch'; readonly forced: boolean; readonly lacking: readonly CaBundleHolder[] }
  | { readonly kind: 'wait'; readonly lacking: readonly CaBundleHolder[] }
  | { readonly kind: 'refuse'; readonly reason: string; readonly lacking: readonly CaBundleHolder[] };

export function decideCaSwitch(i: CaSwitchInput): CaSwitchDecision {
  const lacking = lackingBundle(i.holders, i.version);
  if (lacking.length === 0) return { kind: 'switch', forced: false, lacking };
  const online = lacking.filter((h) => h.online);
  if (online.length > 0 && i.waitedMs < i.waitMs) return { kind: 'wait', lacking };
  if (i.force) return { kind: 'switch', forced: true, lacking };
  if (online.length > 0) {
    return { kind: 'refuse', reason: `${online.length} online agent(s) did not acknowledge the CA bundle within ${Math.round(i.waitMs / 1000)} s: ${names(online)}`, lacking };
  }
  return {
    kind: 'refuse',
    reason: `${lacking.length} offline agent(s) do not hold the CA bundle and could not connect after the switch: ${names(lacking)}; start them so they take it, or --force (they must then enroll again)`,
    lacking,
  };
}

/** Agents whose current certificate the CA `caPem` issued (or whose certificate is unknown). */
export function agentsIssuedBy(holders: readonly CaBundleHolder[], caPem: string): CaBundleHolder[] {
  const ca = new X509Certificate(caPem);
  return holders.filter((h) => {
    if (h.certificatePem === '') return false;
    try {
      const c = new X509Certificate(h.certificatePem);
      return issuedBy(c, ca);
    } catch {
      return false;
    }
  });
}

export type CaRetireDecision = { readonly kind: 'retire'; readonly forced: boolean; readonly leftBehind: readonly CaBundleHolder[] } | { readonly kind: 'refuse'; readonly reason: string; readonly leftBehind: readonly CaBundleHolder[] };

/** Retire the old CA once no enrolled agent holds a certificate it issued; `force` names who is left behind. */
export function decideCaRetire(onOldCa: readonly CaBundleHolder[], force: boolean): CaRetireDecision {
  if (onOldCa.length === 0) return { kind: 'retire', forced: false, leftBehind: [] };
  if (force) return { kind: 'retire', forced: true, leftBehind: onOldCa };
  return {
    kind: 'refuse',
    reason: `${onOldCa.length} agent(s) still hold a certificate from the old CA and would be locked out: ${names(onOldCa)}; they move to the new CA at their next renewal (at two thirds of --agent-cert-ttl)`,
    leftBehind: onOldCa,
  };
}
