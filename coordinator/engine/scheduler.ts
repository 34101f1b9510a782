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

/** A node in this status will run nothing more. */
export const isDone = (s: NodeStatus): boolean => s === 'succeeded' || s === 'failed' || s === 'skipped' || s === 'canceled';

/** A new progress with node i patched: a copy of the node list (one memcpy-like slice, no callback per node). */
function withNode(p: Progress, i: number, patch: Partial<NodeProgress>): Progress {
  const nodes = p.nodes.slice();
  nodes[i] = { ...(nodes[i] as NodeProgress), ...patch };
  return { ...p, nodes };
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
  return withNode(p, node, interruptedPatch(n, p.canceled));
}

function interruptedPatch(n: NodeProgress, canceled: boolean): Partial<NodeProgress> {
  return { busy: false, attempt: canceled ? n.attempt : Math.max(0, n.attempt - 1) };
}

/**
 * One node as stepInterrupted and applyOutcome leave it, for a caller that rebuilds a whole node
 * list itself (the engine replaying an execution's step runs after a restart: copying the list
 * per step run made that quadratic in the nodes).
 */
export const nodeAfter = {
  interruption: (n: NodeProgress, canceled: boolean): NodeProgress => (isDone(n.status) ? n : { ...n, ...interruptedPatch(n, canceled) }),
  outcome: (plan: Plan, n: NodeProgress, canceled: boolean, outcome: Outcome, reason: string | null): NodeProgress => {
    const patch = outcomePatch(plan, n, canceled, outcome, reason);
    return patch ? { ...n, ...patch } : n;
  },
};

/** One step outcome of a node, as applyOutcomes folds it in. */
export interface NodeOutcome {
  readonly node: number;
  readonly outcome: Outcome;
  readonly reason: string | null;
}

/** What one step outcome changes in its node (null: nothing, the node is done). */
function outcomePatch(plan: Plan, n: NodeProgress, canceled: boolean, outcome: Outcome, reason: string | null): Partial<NodeProgress> | null {
  if (isDone(n.status)) return null;
  if (n.inHandlers) {
    // Handlers run once each, in order, whatever their outcome; the node has failed already.
    const next = n.step + 1;
    if (next < plan.onFailure.length && !canceled) return { step: next, attempt: 0, busy: false };
    return { status: 'failed', busy: false };
  }
  const step = plan.steps[n.step] as PlanStep;
  if (outcome === 'failed' && !canceled && n.attempt <= step.retries) {
    return { busy: false, reason }; // the next run is a retry
  }
  if (outcome === 'failed' && !step.continueOnError) {
    const why = `step "${step.name}" failed${reason ? `: ${reason}` : ''}`;
    if (plan.onFailure.length > 0 && !canceled) return { inHandlers: true, step: 0, attempt: 0, busy: false, reason: why };
    return { status: 'failed', busy: false, reason: why };
  }
  const next = n.step + 1;
  if (next >= plan.steps.length) return { status: 'succeeded', busy: false, reason: null, step: next };
  return { step: next, attempt: 0, busy: false, reason: null };
}

/** Folds one step outcome into the progress. */
export function applyOutcome(plan: Plan, p: Progress, node: number, outcome: Outcome, reason: string | null): Progress {
  return applyOutcomes(plan, p, [{ node, outcome, reason }]);
}

/**
 * Folds outcomes in, in order: the same progress as applyOutcome for each in turn, with one
 * copy of the node list for them all instead of one each. A fan-out's results arrive in groups
 * (one store commit each), and a copy per result made every result cost O(nodes): 16 KB per
 * result at 2,000 nodes, a quadratic round.
 */
