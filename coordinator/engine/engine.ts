/**
 * The execution engine: turns a run request into an execution (policy, options, targets,
 * approval), then drives the pure scheduler (scheduler.ts) — dispatching agent steps through
 * the step dispatcher, running http/sleep steps itself, pausing at approval gates — and
 * persists every state change so a restarted coordinator resumes where it stopped.
 */
import type { Logger } from 'pino';
import type { Database, Tx } from '../store/database.js';
import * as store from '../store/execution-store.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents, DEFAULT_DENY_RULE } from '../audit/events.js';
import type { AgentRecord, AgentRegistry } from '../registry/agent-registry.js';
import type { Gateway } from '../gateway/gateway.js';
import type { SecretBox } from '../pki/secret-box.js';
import type { StepDispatcher, StepRunOutcome } from './step-dispatcher.js';
import type { ExecutionEvents } from './execution-events.js';
import type { OutputSequence } from './output-sequence.js';
import type { ExecutionNotifier } from '../notify/outbox.js';
import type { CompiledRunbook, RenderContext } from './compiled-runbook.js';
import { applyOutcome, applyOutcomes, approveGate, cancel as cancelProgress, initialProgress, isDone, nextActions, nodeAfter, nodeUnreachable, stepInterrupted, type Action, type NodeOutcome, type NodeProgress, type NodeStatus, type Outcome, type Progress } from './scheduler.js';
import { checkApprover } from './approval-rules.js';
import { runHttpStep } from './http-step.js';
import { EVERYTHING, formatSelector, intersect, matches, parseSelector, SelectorSyntaxError, type Selector } from '../../core/selector.js';
import { HandrailError, invalidArgument, notFound, permissionDenied, RefusedError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { echo, some } from '../../core/echo.js';

export type Action_ = 'run' | 'view' | 'approve' | 'cancel' | 'admin';

export interface Requester {
  readonly name: string;
  readonly groups: readonly string[];
}

export interface PolicyDecision {
  readonly allowed: boolean;
  readonly rule: string | null;
  readonly reason: string;
}

/** The policy engine as the execution engine sees it. */
export interface EnginePolicy {
  decide(
    user: Requester,
    action: Action_,
    runbook?: { readonly id: string; readonly tags: readonly string[]; readonly owner: string },
    targets?: { readonly selector: string; readonly agents: ReadonlyArray<{ readonly id: string; readonly name: string; readonly labels: Readonly<Record<string, string>> }> },
  ): PolicyDecision;
}

/** The loaded runbooks, and a way to rebuild one from the exact source an execution ran. */
export interface RunbookSource {
  get(id: string): CompiledRunbook | undefined;
  compile(source: string): CompiledRunbook;
}

export interface RunRequest {
  readonly runbookId: string;
  readonly options: Readonly<Record<string, string>>;
  /** Narrows the runbook's selector; never widens it. */
  readonly targets: string | undefined;
  readonly user: Requester;
  readonly reason?: string;
  /** The API request's id, recorded with the policy decision so a refusal can be matched to its record. */
  readonly requestId?: string;
  /**
   * Runs first in the transaction that records the execution: when it throws, no execution is
   * recorded or started. A webhook records its delivery id here, so a replay can never start a
   * second run, however close together the two arrive.
   */
  readonly within?: (tx: Tx, executionId: string) => Promise<void>;
}

export interface EngineDeps {
  readonly db: Database;
  readonly audit: AuditLog;
  readonly registry: AgentRegistry;
  readonly gateway: Gateway;
  readonly dispatcher: StepDispatcher;
  readonly events: ExecutionEvents;
  readonly secrets: SecretBox;
  readonly runbooks: RunbookSource;
  readonly policy: EnginePolicy;
  readonly log: Logger;
  readonly now: () => number;
  /** How long a step waits for its agent to (re)connect before the node counts as unreachable. */
  readonly offlineWaitMs: number;
  /** Numbers the output coordinator steps store (an http step's response body). */
  readonly outputSeq: OutputSequence;
  /** Queues outbound notifications in the transaction of the state change they announce. */
  readonly notifier?: ExecutionNotifier;
  /** Rates the audit records of refused runs like every other refusal (coordinator/audit/refusal-log.ts). */
  readonly refusals?: { admit(user: string, action: string, rule: string): { record: true; suppressed: number } | { record: false } };
}

interface NodeRef {
  readonly agentId: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

interface OpenRun {
  readonly node: number;
  readonly step: number;
  readonly handler: boolean;
  readonly attempt: number;
}

interface RunState {
  readonly id: string;
  readonly runbook: CompiledRunbook;
  readonly requestedBy: string;
  readonly options: Readonly<Record<string, string>>;
  readonly nodes: readonly NodeRef[];
  /**
   * The scheduler's view of every node, with the outcomes in `unfolded` folded in when read
   * (applyOutcomes: one copy of the node list per group of results, not one per result).
   * Setting it drops what was not folded, as setting it after folding each would.
   */
  progress: Progress;
  /** `progress` as last folded; read `progress` instead. */
  folded: Progress;
  /** Outcomes of committed results not folded into `folded` yet, in arrival order. */
  unfolded: NodeOutcome[];
  readonly open: Map<string, OpenRun>;
  readonly timers: Set<NodeJS.Timeout>;
  readonly abort: AbortController;
  /**
   * Node statuses as written by committed transactions and by the one in progress (put back if
   * it rolls back): what the next node-state write leaves out.
   */
  persistedStatus: NodeStatus[];
  /** The transaction that last wrote node states (persistedStatus is copied once per transaction, to put back). */
  nodesTx: number;
  /** A batch that writes the node states is queued and has not run yet (one at a time). */
  nodesQueued: boolean;
  /**
   * The end is written with every node's final state, in the transaction in progress or a
   * committed one: a node-state batch that runs after it writes nothing.
   */
  endWritten: boolean;
  /** Interruptions by agent shutdowns, per node and step (see MAX_INTERRUPTIONS). */
  readonly interruptions: Map<string, number>;
  /**
   * Nodes whose next step goes out even while their agent is offline: it was stopped (an
   * upgrade, a reboot) in the middle of a step and is expected back; the request waits for it
   * until its not-after time instead of the node failing after offlineWaitMs.
   */
  readonly awaitingAgent: Set<number>;
  waitingGate: number | null;
  finished: boolean;
  pumping: boolean;
  pumpAgain: boolean;
  /** A pump is queued for the next turn of the event loop (see schedulePump). */
  pumpQueued: boolean;
  /**
   * Outcomes of results stored (or being stored) by the dispatcher and not yet folded into
   * `progress`, by step run: what endWithResult counts on. Folded in by onStepFinished once
   * committed; dropped if their transaction rolls back.
   */
  readonly storedOutcomes: Map<string, StoredOutcome>;
  /** Nodes of `progress` not done yet (counted again when it changes): endWithResult's cheap test. */
  notDone: NotDone | undefined;
}

interface NotDone {
  readonly of: Progress;
  /** With a step (or a retry's wait) outstanding: each needs an outcome to be done. */
  readonly busy: number;
  /** Idle (pending, or between steps): done only when skipped after too many failures. */
  readonly idle: number;
  readonly failed: number;
}

interface StoredOutcome {
  readonly node: number;
  readonly outcome: Outcome;
  readonly reason: string | null;
  /** A failure, or the end of a handler (its node fails whatever the handler did). */
  readonly mayFailNode: boolean;
}

/** An execution's end, as announced once it is committed. */
interface Ending {
  readonly executionId: string;
  readonly state: string;
  readonly reason: string | null;
  readonly runbook: { readonly id: string; readonly owner: string };
}

/**
 * How often one step may be interrupted by its agent shutting down before that counts as the
 * step failing (a step that restarts its own agent would otherwise run forever).
 */
export const MAX_INTERRUPTIONS = 3;

const interruptionKey = (node: number, step: number, handler: boolean): string => `${node}:${handler ? 'h' : 's'}${step}`;

export class ExecutionEngine {
  private readonly runs = new Map<string, RunState>();
  /**
   * Executions ended in the transaction that stored their last result, by that result's step
   * run: announced on the dispatcher's 'finished', after the commit and outside it.
   */
  private readonly endedWithResult = new Map<string, Ending>();

  constructor(private readonly d: EngineDeps) {
    d.dispatcher.onResultStoring((tx, o) => this.endWithResult(tx, o));
    d.dispatcher.events.on('finished', (o) => this.onStepFinished(o));
  }

  // ---------------------------------------------------------------- requests

  async request(req: RunRequest): Promise<{ executionId: string; state: 'awaiting_approval' | 'running' }> {
    const { d } = this;
    const runbook = d.runbooks.get(req.runbookId);
    if (!runbook) throw notFound(`no runbook ${echo(req.runbookId)} (see GET /api/v1/runbooks or \`handrail runbooks lint\`)`);
    const rbRef = { id: runbook.id, tags: runbook.tags, owner: runbook.owner };

    const resolved = runbook.resolveOptions(req.options);
    if (resolved.issues.length > 0) throw invalidArgument(`invalid options for ${runbook.id}: ${some(resolved.issues, 10, '; ')}`);

    let narrowed: Selector = EVERYTHING;
    if (req.targets !== undefined && req.targets.trim() !== '') {
      try {
        narrowed = parseSelector(req.targets);
      } catch (e) {
        if (e instanceof SelectorSyntaxError) throw invalidArgument(`targets ${echo(req.targets)}: ${e.message} at column ${e.column}`);
        throw e;
      }
    }
    const selector = intersect(runbook.selector, narrowed);
    const selectorText = formatSelector(selector);
    const agents = (await d.registry.list()).filter((a) => a.revokedAt === null && matches(selector, hostLabels(a)));
    const executionId = newId('exe');
    const now = d.now();

    const decision = d.policy.decide(req.user, 'run', rbRef, { selector: selectorText, agents: agents.map((a) => ({ id: a.id, name: a.name, labels: a.labels })) });
    if (!decision.allowed) {
      const rule = decision.rule ?? DEFAULT_DENY_RULE;
      const admitted = d.refusals?.admit(req.user.name, 'run', rule) ?? { record: true, suppressed: 0 };
      if (admitted.record) {
        await d.db.batch(async (tx) => {
          await d.audit.append(tx, {
            type: AuditEvents.policyDecided,
            actor: { kind: 'user', id: req.user.name },
            data: {
              requestId: req.requestId ?? null, executionId: null, user: req.user.name, action: 'run', runbookId: runbook.id, allowed: false, rule, reason: decision.reason,
              ...(admitted.suppressed > 0 ? { suppressed: admitted.suppressed } : {}),
            },
          });
        });
      }
      throw permissionDenied(`not allowed to run ${runbook.id}: ${decision.reason}${decision.rule ? ` (rule ${decision.rule})` : ''}`);
    }
    if (agents.length === 0) throw invalidArgument(`no enrolled agent matches the targets ${selectorText} (runbook selector ${runbook.selectorText}${req.targets ? ` narrowed by ${req.targets}` : ''})`);

    const nodes: NodeRef[] = agents.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id)).map((a) => ({ agentId: a.id, name: a.name, labels: hostLabels(a) }));
    const needsApproval = runbook.approval !== null && runbook.approval.required > 0;
    const state = needsApproval ? 'awaiting_approval' : 'running';
    const sealed = resolved.secretNames.length > 0 ? d.secrets.seal(pick(resolved.values, resolved.secretNames), executionId) : null;
    await d.db.batch(async (tx) => {
      if (req.within) await req.within(tx, executionId);
      await store.insertRunbookExecution(tx, {
        id: executionId, runbookId: runbook.id, runbookDigest: runbook.digest, runbookJson: JSON.stringify({ source: runbook.source }), requestedBy: req.user.name,
        optionsJson: JSON.stringify(resolved.display), secretsSealed: sealed, targets: selectorText, state, reason: req.reason ?? null,
        approvalJson: needsApproval ? JSON.stringify({ ...runbook.approval, message: `approval to run ${runbook.title}` }) : null, gate: needsApproval ? -1 : null,
        createdAt: now, startedAt: needsApproval ? null : now, ownerTeam: runbook.owner || null,
      });
      // Who may see this execution later is decided on its runbook's owner and tags, also once it is removed.
      store.queueRunbookRef(tx, { id: runbook.id, owner: runbook.owner, tags: runbook.tags, at: now });
      if (runbook.owner) store.queueRunbookTeam(tx, runbook.owner, runbook.id);
      store.queueNodes(tx, executionId, nodes, 'pending');
      await d.audit.append(tx, [
        {
          type: AuditEvents.policyDecided,
          actor: { kind: 'user', id: req.user.name },
          data: { requestId: req.requestId ?? null, executionId, user: req.user.name, action: 'run', runbookId: runbook.id, allowed: true, rule: decision.rule ?? DEFAULT_DENY_RULE, reason: decision.reason },
        },
        {
          type: AuditEvents.executionRequested,
          actor: { kind: 'user', id: req.user.name },
          data: { executionId, kind: 'runbook', runbookId: runbook.id, runbookDigest: runbook.digest, options: resolved.display, targets: selectorText, ...(req.reason ? { reason: req.reason } : {}) },
        },
      ]);
      await d.notifier?.queue(tx, needsApproval ? 'execution.waiting_approval' : 'execution.started', executionId);
    });
    d.notifier?.committed();
    d.log.info({ event: 'execution.requested', executionId, runbookId: runbook.id, digest: runbook.digest, user: req.user.name, nodes: nodes.length, state }, 'execution requested');
    const run = this.newRun(executionId, runbook, req.user.name, resolved.values, nodes);
    if (needsApproval) {
      run.waitingGate = -1;
      d.events.changed(executionId);
    } else {
      this.pump(run);
    }
    return { executionId, state };
  }

  /** Approve (or deny) the approval an execution is waiting for. */
  async decide(executionId: string, user: Requester, decision: 'approve' | 'deny', comment: string): Promise<{ state: 'canceled' | 'awaiting_approval' | 'running'; remaining: number }> {
    const { d } = this;
    const row = await store.executionApprovalState(d.db, executionId);
    if (!row) throw notFound(`no execution ${executionId}`);
    if (row.state !== 'awaiting_approval' || row.gate === null || !row.approval_json) {
      throw new HandrailError('failed_precondition', `execution ${executionId} is not waiting for an approval (it is ${row.state})`);
    }
    const run = this.runs.get(executionId);
    if (!run) throw new HandrailError('unavailable', `execution ${executionId} is not loaded; retry in a moment`);
    const policy = d.policy.decide(user, 'approve', { id: run.runbook.id, tags: run.runbook.tags, owner: run.runbook.owner });
    if (!policy.allowed) {
      throw new RefusedError('permission_denied', `not allowed to approve ${run.runbook.id}: ${policy.reason}`, { action: decision, targetId: executionId, runbookId: run.runbook.id, rule: policy.rule ?? DEFAULT_DENY_RULE, reason: policy.reason });
    }
    const approval = JSON.parse(row.approval_json) as { required: number; from: string[] };
    const gate = row.gate;
    const decided = await store.approvalsAtGate(d.db, executionId, gate);
    const check = checkApprover({ approver: user, requester: row.requested_by, from: approval.from, alreadyDecided: decided.map((x) => x.approver) });
    if (!check.ok) throw new RefusedError('permission_denied', check.reason, { action: decision, targetId: executionId, runbookId: run.runbook.id, rule: check.rule, reason: check.reason });
    const approvals = decided.filter((x) => x.decision === 'approve').length + (decision === 'approve' ? 1 : 0);
    const remaining = Math.max(0, approval.required - approvals);
    const now = d.now();
    await d.db.write(async (tx) => {
      await store.insertApproval(tx, { executionId, gate, approver: user.name, decision, comment: comment.slice(0, 2000), decidedAt: now });
      await d.audit.append(tx, decision === 'approve'
        ? { type: AuditEvents.approvalGranted, actor: { kind: 'user', id: user.name }, data: { executionId, approver: user.name, comment: comment.slice(0, 2000), remaining } }
        : { type: AuditEvents.approvalDenied, actor: { kind: 'user', id: user.name }, data: { executionId, approver: user.name, comment: comment.slice(0, 2000) } });
      if (decision === 'approve' && remaining === 0) {
        await store.startApprovedExecution(tx, executionId, now);
        // Approving the whole execution starts it; an approval step's gate only lets it go on.
        if (gate < 0) await d.notifier?.queue(tx, 'execution.started', executionId);
      }
    });
    d.notifier?.committed();
    d.log.info({ event: decision === 'approve' ? 'approval.granted' : 'approval.denied', executionId, approver: user.name, remaining }, `${decision} by ${user.name}`);
    if (decision === 'deny') {
      await this.stop(run, 'canceled', `denied by ${user.name}${comment ? `: ${comment.slice(0, 200)}` : ''}`);
      return { state: 'canceled', remaining };
    }
    if (remaining > 0) {
      d.events.changed(executionId);
      return { state: 'awaiting_approval', remaining };
    }
    run.waitingGate = null;
    if (gate >= 0) run.progress = approveGate(run.progress, gate);
    this.pump(run);
    return { state: 'running', remaining: 0 };
  }

  async cancel(executionId: string, user: Requester): Promise<boolean> {
    const { d } = this;
    const run = this.runs.get(executionId);
    if (!run) return false;
    const policy = d.policy.decide(user, 'cancel', { id: run.runbook.id, tags: run.runbook.tags, owner: run.runbook.owner });
    if (!policy.allowed && user.name !== run.requestedBy) {
      throw new RefusedError('permission_denied', `not allowed to cancel ${run.runbook.id}: ${policy.reason}`, { action: 'cancel', targetId: executionId, runbookId: run.runbook.id, rule: policy.rule ?? DEFAULT_DENY_RULE, reason: policy.reason });
    }
    await d.db.write(async (tx) => {
      await store.markCancelRequested(tx, executionId, d.now(), user.name);
      await d.audit.append(tx, { type: AuditEvents.executionCanceled, actor: { kind: 'user', id: user.name }, data: { executionId } });
    });
    await this.stop(run, 'canceled', `canceled by ${user.name}`);
    return true;
  }

  /** Executions this process is driving (for diagnostics and tests). */
  activeCount(): number {
    return this.runs.size;
  }

  // ---------------------------------------------------------------- resume

  /** After a restart: reload executions that were awaiting approval or running, and continue them. */
  async resume(): Promise<number> {
    const { d } = this;
    const rows = await store.resumableExecutions(d.db);
    for (const row of rows) {
      try {
        await this.resumeOne(row);
      } catch (e) {
        d.log.error({ event: 'execution.resume_failed', executionId: row.id, err: e }, 'execution could not be resumed');
        await this.markFinished(row.id, 'failed', `could not be resumed after a coordinator restart: ${(e as Error).message}`);
      }
    }
    if (rows.length > 0) d.log.info({ event: 'engine.resumed', executions: rows.length }, 'executions resumed');
    return rows.length;
  }

  private async resumeOne(row: { id: string; runbook_json: string; requested_by: string; options_json: string; secrets_sealed: Buffer | null; state: string; gate: number | null }): Promise<void> {
    const { d } = this;
    const { source } = JSON.parse(row.runbook_json) as { source: string };
    const runbook = d.runbooks.compile(source);
    const options = { ...(JSON.parse(row.options_json) as Record<string, string>), ...(row.secrets_sealed ? d.secrets.open(row.secrets_sealed, row.id) : {}) };
    const nodeRows = await store.nodesOf<NodeStatus>(d.db, row.id);
    const agents = await d.registry.getMany(nodeRows.map((n) => n.agent_id));
    const nodes: NodeRef[] = nodeRows.map((n) => {
      const a = agents.get(n.agent_id);
      return { agentId: n.agent_id, name: n.agent_name, labels: a ? hostLabels(a) : { name: n.agent_name, id: n.agent_id } };
    });
    const run = this.newRun(row.id, runbook, row.requested_by, options, nodes);
    // Rebuild each node's progress by replaying its step runs through the scheduler.
    const stepRuns = await store.stepRunsForResume(d.db, row.id);
    const index = new Map(nodes.map((n, i) => [n.agentId, i]));
    // Rebuilt in a list of its own (the run is not driven yet): one copy, not one per node or step run.
    const canceled = run.progress.canceled;
    const list = run.progress.nodes.slice();
    nodeRows.forEach((n, i) => {
      if (n.state === 'failed' || n.state === 'skipped' || n.state === 'canceled' || n.state === 'succeeded') {
        list[i] = { ...(list[i] as NodeProgress), status: n.state, reason: n.reason };
      }
    });
    for (const sr of stepRuns) {
      const i = index.get(sr.agent_id);
      if (i === undefined) continue;
      const node = list[i] as NodeProgress;
      if (node.status !== 'pending' && node.status !== 'running') continue;
      const handler = sr.handler === 1;
      const started: NodeProgress = { ...node, status: 'running', step: sr.step_index, attempt: sr.attempt, inHandlers: handler, busy: true };
      list[i] = started;
      const open = sr.state === 'dispatched' || sr.state === 'running';
      const key = interruptionKey(i, sr.step_index, handler);
      const interruptions = sr.state === 'interrupted' ? (run.interruptions.get(key) ?? 0) + 1 : 0;
      if (sr.state === 'interrupted') run.interruptions.set(key, interruptions);
      if (sr.state === 'interrupted' && interruptions < MAX_INTERRUPTIONS) {
        // Its agent stopped during the step: it runs again (see interrupted()).
        list[i] = nodeAfter.interruption(started, canceled);
        run.awaitingAgent.add(i);
        continue;
      }
      run.awaitingAgent.delete(i);
      if (!open) {
        list[i] = nodeAfter.outcome(runbook.plan, started, canceled, sr.state === 'succeeded' ? 'succeeded' : 'failed', sr.error ?? sr.state);
      } else if (runbook.step(handler, sr.step_index).kind !== 'agent') {
        // A coordinator step cut short by the restart runs again.
        await d.db.batch((tx) => store.markStepLostOnRestart(tx, sr.id, d.now()));
        list[i] = { ...started, busy: false, attempt: sr.attempt - 1 };
      } else {
        run.open.set(sr.id, { node: i, step: sr.step_index, handler, attempt: sr.attempt });
      }
    }
    let p: Progress = { ...run.progress, nodes: list };
    const gates = await store.approvedCountsByGate(d.db, row.id);
    for (const g of gates) if (g.gate >= 0) p = approveGate(p, g.gate);
    run.progress = p;
    run.persistedStatus = p.nodes.map((n) => n.status);
    if (row.state === 'awaiting_approval') run.waitingGate = row.gate;
    else this.pump(run);
  }

  // ---------------------------------------------------------------- driving

  private newRun(id: string, runbook: CompiledRunbook, requestedBy: string, options: Readonly<Record<string, string>>, nodes: readonly NodeRef[]): RunState {
    const run: RunState = {
      id,
      runbook,
      requestedBy,
      options,
      nodes,
      get progress(): Progress {
        if (this.unfolded.length > 0) {
          this.folded = applyOutcomes(runbook.plan, this.folded, this.unfolded);
          this.unfolded = [];
        }
        return this.folded;
      },
      set progress(p: Progress) {
        this.unfolded = [];
        this.folded = p;
      },
      folded: initialProgress(nodes.map((n) => n.agentId)),
      unfolded: [],
      open: new Map(),
      timers: new Set(),
      abort: new AbortController(),
      persistedStatus: nodes.map(() => 'pending'),
      nodesTx: 0,
      nodesQueued: false,
      endWritten: false,
      interruptions: new Map(),
      awaitingAgent: new Set(),
      waitingGate: null,
      finished: false,
      pumping: false,
      pumpAgain: false,
      pumpQueued: false,
      storedOutcomes: new Map(),
      notDone: undefined,
    };
    this.runs.set(id, run);
    return run;
  }

  private ctx(run: RunState, node: number): RenderContext {
    const n = run.nodes[node] as NodeRef;
    return { executionId: run.id, host: { id: n.agentId, name: n.name, labels: n.labels }, options: run.options };
  }

  /** Asks the scheduler what to do next and does it. Re-entrant calls are folded into one more pass. */
  private pump(run: RunState): void {
    if (run.finished || run.waitingGate !== null) return;
    if (run.pumping) {
      run.pumpAgain = true;
      return;
    }
    run.pumping = true;
    try {
      do {
        run.pumpAgain = false;
        const { progress, actions } = nextActions(run.runbook.plan, run.progress);
        run.progress = progress;
        for (const a of actions) this.perform(run, a);
      } while (run.pumpAgain && !run.finished && run.waitingGate === null);
    } finally {
      run.pumping = false;
    }
    this.persistNodes(run);
  }

  private perform(run: RunState, a: Action): void {
    switch (a.kind) {
      case 'finish':
        this.finish(run, a.state, a.reason).catch((e: unknown) =>
          this.d.log.error({ event: 'engine.finish_failed', executionId: run.id, state: a.state, err: e }, 'recording the end of an execution failed'),
        );
        return;
      case 'await_approval':
        this.awaitGate(run, a.step).catch((e: unknown) =>
          this.d.log.error({ event: 'engine.gate_failed', executionId: run.id, step: a.step, err: e }, 'recording that an execution awaits approval failed'),
        );
        return;
      case 'run':
        if (a.delayMs > 0) {
          const t = setTimeout(() => {
            run.timers.delete(t);
            this.startStep(run, a.node, a.step, a.handler, a.attempt);
          }, a.delayMs);
          run.timers.add(t);
        } else {
          this.startStep(run, a.node, a.step, a.handler, a.attempt);
        }
    }
  }

  private startStep(run: RunState, node: number, step: number, handler: boolean, attempt: number): void {
    if (run.finished) return;
    const info = run.runbook.step(handler, step);
    const n = run.nodes[node] as NodeRef;
    const stepRunId = newId('sr');
    const fail = (reason: string): void => {
      run.progress = applyOutcome(run.runbook.plan, run.progress, node, 'failed', reason);
      this.pump(run);
    };
    if (info.kind === 'agent') {
      const expectedBack = run.awaitingAgent.delete(node);
      if (!expectedBack && !this.d.gateway.isOnline(n.agentId)) {
        // Agents reconnect after blips and coordinator restarts: give this one a moment.
        run.open.set(stepRunId, { node, step, handler, attempt });
        this.d.gateway
          .waitOnline(n.agentId, this.d.offlineWaitMs)
          .then((online) => {
            if (!run.open.has(stepRunId) || run.finished) return;
            run.open.delete(stepRunId);
            if (online) return this.startStep(run, node, step, handler, attempt);
            const why = `agent ${n.name} is offline (waited ${Math.round(this.d.offlineWaitMs / 1000)} s)`;
            if (handler) return fail(why);
            run.progress = nodeUnreachable(run.progress, node, why);
            this.pump(run);
          })
          .catch((e: unknown) => this.d.log.error({ event: 'engine.offline_wait_failed', executionId: run.id, stepRunId, err: e }, 'waiting for an offline agent failed'));
        return;
      }
      let rendered;
      try {
        rendered = run.runbook.renderAgent(handler, step, this.ctx(run, node));
      } catch (e) {
        return fail(`cannot render step "${info.name}": ${(e as Error).message}`);
      }
      run.open.set(stepRunId, { node, step, handler, attempt });
      this.d.dispatcher
        .dispatch({
          executionId: run.id,
          stepRunId,
          agentId: n.agentId,
          stepIndex: step,
          attempt,
          handler,
          name: info.name,
          argv: rendered.argv,
          argvForRecords: rendered.argvForRecords,
          script: rendered.script,
          env: rendered.env,
          secretEnv: rendered.secretEnv,
          workingDir: rendered.workingDir,
          timeoutMs: rendered.timeoutMs,
          maxOutputBytes: rendered.maxOutputBytes,
          runbookId: run.runbook.id,
          runbookOwner: run.runbook.owner,
        })
        .catch((e: unknown) => {
          this.d.log.error({ event: 'engine.dispatch_failed', executionId: run.id, stepRunId, err: e }, 'dispatch failed');
          this.closeOpen(run, stepRunId);
          fail(`dispatch failed: ${(e as Error).message}`);
        });
      return;
    }
    this.runLocalStep(run, node, step, handler, attempt, stepRunId, info.name, info.kind, info.sleepMs ?? 0).catch((e: unknown) => {
      this.d.log.error({ event: 'engine.local_step_failed', executionId: run.id, stepRunId, err: e }, 'coordinator step failed');
      fail(`coordinator step failed: ${(e as Error).message}`);
    });
  }

  /** http and sleep steps run here, recorded like agent steps (without an agent signature). */
  private async runLocalStep(run: RunState, node: number, step: number, handler: boolean, attempt: number, stepRunId: string, name: string, kind: 'http' | 'sleep' | 'approval', sleepMs: number): Promise<void> {
    const { d } = this;
    const n = run.nodes[node] as NodeRef;
    const started = d.now();
    run.open.set(stepRunId, { node, step, handler, attempt });
    await d.db.batch(async (tx) => {
      store.queueLocalStep(tx, { id: stepRunId, executionId: run.id, agentId: n.agentId, stepIndex: step, attempt, handler, name, startedAt: started });
    });
    let ok = true;
    let error: string | null = null;
    let status: number | null = null;
    let body: Buffer = Buffer.alloc(0);
    let auditDetail: Record<string, string | number | null> = {};
    if (kind === 'sleep') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          run.timers.delete(t);
          resolve();
        }, sleepMs);
        run.timers.add(t);
        run.abort.signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      if (run.abort.signal.aborted) {
        ok = false;
        error = 'canceled';
      }
      auditDetail = { sleepMs };
    } else if (kind === 'http') {
      const req = run.runbook.renderHttp(handler, step, this.ctx(run, node));
      const r = await runHttpStep(req, run.abort.signal);
      ok = r.ok;
      error = r.error;
      status = r.status;
      body = r.body;
      auditDetail = { method: req.method, url: req.url, status: r.status };
    }
    if (!run.open.has(stepRunId)) return; // canceled meanwhile
    run.open.delete(stepRunId);
    const state = ok ? 'succeeded' : run.abort.signal.aborted ? 'canceled' : 'failed';
    const now = d.now();
    await d.db.batch(async (tx) => {
      store.queueLocalStepEnd(tx, stepRunId, { state, finishedAt: now, exitCode: status, error, stdoutBytes: body.length });
      if (body.length > 0) store.queueLocalStepOutput(tx, { stepRunId, data: body, receivedAt: now, seq: d.outputSeq.next() });
      await d.audit.append(tx, {
        type: AuditEvents.stepLocalResult,
        actor: { kind: 'system', id: 'coordinator' },
        data: { executionId: run.id, stepRunId, agentId: n.agentId, name, kind, state, error, ...auditDetail },
      });
    });
    if (run.finished) return;
    run.progress = applyOutcome(run.runbook.plan, run.progress, node, ok ? 'succeeded' : 'failed', error);
    d.events.changed(run.id);
    this.pump(run);
  }

  private closeOpen(run: RunState, stepRunId: string): OpenRun | undefined {
    const open = run.open.get(stepRunId);
    if (!open) return undefined;
    run.open.delete(stepRunId);
    return open;
  }

  private onStepFinished(o: StepRunOutcome): void {
    const ended = this.endedWithResult.get(o.stepRunId);
    if (ended) {
      this.endedWithResult.delete(o.stepRunId);
      this.announceEnd(ended);
      return;
    }
    const run = this.runs.get(o.executionId);
    if (!run) return;
    run.storedOutcomes.delete(o.stepRunId);
    const open = this.closeOpen(run, o.stepRunId);
    if (!open || run.finished) return;
    if (o.state === 'interrupted' && this.interrupted(run, open)) {
      this.d.events.changed(run.id);
      this.pump(run);
      return;
    }
    run.unfolded.push({ node: open.node, outcome: outcomeOf(o), reason: reasonOf(o) });
    this.d.events.changed(run.id);
    this.schedulePump(run);
  }

  /**
   * Runs inside the transaction that stores a step's result (dispatcher.onResultStoring). When
   * the result makes the execution's outcome final (every node done, counting the results
   * stored before it and not yet folded in), the execution's end, its nodes and its audit
   * record are written in that transaction: one commit, not two. The end carries every node
   * state not written yet, and a node-state batch that runs after it writes nothing (see
   * persistNodes), so no reader sees the execution ended with a node not final, and no node
   * changes after. Nothing else in memory changes before the commit (a rollback puts back what
   * did, and a retried transaction decides again); the end is announced on the dispatcher's
   * 'finished' for that result.
   *
   * Anything else (an interruption, a run paused at a gate or being canceled, an outcome that
   * starts more work) is left to onStepFinished and the scheduler as before.
   */
  private async endWithResult(tx: Tx, o: StepRunOutcome): Promise<void> {
    const run = this.runs.get(o.executionId);
    if (!run || run.finished || run.progress.canceled || run.waitingGate !== null || o.state === 'interrupted') return;
    const open = run.open.get(o.stepRunId);
    if (!open) return;
    const stored: StoredOutcome = { node: open.node, outcome: outcomeOf(o), reason: reasonOf(o), mayFailNode: o.state !== 'succeeded' || open.handler };
    run.storedOutcomes.set(o.stepRunId, stored);
    tx.afterRollback(() => {
      if (run.storedOutcomes.get(o.stepRunId) === stored) run.storedOutcomes.delete(o.stepRunId);
    });
    // Working the end out costs a pass over every node per stored outcome: first a cheap test that
    // it can be the end. Each outcome frees one busy node; idle ones end only if skipped, which
    // takes more failed nodes than maxErrors.
    const plan = run.runbook.plan;
    const left = (run.notDone = run.notDone?.of === run.progress ? run.notDone : countNotDone(run.progress));
    if (run.storedOutcomes.size < left.busy) return;
    if (left.idle > 0 && left.failed <= plan.maxErrors && ![...run.storedOutcomes.values()].some((s) => s.mayFailNode)) return;
    const { progress, actions } = nextActions(plan, applyOutcomes(plan, run.progress, [...run.storedOutcomes.values()]));
    const end = actions.length === 1 && actions[0]?.kind === 'finish' ? actions[0] : undefined;
    if (!end) return;
    const state = endState(progress, end.state);
    const now = this.d.now();
    if (!(await this.recordEnd(tx, run.id, state, end.reason, now))) return;
    this.writeNodeStates(tx, run, progress, now);
    run.endWritten = true;
    tx.afterRollback(() => {
      run.endWritten = false;
    });
    tx.afterCommit(() => {
      run.progress = progress;
      run.storedOutcomes.clear();
      run.open.clear();
      this.closeRun(run);
      this.endedWithResult.set(o.stepRunId, { executionId: run.id, state, reason: end.reason, runbook: { id: run.runbook.id, owner: run.runbook.owner } });
    });
  }

  /**
   * Results arrive in groups (one store commit acknowledges many): their outcomes are folded in
   * as they come and the scheduler runs once for the group, on the next turn of the event loop,
   * instead of once per result (each pass walks every node).
   */
  private schedulePump(run: RunState): void {
    if (run.pumpQueued) return;
    run.pumpQueued = true;
    setImmediate(() => {
      run.pumpQueued = false;
      this.pump(run);
    });
  }

  /**
   * A step its agent stopped in the middle of (shutdown): runs again when the agent is back,
   * not counted as a failure. Returns false once the step was interrupted too often: then it is
   * an outcome like any failure.
   */
  private interrupted(run: RunState, open: OpenRun): boolean {
    const key = interruptionKey(open.node, open.step, open.handler);
    const times = (run.interruptions.get(key) ?? 0) + 1;
    run.interruptions.set(key, times);
    if (times >= MAX_INTERRUPTIONS) return false;
    const n = run.nodes[open.node] as NodeRef;
    this.d.log.info(
      { event: 'step.interrupted', executionId: run.id, agentId: n.agentId, step: run.runbook.step(open.handler, open.step).name, times },
      `agent ${n.name} stopped during the step; it runs again when the agent is back`,
    );
    run.awaitingAgent.add(open.node);
    run.progress = stepInterrupted(run.progress, open.node);
    return true;
  }

  private async awaitGate(run: RunState, step: number): Promise<void> {
    if (run.waitingGate !== null) return;
    const info = run.runbook.step(false, step);
    const approval = info.approval ?? { required: 1, from: [], message: info.name };
    run.waitingGate = step;
    await this.d.db.batch(async (tx) => {
      const r = await store.awaitApprovalAt(tx, run.id, step, JSON.stringify(approval));
      if (r.changes === 1) await this.d.notifier?.queue(tx, 'execution.waiting_approval', run.id);
    });
    this.d.notifier?.committed();
    this.d.log.info({ event: 'execution.awaiting_approval', executionId: run.id, step: info.name }, 'waiting for approval');
    this.d.events.changed(run.id);
  }

  /**
   * Queues a write of the node states that changed (after every scheduler pass). What it writes
   * is worked out when its transaction runs, from the progress of that moment, so a batch queued
   * before an end written in a result's transaction (endWithResult) either runs before that end
   * (in its transaction or an earlier one) or finds it written and writes nothing: no node state
   * lands after the end. A node's 'running' commits with its first step's dispatch or before it
   * (queued in the same pass after it, or earlier), so no transaction writes a node's 'running'
   * and its final state both (two update shapes, which the store does not keep in order).
   */
  private persistNodes(run: RunState): void {
    if (run.nodesQueued || !nodesChanged(run)) return;
    run.nodesQueued = true;
    this.d.db
      .batch(async (tx) => {
        run.nodesQueued = false;
        if (!run.endWritten) this.writeNodeStates(tx, run, run.progress, this.d.now());
      })
      // The 'changed' of the outcome went out before these states committed: a follower that
      // read in between saw the node still running, and nothing else may change for a while.
      .then(() => this.d.events.changed(run.id))
      .catch((e: unknown) => this.d.log.error({ event: 'engine.persist_failed', executionId: run.id, err: e }, 'persisting node states failed'));
  }

  /** Queues in `tx` the nodes whose status in `progress` is not persisted yet, and marks them persisted (put back if `tx` rolls back). */
  private writeNodeStates(tx: Tx, run: RunState, progress: Progress, now: number): void {
    const nodes = progress.nodes;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i] as NodeProgress;
      if (run.persistedStatus[i] === n.status) continue;
      if (run.nodesTx !== tx.txId) {
        run.nodesTx = tx.txId;
        const before = run.persistedStatus;
        run.persistedStatus = [...before];
        tx.afterRollback(() => {
          run.persistedStatus = before;
        });
      }
      queueNodeState(tx, run.id, n, now);
      run.persistedStatus[i] = n.status;
    }
  }

  private async stop(run: RunState, state: 'canceled', reason: string): Promise<void> {
    run.waitingGate = null;
    run.progress = cancelProgress(run.progress);
    run.abort.abort();
    for (const id of [...run.open.keys()]) {
      const open = this.closeOpen(run, id);
      if (open && run.runbook.step(open.handler, open.step).kind === 'agent') await this.d.dispatcher.cancel(id);
    }
    this.persistNodes(run);
    await this.finish(run, state, reason);
  }

  private async finish(run: RunState, state: 'succeeded' | 'failed' | 'canceled', reason: string | null): Promise<void> {
    if (run.finished) return;
    this.closeRun(run);
    this.persistNodes(run);
    await this.markFinished(run.id, endState(run.progress, state), reason, { id: run.runbook.id, owner: run.runbook.owner });
  }

  /** This process stops driving the run (its end is recorded, or about to be). */
  private closeRun(run: RunState): void {
    run.finished = true;
    for (const t of run.timers) clearTimeout(t);
    run.timers.clear();
    this.runs.delete(run.id);
  }

  private async markFinished(executionId: string, state: string, reason: string | null, runbook?: { id: string; owner: string }): Promise<void> {
    const { d } = this;
    const now = d.now();
    const changed = await d.db.batch((tx: Tx) => this.recordEnd(tx, executionId, state, reason, now));
    if (changed) this.announceEnd({ executionId, state, reason, ...(runbook ? { runbook } : {}) });
  }

  /** Ends an active execution in `tx`, with its audit record and notification; false if it had ended already. */
  private async recordEnd(tx: Tx, executionId: string, state: string, reason: string | null, now: number): Promise<boolean> {
    const { d } = this;
    if (!(await store.finishActiveExecution(tx, executionId, state, reason, now))) return false;
    await d.audit.append(tx, { type: AuditEvents.executionCompleted, actor: { kind: 'system', id: 'coordinator' }, data: { executionId, state, ...(reason ? { reason } : {}) } });
    await d.notifier?.queue(tx, 'execution.finished', executionId);
    return true;
  }

  /** Once an execution's end is committed: notifications go out, long-polls and live views wake. */
  private announceEnd(e: Omit<Ending, 'runbook'> & { readonly runbook?: Ending['runbook'] }): void {
    const { d } = this;
    d.notifier?.committed();
    d.log.info({ event: 'execution.finished', executionId: e.executionId, state: e.state, reason: e.reason }, `execution ${e.state}`);
    d.events.finished({ executionId: e.executionId, state: e.state, ...(e.runbook ? { runbook: e.runbook } : {}) });
  }
}

