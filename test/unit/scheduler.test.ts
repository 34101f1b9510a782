import { describe, expect, it } from 'vitest';
import { applyOutcome, applyOutcomes, approveGate, cancel, concurrencyLimit, initialProgress, nextActions, nodeAfter, nodeUnreachable, stepInterrupted, type Action, type NodeOutcome, type NodeProgress, type Plan, type PlanStep, type Progress } from '../../coordinator/engine/scheduler.js';

const step = (name: string, o: Partial<PlanStep> = {}): PlanStep => ({ name, retries: 0, retryBackoffMs: 1000, continueOnError: false, gate: false, ...o });
const plan = (o: Partial<Plan> = {}): Plan => ({ strategy: 'rolling', concurrency: { count: 1 }, maxErrors: 0, steps: [step('a'), step('b')], onFailure: [], ...o });
const runs = (a: Action[]): string[] => a.filter((x) => x.kind === 'run').map((x) => (x.kind === 'run' ? `${x.node}:${x.step}${x.handler ? 'h' : ''}#${x.attempt}` : ''));

/** Drives a plan to completion, answering each run with `answer(node, step, handler, attempt)`. */
function drive(pl: Plan, nodes: number, answer: (node: number, step: number, handler: boolean, attempt: number) => 'succeeded' | 'failed'): { log: string[]; finish: Action | undefined; progress: Progress } {
  let p = initialProgress(Array.from({ length: nodes }, (_, i) => `agt-${i}`));
  const log: string[] = [];
  for (let round = 0; round < 200; round++) {
    const r = nextActions(pl, p);
    p = r.progress;
    const finish = r.actions.find((a) => a.kind === 'finish');
    if (finish) return { log, finish, progress: p };
    const started = r.actions.filter((a): a is Extract<Action, { kind: 'run' }> => a.kind === 'run');
    if (started.length === 0) return { log, finish: undefined, progress: p };
    log.push(runs(started).join(' '));
    for (const a of started) p = applyOutcome(pl, p, a.node, answer(a.node, a.step, a.handler, a.attempt), 'exit 1');
  }
  throw new Error('did not finish');
}

