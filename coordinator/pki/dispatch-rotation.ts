/**
 * When a dispatch key rotation may move on, decided from what agents acknowledged. Pure: the
 * CLI (`handrail keys rotate|retire dispatch`) reads the store and acts on the answer.
 *
 * A rotation publishes a new key (agents learn it; it signs nothing), switches signing to it
 * once every online agent holds a set that names it, and retires the old key later, once no
 * agent still needs it and no step it signed can still be delivered. Offline agents take the
 * new set when they reconnect, before any step it signs (the set is signed by every live key).
 */
import type { DispatchKeyHolder } from '../registry/agent-registry.js';

export type { DispatchKeyHolder };

/** Agents whose acknowledged set is older than `version` (null: never acknowledged one). */
export function agentsLacking(holders: readonly DispatchKeyHolder[], version: number, scope: 'online' | 'all'): DispatchKeyHolder[] {
  return holders.filter((h) => (scope === 'all' || h.online) && (h.version === null || h.version < version));
}

export interface SwitchInput {
  readonly holders: readonly DispatchKeyHolder[];
  /** The key set version that first named the new key. */
  readonly version: number;
  readonly waitedMs: number;
  readonly waitMs: number;
  readonly force: boolean;
}

export type SwitchDecision =
  | { readonly kind: 'switch'; readonly forced: false; readonly lacking: readonly DispatchKeyHolder[] }
  | { readonly kind: 'switch'; readonly forced: true; readonly lacking: readonly DispatchKeyHolder[] }
  | { readonly kind: 'wait'; readonly lacking: readonly DispatchKeyHolder[] }
  | { readonly kind: 'timed_out'; readonly lacking: readonly DispatchKeyHolder[] };

/** Switch signing when every online agent holds the new key; after the wait, only if forced. */
export function decideSwitch(i: SwitchInput): SwitchDecision {
  const lacking = agentsLacking(i.holders, i.version, 'online');
  if (lacking.length === 0) return { kind: 'switch', forced: false, lacking };
  if (i.waitedMs < i.waitMs) return { kind: 'wait', lacking };
  return i.force ? { kind: 'switch', forced: true, lacking } : { kind: 'timed_out', lacking };
}

export interface RetireInput {
  readonly holders: readonly DispatchKeyHolder[];
  /** The set version that first named the active key. */
  readonly activeVersion: number;
  /** When the active key started signing (null: it never switched; nothing can be retired). */
  readonly signingSince: number | null;
  readonly now: number;
  /** How long a signed step stays deliverable (the coordinator's --request-ttl). */
  readonly requestTtlMs: number;
  readonly force: boolean;
}

export type RetireDecision =
  | { readonly kind: 'retire'; readonly forced: boolean; readonly lacking: readonly DispatchKeyHolder[] }
  | { readonly kind: 'refuse'; readonly reason: string; readonly lacking: readonly DispatchKeyHolder[] };

/**
 * Retire the keys before the active one when no enrolled agent lacks the active key (online or
 * not: an agent that never took it would trust no signer afterwards) and the last step signed
 * with an old key has expired. `force` overrides both and says whom it leaves behind.
 */
export function decideRetire(i: RetireInput): RetireDecision {
  const lacking = agentsLacking(i.holders, i.activeVersion, 'all');
  if (i.signingSince === null) return { kind: 'refuse', reason: 'the active key has not switched yet: finish `handrail keys rotate dispatch` first', lacking };
  if (i.force) return { kind: 'retire', forced: lacking.length > 0, lacking };
  if (lacking.length > 0) {
    return { kind: 'refuse', reason: `${lacking.length} agent(s) do not hold the active key yet and would trust no signer afterwards: ${names(lacking)}`, lacking };
  }
  const left = i.signingSince + i.requestTtlMs - i.now;
  if (left > 0) return { kind: 'refuse', reason: `steps signed with the old key may still be delivered for ${Math.ceil(left / 1000)} s (the request TTL)`, lacking };
  return { kind: 'retire', forced: false, lacking };
}

export function names(holders: readonly DispatchKeyHolder[], max = 10): string {
  const shown = holders.slice(0, max).map((h) => `${h.name} (${h.agentId}${h.online ? '' : ', offline'})`);
  return holders.length > max ? `${shown.join(', ')} and ${holders.length - max} more` : shown.join(', ');
}
