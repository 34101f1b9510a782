/**
 * The execution scheduler, as pure functions: given a plan (strategy, concurrency, maxErrors,
 * steps, onFailure handlers) and the progress of every node, decide what to start next, and
 * fold each outcome into the progress. No I/O and no clock: the engine applies the actions
 * (dispatch, wait, finish) and feeds outcomes back. Table-tested in test/unit/scheduler.test.ts.
 *
 * Semantics:
 *  - rolling: a node runs all its steps before the next node starts; `concurrency` nodes at a time.
 *  - parallel: every active node runs step k before any node starts step k+1.
 *  - a failed step is retried `retries` times (the engine waits `retryBackoffMs * 2^(attempt-1)`);
 *    then, unless the step continues on error, the node runs the onFailure handlers and fails.
 *  - once more than `maxErrors` nodes have failed, no further node (rolling) or step (parallel)
 *    starts; nodes that did not finish are `skipped`.
 *  - a step interrupted by an agent shutdown runs again (stepInterrupted): it is not an outcome.
 *  - the execution succeeds only if every node succeeded.
 */

export type Strategy = 'rolling' | 'parallel';

export interface PlanStep {
  readonly name: string;
  readonly retries: number;
  readonly retryBackoffMs: number;
  readonly continueOnError: boolean;
  /** An approval gate: the whole execution pauses here (once) until approved. */
  readonly gate: boolean;
}

export interface Plan {
  readonly strategy: Strategy;
  readonly concurrency: { readonly count: number } | { readonly percent: number };
  readonly maxErrors: number;
  readonly steps: readonly PlanStep[];
  readonly onFailure: readonly PlanStep[];
}

export type NodeStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'canceled';

export interface NodeProgress {
  readonly agentId: string;
  readonly status: NodeStatus;
  /** Index of the current main step (or of the handler while `inHandlers`). */
  readonly step: number;
  readonly attempt: number;
  readonly inHandlers: boolean;
  /** A step run (or a retry wait) is outstanding for this node. */
  readonly busy: boolean;
  readonly reason: string | null;
}

export interface Progress {
  readonly nodes: readonly NodeProgress[];
  /** Gates (step indexes) already approved. */
  readonly approvedGates: readonly number[];
  readonly canceled: boolean;
}

export type Action =
  | { readonly kind: 'run'; readonly node: number; readonly step: number; readonly attempt: number; readonly handler: boolean; readonly delayMs: number }
  | { readonly kind: 'await_approval'; readonly step: number }
  | { readonly kind: 'finish'; readonly state: 'succeeded' | 'failed' | 'canceled'; readonly reason: string | null };

export type Outcome = 'succeeded' | 'failed';

export function initialProgress(agentIds: readonly string[]): Progress {
  return {
    nodes: agentIds.map((agentId) => ({ agentId, status: 'pending', step: 0, attempt: 0, inHandlers: false, busy: false, reason: null })),
    approvedGates: [],
    canceled: false,
  };
}

export function concurrencyLimit(plan: Plan, nodeCount: number): number {
  const c = 'count' in plan.concurrency ? plan.concurrency.count : Math.ceil((plan.concurrency.percent / 100) * nodeCount);
  return Math.max(1, Math.min(nodeCount, Math.floor(c)));
}

const isDone = (s: NodeStatus): boolean => s === 'succeeded' || s === 'failed' || s === 'skipped' || s === 'canceled';
const failedCount = (p: Progress): number => p.nodes.filter((n) => n.status === 'failed').length;

function withNode(p: Progress, i: number, patch: Partial<NodeProgress>): Progress {
  return { ...p, nodes: p.nodes.map((n, k) => (k === i ? { ...n, ...patch } : n)) };
}

/** A node could not be reached (offline, revoked, refused): it fails without running handlers. */
export function nodeUnreachable(p: Progress, node: number, reason: string): Progress {
  return withNode(p, node, { status: 'failed', busy: false, reason });
}

/**
 * The node's step (or handler) was interrupted by its agent shutting down: not an outcome. The
 * node stays running and the same step starts again with the same attempt number (not counted
 * against `retries`, no onFailure); a canceled execution just lets the node go idle.
 */
export function stepInterrupted(p: Progress, node: number): Progress {
  const n = p.nodes[node];
  if (!n || isDone(n.status)) return p;
  return withNode(p, node, { busy: false, attempt: p.canceled ? n.attempt : Math.max(0, n.attempt - 1) });
}

/** Folds one step outcome into the progress. */
export function applyOutcome(plan: Plan, p: Progress, node: number, outcome: Outcome, reason: string | null): Progress {
  const n = p.nodes[node];
  if (!n || isDone(n.status)) return p;
  if (n.inHandlers) {
    // Handlers run once each, in order, whatever their outcome; the node has failed already.
    const next = n.step + 1;
    if (next < plan.onFailure.length && !p.canceled) return withNode(p, node, { step: next, attempt: 0, busy: false });
    return withNode(p, node, { status: 'failed', busy: false });
  }
  const step = plan.steps[n.step] as PlanStep;
  if (outcome === 'failed' && !p.canceled && n.attempt <= step.retries) {
    return withNode(p, node, { busy: false, reason }); // the next run is a retry
  }
  if (outcome === 'failed' && !step.continueOnError) {
    const why = `step "${step.name}" failed${reason ? `: ${reason}` : ''}`;
    if (plan.onFailure.length > 0 && !p.canceled) return withNode(p, node, { inHandlers: true, step: 0, attempt: 0, busy: false, reason: why });
    return withNode(p, node, { status: 'failed', busy: false, reason: why });
  }
  const next = n.step + 1;
  if (next >= plan.steps.length) return withNode(p, node, { status: 'succeeded', busy: false, reason: null, step: next });
  return withNode(p, node, { step: next, attempt: 0, busy: false, reason: null });
}