export function applyOutcomes(plan: Plan, p: Progress, outcomes: readonly NodeOutcome[]): Progress {
  let nodes: NodeProgress[] | undefined;
  for (const o of outcomes) {
    const n = (nodes ?? p.nodes)[o.node];
    if (!n) continue;
    const next = nodeAfter.outcome(plan, n, p.canceled, o.outcome, o.reason);
    if (next === n) continue;
    nodes ??= p.nodes.slice();
    nodes[o.node] = next;
  }
  return nodes ? { ...p, nodes } : p;
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
 *
 * The engine calls this once per group of results, so in a fan-out to n nodes it runs about as
 * often as results arrive: one counting pass over the nodes, no intermediate arrays, and the node
 * list is copied only if a node changes (copy on first write, then patched in place). A pass
 * that starts nothing returns the input itself. The input is never touched.
 */
export function nextActions(plan: Plan, p0: Progress): { progress: Progress; actions: Action[] } {
  const all = p0.nodes;
  let p: Progress = p0;
  let owned = false;
  const withNode = (i: number, patch: Partial<NodeProgress>): void => {
    if (!owned) {
      p = { ...p0, nodes: all.slice() };
      owned = true;
    }
    const nodes = p.nodes as NodeProgress[];
    nodes[i] = { ...(nodes[i] as NodeProgress), ...patch };
  };
  const actions: Action[] = [];
  if (p0.canceled) {
    if (!all.some((n) => n.busy)) actions.push({ kind: 'finish', state: 'canceled', reason: 'canceled' });
    return { progress: p0, actions };
  }
  const limit = concurrencyLimit(plan, all.length);

  // One pass: counts for the decisions below, and nodes in their onFailure handlers always
  // proceed (cleanup is never throttled by maxErrors). Starting a handler changes only `busy`
  // and `attempt` of a node in its handlers, which none of the counts look at.
  let failed = 0;
  let running = 0;
  let live = 0;
  let liveIdle = 0;
  let phase = Number.POSITIVE_INFINITY;
  let busyMain = 0;
  for (let i = 0; i < all.length; i++) {
    const n = all[i] as NodeProgress;
    if (n.status === 'failed') failed++;
    else if (n.status === 'running') running++;
    if (n.busy && !n.inHandlers) busyMain++;
    if (n.status === 'pending' || (n.status === 'running' && !n.inHandlers)) {
      live++;
      if (!n.busy) liveIdle++;
      if (n.step < phase) phase = n.step;
    }
    if (n.status === 'running' && n.inHandlers && !n.busy) {
      actions.push({ kind: 'run', node: i, step: n.step, attempt: 1, handler: true, delayMs: 0 });
      withNode(i, { busy: true, attempt: 1 });
    }
  }
  const tooManyErrors = failed > plan.maxErrors;

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
    withNode(i, { status: 'running', busy: true, attempt });
  };

  if (plan.strategy === 'rolling') {
    // Continue nodes already rolling (they stay running), then start new ones up to the limit.
    for (let i = 0; i < all.length; i++) {
      const n = all[i] as NodeProgress;
      if (n.status === 'running' && !n.inHandlers && !n.busy) start(i);
    }
    let active = running;
    for (let i = 0; i < all.length && active < limit; i++) {
      const n = p.nodes[i] as NodeProgress;
      if (n.status !== 'pending') continue;
      if (tooManyErrors) break;
      if (plan.steps.length === 0) {
        withNode(i, { status: 'succeeded' });
        continue;
      }
      start(i);
      if ((p.nodes[i] as NodeProgress).status === 'running') active++;
      else break; // waiting at a gate
    }
    if (tooManyErrors) {
      for (let i = 0; i < all.length; i++) {
        const n = p.nodes[i] as NodeProgress;
        if (n.status === 'pending') withNode(i, { status: 'skipped', reason: `not started: more than ${plan.maxErrors} node(s) failed` });
      }
    }
  } else {
    // parallel: the slowest active node sets the pace; everyone finishes step k before k+1.
    if (live === 0) phase = 0;
    if (tooManyErrors) {
      // Let in-flight work finish, then stop: nobody starts another step.
      if (liveIdle === live) {
        for (let i = 0; i < all.length; i++) {
          const n = p.nodes[i] as NodeProgress;
          if (n.status === 'pending' || (n.status === 'running' && !n.inHandlers && !n.busy)) {
            withNode(i, { status: 'skipped', reason: `stopped: more than ${plan.maxErrors} node(s) failed` });
          }
        }
      }
    } else if (liveIdle > 0) {
      let busy = busyMain;
      for (let i = 0; i < all.length && busy < limit; i++) {
        const n = p.nodes[i] as NodeProgress;
        const eligible = (n.status === 'pending' || (n.status === 'running' && !n.inHandlers)) && !n.busy && n.step === phase;
        if (!eligible) continue;
        if (plan.steps.length === 0) {
          withNode(i, { status: 'succeeded' });
          continue;
        }
        start(i);
        if ((p.nodes[i] as NodeProgress).busy) busy++;
      }
    }
  }

  let done = true;
  let failedNow = 0;
  let skipped = 0;
  for (const n of p.nodes) {
    if (!isDone(n.status)) {
      done = false;
      break;
    }
    if (n.status === 'failed') failedNow++;
    else if (n.status === 'skipped') skipped++;
  }
  if (done) {
    if (failedNow === 0 && skipped === 0) actions.push({ kind: 'finish', state: 'succeeded', reason: null });
    else actions.push({ kind: 'finish', state: 'failed', reason: `${failedNow} node(s) failed${skipped ? `, ${skipped} skipped` : ''}` });
  }
  return { progress: p, actions };
}