describe('scheduler', () => {
  it.each([
    [{ count: 1 }, 10, 1],
    [{ count: 50 }, 10, 10],
    [{ percent: 25 }, 10, 3],
    [{ percent: 100 }, 7, 7],
    [{ percent: 1 }, 10, 1],
  ] as const)('concurrency %j over %i nodes allows %i', (c, n, limit) => {
    expect(concurrencyLimit(plan({ concurrency: c }), n)).toBe(limit);
  });

  it('rolling: all steps on a node before the next node, concurrency at a time', () => {
    expect(drive(plan(), 3, () => 'succeeded').log).toEqual(['0:0#1', '0:1#1', '1:0#1', '1:1#1', '2:0#1', '2:1#1']);
    expect(drive(plan({ concurrency: { count: 2 } }), 3, () => 'succeeded').log).toEqual(['0:0#1 1:0#1', '0:1#1 1:1#1', '2:0#1', '2:1#1']);
  });

  it('parallel: every node finishes a step before the next step starts', () => {
    const r = drive(plan({ strategy: 'parallel', concurrency: { count: 10 } }), 3, () => 'succeeded');
    expect(r.log).toEqual(['0:0#1 1:0#1 2:0#1', '0:1#1 1:1#1 2:1#1']);
    expect(r.finish).toEqual({ kind: 'finish', state: 'succeeded', reason: null });
  });

  it('parallel with a concurrency limit still finishes the step everywhere first', () => {
    expect(drive(plan({ strategy: 'parallel', concurrency: { count: 2 } }), 3, () => 'succeeded').log).toEqual(['0:0#1 1:0#1', '2:0#1', '0:1#1 1:1#1', '2:1#1']);
  });

  it('retries a failed step, then succeeds', () => {
    const pl = plan({ steps: [step('flaky', { retries: 2, retryBackoffMs: 500 })] });
    let p = initialProgress(['a']);
    let r = nextActions(pl, p);
    expect(r.actions).toEqual([{ kind: 'run', node: 0, step: 0, attempt: 1, handler: false, delayMs: 0 }]);
    p = applyOutcome(pl, r.progress, 0, 'failed', 'exit 1');
    r = nextActions(pl, p);
    expect(r.actions).toEqual([{ kind: 'run', node: 0, step: 0, attempt: 2, handler: false, delayMs: 500 }]);
    p = applyOutcome(pl, r.progress, 0, 'failed', 'exit 1');
    r = nextActions(pl, p);
    expect(r.actions).toEqual([{ kind: 'run', node: 0, step: 0, attempt: 3, handler: false, delayMs: 1000 }]);
    p = applyOutcome(pl, r.progress, 0, 'succeeded', null);
    expect(nextActions(pl, p).actions).toEqual([{ kind: 'finish', state: 'succeeded', reason: null }]);
  });

  it('runs onFailure handlers on a node whose step failed after its retries, then fails it', () => {
    const pl = plan({ steps: [step('a'), step('b', { retries: 1 }), step('c')], onFailure: [step('undo-1'), step('undo-2')] });
    const r = drive(pl, 1, (_n, s, handler) => (!handler && s === 1 ? 'failed' : 'succeeded'));
    expect(r.log).toEqual(['0:0#1', '0:1#1', '0:1#2', '0:0h#1', '0:1h#1']);
    expect(r.finish).toMatchObject({ kind: 'finish', state: 'failed' });
    expect(r.progress.nodes[0]?.reason).toMatch(/step "b" failed/);
  });

  it('continues past a failing step that allows it', () => {
    const pl = plan({ steps: [step('check', { continueOnError: true }), step('b')] });
    expect(drive(pl, 1, (_n, s) => (s === 0 ? 'failed' : 'succeeded')).finish).toMatchObject({ state: 'succeeded' });
  });

  it('rolling: stops starting nodes once more than maxErrors have failed', () => {
    const r = drive(plan({ maxErrors: 1 }), 5, (n) => (n <= 1 ? 'failed' : 'succeeded'));
    // node 0 fails (1 error, tolerated), node 1 fails (2 > 1): nodes 2..4 never start
    expect(r.log).toEqual(['0:0#1', '1:0#1']);
    expect(r.progress.nodes.map((n) => n.status)).toEqual(['failed', 'failed', 'skipped', 'skipped', 'skipped']);
    expect(r.finish).toMatchObject({ state: 'failed', reason: '2 node(s) failed, 3 skipped' });
  });

  it('rolling with maxErrors 0 stops after the first failure; a tolerated failure still fails the execution', () => {
    expect(drive(plan(), 3, (n) => (n === 0 ? 'failed' : 'succeeded')).log).toEqual(['0:0#1']);
    const tolerated = drive(plan({ maxErrors: 1 }), 3, (n) => (n === 0 ? 'failed' : 'succeeded'));
    expect(tolerated.log).toEqual(['0:0#1', '1:0#1', '1:1#1', '2:0#1', '2:1#1']);
    expect(tolerated.finish).toMatchObject({ state: 'failed', reason: '1 node(s) failed' });
  });

  it('parallel: stops before the next step once more than maxErrors have failed', () => {
    const r = drive(plan({ strategy: 'parallel', concurrency: { count: 10 }, maxErrors: 0 }), 3, (n) => (n === 1 ? 'failed' : 'succeeded'));
    expect(r.log).toEqual(['0:0#1 1:0#1 2:0#1']);
    expect(r.progress.nodes.map((n) => n.status)).toEqual(['skipped', 'failed', 'skipped']);
  });

  it('an unreachable node counts as failed and never runs', () => {
    let p = initialProgress(['a', 'b']);
    p = nodeUnreachable(p, 0, 'agent offline');
    const pl = plan({ maxErrors: 1 });
    const r = nextActions(pl, p);
    expect(runs(r.actions)).toEqual(['1:0#1']);
    expect(r.progress.nodes[0]).toMatchObject({ status: 'failed', reason: 'agent offline' });
  });

  it('pauses at an approval gate until it is approved', () => {
    const pl = plan({ steps: [step('drain'), step('approve', { gate: true }), step('restart')], concurrency: { count: 2 } });
    let p = initialProgress(['a', 'b']);
    let r = nextActions(pl, p);
    expect(runs(r.actions)).toEqual(['0:0#1', '1:0#1']);
    p = applyOutcome(pl, applyOutcome(pl, r.progress, 0, 'succeeded', null), 1, 'succeeded', null);
    r = nextActions(pl, p);
    expect(r.actions).toEqual([{ kind: 'await_approval', step: 1 }]);
    p = approveGate(r.progress, 1);
    r = nextActions(pl, p);
    expect(runs(r.actions)).toEqual(['0:1#1', '1:1#1']);
  });

  it('cancel ends unfinished nodes and finishes once nothing is in flight', () => {
    const pl = plan({ concurrency: { count: 2 } });
    let p = initialProgress(['a', 'b', 'c']);
    const r = nextActions(pl, p);
    p = cancel(r.progress);
    expect(p.nodes.map((n) => n.status)).toEqual(['canceled', 'canceled', 'canceled']);
    expect(nextActions(pl, p).actions).toEqual([{ kind: 'finish', state: 'canceled', reason: 'canceled' }]);
  });
});