export function approveGate(p: Progress, step: number): Progress {
  return p.approvedGates.includes(step) ? p : { ...p, approvedGates: [...p.approvedGates, step] };
}

/** Stops everything: nodes that have not finished end as canceled. */
export function cancel(p: Progress): Progress {
  return { ...p, canceled: true, nodes: p.nodes.map((n) => (isDone(n.status) ? n : { ...n, status: 'canceled', busy: false, reason: n.reason ?? 'canceled' })) };
}

/**
 * What to start now. The returned progress marks started nodes busy; the engine performs the
 * actions and later calls applyOutcome for each `run`.
 */
export function nextActions(plan: Plan, p0: Progress): { progress: Progress; actions: Action[] } {
  // One copy of the node list, patched in place below: starting n nodes costs O(n), not the
  // O(n²) of copying the list per node (2,000 nodes in parallel). The input is never touched.
  let p: Progress = { ...p0, nodes: p0.nodes.slice() };
  const withNode = (q: Progress, i: number, patch: Partial<NodeProgress>): Progress => {
    const nodes = q.nodes as NodeProgress[];
    nodes[i] = { ...(nodes[i] as NodeProgress), ...patch };
    return q;
  };
  const actions: Action[] = [];
  if (p.canceled) {
    if (p.nodes.every((n) => !n.busy)) actions.push({ kind: 'finish', state: 'canceled', reason: 'canceled' });
    return { progress: p, actions };
  }
  const limit = concurrencyLimit(plan, p.nodes.length);
  const tooManyErrors = failedCount(p) > plan.maxErrors;

  // Nodes in their onFailure handlers always proceed (cleanup is never throttled by maxErrors).
  p.nodes.forEach((n, i) => {
    if (n.status === 'running' && n.inHandlers && !n.busy) {
      actions.push({ kind: 'run', node: i, step: n.step, attempt: 1, handler: true, delayMs: 0 });
      p = withNode(p, i, { busy: true, attempt: 1 });
    }
  });

  const start = (i: number): void => {
    const n = p.nodes[i] as NodeProgress;
    const step = plan.steps[n.step] as PlanStep;
    if (step.gate && !p.approvedGates.includes(n.step)) {
      if (!actions.some((a) => a.kind === 'await_approval' && a.step === n.step)) actions.push({ kind: 'await_approval', step: n.step });
      return;
    }
    const attempt = n.attempt + 1;
    const delayMs = attempt > 1 ? step.retryBackoffMs * 2 ** (attempt - 2) : 0;
    actions.push({ kind: 'run', node: i, step: n.step, attempt, handler: false, delayMs });
    p = withNode(p, i, { status: 'running', busy: true, attempt });
  };

  if (plan.strategy === 'rolling') {
    // Continue nodes already rolling, then start new ones up to the limit.
    p.nodes.forEach((n, i) => {
      if (n.status === 'running' && !n.inHandlers && !n.busy) start(i);
    });
    let active = p.nodes.filter((n) => n.status === 'running').length;
    for (let i = 0; i < p.nodes.length && active < limit; i++) {
      const n = p.nodes[i] as NodeProgress;
      if (n.status !== 'pending') continue;
      if (tooManyErrors) break;
      if (plan.steps.length === 0) {
        p = withNode(p, i, { status: 'succeeded' });
        continue;
      }
      start(i);
      if ((p.nodes[i] as NodeProgress).status === 'running') active++;
      else break; // waiting at a gate
    }
    if (tooManyErrors) {
      p = { ...p, nodes: p.nodes.map((n) => (n.status === 'pending' ? { ...n, status: 'skipped', reason: `not started: more than ${plan.maxErrors} node(s) failed` } : n)) };
    }
  } else {
    // parallel: the slowest active node sets the pace; everyone finishes step k before k+1.
    const live = p.nodes.filter((n) => n.status === 'pending' || (n.status === 'running' && !n.inHandlers));
    const phase = live.length > 0 ? Math.min(...live.map((n) => n.step)) : 0;
    if (tooManyErrors) {
      // Let in-flight work finish, then stop: nobody starts another step.
      const idle = live.filter((n) => !n.busy);
      if (idle.length === live.length) {
        p = {
          ...p,
          nodes: p.nodes.map((n) =>
            n.status === 'pending' || (n.status === 'running' && !n.inHandlers && !n.busy)
              ? { ...n, status: 'skipped', reason: `stopped: more than ${plan.maxErrors} node(s) failed` }
              : n,
          ),
        };
      }
    } else {
      let busy = p.nodes.filter((n) => n.busy && !n.inHandlers).length;
      p.nodes.forEach((n, i) => {
        if (busy >= limit) return;
        const eligible = (n.status === 'pending' || (n.status === 'running' && !n.inHandlers)) && !n.busy && n.step === phase;
        if (!eligible) return;
        if (plan.steps.length === 0) {
          p = withNode(p, i, { status: 'succeeded' });
          return;
        }
        start(i);
        if ((p.nodes[i] as NodeProgress).busy) busy++;
      });
    }
  }

  if (p.nodes.every((n) => isDone(n.status))) {
    const failed = p.nodes.filter((n) => n.status === 'failed').length;
    const skipped = p.nodes.filter((n) => n.status === 'skipped').length;
    if (failed === 0 && skipped === 0) actions.push({ kind: 'finish', state: 'succeeded', reason: null });
    else actions.push({ kind: 'finish', state: 'failed', reason: `${failed} node(s) failed${skipped ? `, ${skipped} skipped` : ''}` });
  }
  return { progress: p, actions };
}