/** Whether a node's status differs from the persisted one (after every scheduler pass: a plain loop). */
function nodesChanged(run: RunState): boolean {
  const nodes = run.progress.nodes;
  for (let i = 0; i < nodes.length; i++) if (run.persistedStatus[i] !== (nodes[i] as NodeProgress).status) return true;
  return false;
}

function countNotDone(p: Progress): NotDone {
  let busy = 0;
  let idle = 0;
  let failed = 0;
  for (const n of p.nodes) {
    if (n.status === 'failed') failed++;
    else if (isDone(n.status)) continue;
    else if (n.busy) busy++;
    else idle++;
  }
  return { of: p, busy, idle, failed };
}

/** The state an execution ends in: one whose every failure was a timeout ended by timing out. */
function endState(progress: Progress, state: 'succeeded' | 'failed' | 'canceled'): string {
  if (state !== 'failed') return state;
  const failed = progress.nodes.filter((n) => n.status === 'failed');
  return failed.length > 0 && failed.every((n) => /timed_out|timed out/.test(n.reason ?? '')) ? 'timed_out' : state;
}

function outcomeOf(o: StepRunOutcome): Outcome {
  return o.state === 'succeeded' ? 'succeeded' : 'failed';
}

/** Why a step did not succeed, as a node's reason shows it (null when it did). */
function reasonOf(o: StepRunOutcome): string | null {
  return o.state === 'succeeded' ? null : `${o.state}${o.exitCode !== null && o.state === 'failed' ? ` (exit ${o.exitCode})` : ''}${o.error ? `: ${o.error}` : ''}`;
}

function queueNodeState(tx: Tx, executionId: string, n: NodeProgress, now: number): void {
  const done = isDone(n.status);
  store.queueNodeState(tx, executionId, n.agentId, done ? { state: n.status, reason: n.reason, finishedAt: now } : { state: n.status, reason: n.reason, startedAt: now });
}

/** Labels a selector sees: the agent's labels plus its name and id. */
export function hostLabels(a: AgentRecord): Record<string, string> {
  return { ...a.labels, name: a.name, id: a.id };
}

function pick(values: Readonly<Record<string, string>>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) if (values[n] !== undefined) out[n] = values[n] as string;
  return out;
}
