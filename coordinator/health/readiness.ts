/**
 * Readiness (/readyz) as a pure decision over observed inputs: the store takes writes, the
 * agent gateway is listening, the runbook catalog has loaded. Each check says why it fails,
 * so a load balancer's log or an operator's curl tells what to fix.
 */

/** The coordinator's life: starting (store, catalog), serving (gateway listening), draining (shutting down). */
export type CoordinatorPhase = 'starting' | 'serving' | 'draining' | 'stopped';

export interface ReadinessInputs {
  readonly phase: CoordinatorPhase;
  /** null: a write can commit; otherwise the store's error. */
  readonly storeError: string | null;
  /** Set once the first catalog load has finished (an empty catalog is loaded too). */
  readonly catalog: { readonly loaded: boolean; readonly runbooks: number; readonly policies: number };
}

export interface ReadinessCheck {
  readonly name: 'store' | 'gateway' | 'runbooks';
  readonly ok: boolean;
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly phase: CoordinatorPhase;
  readonly checks: readonly ReadinessCheck[];
}

export function decideReadiness(i: ReadinessInputs): Readiness {
  const gateway: ReadinessCheck =
    i.phase === 'serving'
      ? { name: 'gateway', ok: true, detail: 'listening for agents' }
      : { name: 'gateway', ok: false, detail: i.phase === 'starting' ? 'not listening yet (starting)' : 'shutting down: no new agents or work' };
  const store: ReadinessCheck = i.storeError === null ? { name: 'store', ok: true, detail: 'writable' } : { name: 'store', ok: false, detail: `not writable: ${i.storeError}` };
  const runbooks: ReadinessCheck = i.catalog.loaded
    ? { name: 'runbooks', ok: true, detail: `${i.catalog.runbooks} runbook(s), ${i.catalog.policies} polic${i.catalog.policies === 1 ? 'y' : 'ies'} loaded` }
    : { name: 'runbooks', ok: false, detail: 'runbooks and policies not loaded yet' };
  const checks = [store, gateway, runbooks];
  return { ready: checks.every((c) => c.ok), phase: i.phase, checks };
}