describe('a step its agent stopped in the middle of (stepInterrupted)', () => {
  const run = (pl: Plan, p: Progress): { p: Progress; started: string[] } => {
    const r = nextActions(pl, p);
    return { p: r.progress, started: runs(r.actions) };
  };

  it.each([
    ['rolling', plan({ onFailure: [step('page')] })],
    ['parallel', plan({ strategy: 'parallel', onFailure: [step('page')] })],
  ] as const)('%s: runs the same step again with the same attempt, no onFailure, the other nodes unaffected', (_, pl) => {
    let { p, started } = run(pl, initialProgress(['agt-0', 'agt-1']));
    const first = started[0] as string;
    expect(first).toBe('0:0#1');
    p = stepInterrupted(p, 0);
    expect(p.nodes[0]).toMatchObject({ status: 'running', step: 0, attempt: 0, busy: false, inHandlers: false });
    ({ p, started } = run(pl, p));
    expect(started).toContain('0:0#1');
    expect(started.some((s) => s.includes('h'))).toBe(false);
  });

  it('does not count against retries', () => {
    const pl = plan({ steps: [step('a', { retries: 1 })] });
    let { p } = run(pl, initialProgress(['agt-0']));
    p = applyOutcome(pl, p, 0, 'failed', 'exit 1'); // attempt 1 failed: one retry left
    ({ p } = run(pl, p));
    expect(p.nodes[0]!.attempt).toBe(2);
    p = stepInterrupted(p, 0); // the retry was interrupted
    const again = run(pl, p);
    expect(again.started).toEqual(['0:0#2']);
    p = applyOutcome(pl, again.p, 0, 'succeeded', null);
    expect(p.nodes[0]!.status).toBe('succeeded');
  });

  it('reruns an interrupted onFailure handler, and leaves finished or canceled nodes alone', () => {
    const pl = plan({ steps: [step('a')], onFailure: [step('page'), step('log')] });
    let { p } = run(pl, initialProgress(['agt-0']));
    p = applyOutcome(pl, p, 0, 'failed', 'exit 1');
    let started: string[];
    ({ p, started } = run(pl, p));
    expect(started).toEqual(['0:0h#1']);
    p = stepInterrupted(p, 0);
    ({ p, started } = run(pl, p));
    expect(started).toEqual(['0:0h#1']);
    const canceled = cancel(p);
    expect(stepInterrupted(canceled, 0)).toEqual(canceled);
  });
});

/** A progress whose every level is frozen: a scheduler that wrote into its input would throw (ESM is strict). */
function frozen(p: Progress): Progress {
  for (const n of p.nodes) Object.freeze(n);
  Object.freeze(p.nodes);
  Object.freeze(p.approvedGates);
  return Object.freeze(p);
}

describe('scheduler purity (it copies nodes only when a pass changes one)', () => {
  it.each(['rolling', 'parallel'] as const)('never writes into its input, %s, through starts, failures, handlers, maxErrors and the end', (strategy) => {
    const pl = plan({ strategy, concurrency: { count: 2 }, maxErrors: 1, steps: [step('a', { retries: 1 }), step('b')], onFailure: [step('page')] });
    let p = frozen(initialProgress(['agt-0', 'agt-1', 'agt-2', 'agt-3', 'agt-4']));
    for (let round = 0; round < 50; round++) {
      const r = nextActions(pl, p);
      p = frozen(r.progress);
      if (r.actions.some((a) => a.kind === 'finish')) break;
      for (const a of r.actions) if (a.kind === 'run') p = frozen(applyOutcome(pl, p, a.node, a.node % 2 === 0 ? 'failed' : 'succeeded', 'exit 1'));
    }
    expect(p.nodes.every((n) => ['succeeded', 'failed', 'skipped'].includes(n.status))).toBe(true);
  });

  it('returns the same progress from a pass that starts nothing, and a new one from a pass that does', () => {
    const pl = plan({ strategy: 'parallel', concurrency: { percent: 100 }, steps: [step('a')] });
    const first = nextActions(pl, frozen(initialProgress(['agt-0', 'agt-1', 'agt-2'])));
    expect(runs(first.actions)).toEqual(['0:0#1', '1:0#1', '2:0#1']);
    const idle = nextActions(pl, first.progress);
    expect(idle.actions).toEqual([]);
    expect(idle.progress).toBe(first.progress);
    const one = applyOutcome(pl, first.progress, 1, 'succeeded', null);
    expect(one.nodes[0]).toBe(first.progress.nodes[0]);
    expect(one.nodes[1]!.status).toBe('succeeded');
    expect(first.progress.nodes[1]!.status).toBe('running');
  });
});

describe('applyOutcomes (a group of results folded with one copy of the node list)', () => {
  /** A small deterministic PRNG, so a failure names its seed. */
  const rng = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('gives the progress applyOutcome gives one outcome at a time, seed %i', (seed) => {
    const rand = rng(seed);
    const pl = plan({ strategy: 'parallel', concurrency: { percent: 100 }, maxErrors: 2, steps: [step('a', { retries: 1 }), step('b', { continueOnError: true }), step('c')], onFailure: [step('h1'), step('h2')] });
    let one = frozen(initialProgress(Array.from({ length: 12 }, (_, i) => `agt-${i}`)));
    let many = one;
    for (let round = 0; round < 40; round++) {
      const r = nextActions(pl, one);
      expect(nextActions(pl, many)).toEqual(r);
      one = frozen(r.progress);
      many = one;
      const started = r.actions.filter((a): a is Extract<Action, { kind: 'run' }> => a.kind === 'run');
      if (started.length === 0) break;
      // Groups of any size, a node named twice in one group, and nodes already done.
      const group: NodeOutcome[] = started.map((a) => ({ node: a.node, outcome: rand() < 0.4 ? 'failed' : 'succeeded', reason: `exit ${round}` }));
      if (rand() < 0.5) group.push({ node: Math.floor(rand() * 12), outcome: 'failed', reason: 'again' });
      if (rand() < 0.3) one = frozen({ ...one, canceled: true });
      many = one;
      for (const o of group) {
        const before = one.nodes[o.node] as NodeProgress;
        one = frozen(applyOutcome(pl, one, o.node, o.outcome, o.reason));
        // The node-level form the engine's restart replay uses agrees, node for node.
        expect(nodeAfter.outcome(pl, before, one.canceled, o.outcome, o.reason)).toEqual(one.nodes[o.node]);
        expect(nodeAfter.interruption(before, one.canceled)).toEqual(stepInterrupted({ ...one, nodes: one.nodes.map((n, k) => (k === o.node ? before : n)) }, o.node).nodes[o.node]);
      }
      many = frozen(applyOutcomes(pl, many, group));
      expect(many).toEqual(one);
    }
  });

  it('copies the node list once per group, never writes into its input, and returns the input when nothing changes', () => {
    const pl = plan({ strategy: 'parallel', concurrency: { percent: 100 }, steps: [step('a')] });
    const started = nextActions(pl, frozen(initialProgress(['agt-0', 'agt-1', 'agt-2', 'agt-3']))).progress;
    const input = frozen(started);
    const out = applyOutcomes(pl, input, [
      { node: 0, outcome: 'succeeded', reason: null },
      { node: 2, outcome: 'failed', reason: 'exit 1' },
    ]);
    expect(out.nodes.map((n) => n.status)).toEqual(['succeeded', 'running', 'failed', 'running']);
    expect(out.nodes[1]).toBe(input.nodes[1]);
    expect(input.nodes.map((n) => n.status)).toEqual(['running', 'running', 'running', 'running']);
    // Outcomes for nodes that are done change nothing: the same progress comes back.
    expect(applyOutcomes(pl, out, [{ node: 0, outcome: 'failed', reason: 'late' }])).toBe(out);
    expect(applyOutcomes(pl, out, [])).toBe(out);
  });
});
