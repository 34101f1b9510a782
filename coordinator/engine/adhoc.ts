/**
 * Ad-hoc commands: one step (argv or script) on explicit agents, outside any runbook. An
 * execution like any other (stored, signed, audited); agents refuse it unless their local
 * policy allows ad-hoc commands.
 */
import type { Logger } from 'pino';
import type { Database, Tx } from '../store/database.js';
import * as store from '../store/execution-store.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { AgentRecord, AgentRegistry } from '../registry/agent-registry.js';
import type { StepDispatcher, StepRunOutcome } from './step-dispatcher.js';
import { newId } from '../../core/ids.js';
import type { ExecutionEvents } from './execution-events.js';
import { invalidArgument } from '../../core/errors.js';
import type { ScriptSpec } from '../../core/step.js';
import type { ExecutionNotifier } from '../notify/outbox.js';

export interface AdhocRequest {
  readonly agentIds: readonly string[];
  readonly argv: readonly string[];
  readonly script: ScriptSpec | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly requestedBy: string;
}

export class AdhocRunner {
  /** Step runs still open and failures so far, per execution started here. */
  private readonly progress = new Map<string, { remaining: number; failed: number }>();
  private readonly kinds = new Map<string, Promise<string | undefined>>();
  /**
   * Step runs whose node (and execution, if it was the last) were closed in the result's own
   * transaction, with the state the execution ended in: announced on the dispatcher's
   * 'finished', outside the commit (a listener's error must not look like a failed commit).
   */
  private readonly closedWithResult = new Map<string, { finalState: string | undefined }>();

  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    private readonly registry: AgentRegistry,
    private readonly dispatcher: StepDispatcher,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly events: ExecutionEvents,
    /** Queues outbound notifications in the transaction of the state change they announce. */
    private readonly notifier?: ExecutionNotifier,
  ) {
    dispatcher.onResultStoring((tx, o) => this.closeWithResult(tx, o));
    dispatcher.events.on('finished', (o) => {
      this.onFinished(o).catch((e: unknown) => this.log.error({ event: 'adhoc.finish_failed', executionId: o.executionId, err: e }, 'closing an ad-hoc execution failed'));
    });
  }

  /** An execution's kind, looked up once (the most recent few hundred are remembered). */
  private kindOf(executionId: string): Promise<string | undefined> {
    let kind = this.kinds.get(executionId);
    if (!kind) {
      kind = store.executionKind(this.db, executionId).then((r) => r?.kind);
      this.kinds.set(executionId, kind);
      kind.catch(() => this.kinds.delete(executionId));
      if (this.kinds.size > 512) this.kinds.delete(this.kinds.keys().next().value as string);
    }
    return kind;
  }

  async start(req: AdhocRequest): Promise<{ executionId: string; stepRunIds: Record<string, string> }> {
    if (req.agentIds.length === 0) throw invalidArgument('name at least one agent');
    if (req.argv.length === 0 && !req.script) throw invalidArgument('give a command (argv) or a script');
    if (req.argv.length > 0 && req.script) throw invalidArgument('give either a command or a script, not both');
    const agents: AgentRecord[] = [];
    const byId = await this.registry.getMany([...new Set(req.agentIds)]);
    for (const id of new Set(req.agentIds)) {
      const a = byId.get(id);
      if (!a) throw invalidArgument(`no agent ${id}`);
      if (a.revokedAt !== null) throw invalidArgument(`agent ${id} is revoked`);
      agents.push(a);
    }
    this.dispatcher.assertFits({ argv: req.argv, script: req.script, env: req.env, workingDir: req.workingDir });
    const executionId = newId('exe');
    const now = this.now();
    const stepRunIds: Record<string, string> = {};
    this.progress.set(executionId, { remaining: agents.length, failed: 0 });
    for (const a of agents) stepRunIds[a.id] = newId('sr');
    // Queued in the same tick as the dispatches below, so the execution and its signed steps
    // commit in one transaction (one commit and fsync, not two). A step is sent only once its own
    // write, and with it this one, has committed; step rows need the execution (foreign key).
    const recorded = this.db.batch(async (tx) => {
      await store.insertAdhocExecution(tx, { id: executionId, requestedBy: req.requestedBy, targets: agents.map((a) => a.id).join(','), createdAt: now });
      store.queueNodes(tx, executionId, agents.map((a) => ({ agentId: a.id, name: a.name })), 'running', now);
      await this.audit.append(tx, {
        type: AuditEvents.executionRequested,
        actor: { kind: 'user', id: req.requestedBy },
        data: { executionId, kind: 'adhoc', runbookId: null, runbookDigest: null, options: {}, targets: agents.map((a) => a.id), argv: [...req.argv], script: req.script ? { interpreter: [...req.script.interpreter] } : null },
      });
      await this.notifier?.queue(tx, 'execution.started', executionId);
    });
    // Once committed, and before any of its steps can have been answered: a long-poll on it can
    // wait without reading who owns it (ExecutionEvents.started).
    const announced = recorded.then(() => this.events.started(executionId, { kind: 'adhoc', runbookId: null, requestedBy: req.requestedBy }));
    // Dispatched together so the store commits them in a few batched transactions.
    const dispatched = Promise.all(
      agents.map(async (a) => {
        const { sent } = await this.dispatcher.dispatch({
          executionId,
          stepRunId: stepRunIds[a.id] as string,
          agentId: a.id,
          stepIndex: 0,
          attempt: 1,
          handler: false,
          name: 'adhoc',
          argv: req.argv,
          script: req.script,
          env: req.env,
          secretEnv: [],
          workingDir: req.workingDir,
          timeoutMs: req.timeoutMs,
          maxOutputBytes: req.maxOutputBytes,
          runbookId: '',
          runbookOwner: '',
        });
        if (!sent) this.log.info({ event: 'adhoc.agent_offline', executionId, agentId: a.id }, 'agent offline; the step is sent when it reconnects');
      }),
    );
    const [execution, steps] = await Promise.allSettled([announced, dispatched]);
    if (execution.status === 'rejected') throw execution.reason;
    this.notifier?.committed();
    if (steps.status === 'rejected') throw steps.reason;
    return { executionId, stepRunIds };
  }

  /**
   * Stops an ad-hoc execution at once: it ends as canceled, and open steps are canceled on
   * their agents (whatever those report later is recorded on the steps).
   */
  async cancel(executionId: string, by: string): Promise<boolean> {
    const now = this.now();
    const changed = await this.db.write(async (tx) => {
      const r = await store.cancelRunningAdhoc(tx, executionId, now, by);
      if (r.changes === 1) {
        await this.audit.append(tx, [
          { type: AuditEvents.executionCanceled, actor: { kind: 'user', id: by }, data: { executionId } },
          { type: AuditEvents.executionCompleted, actor: { kind: 'system', id: 'coordinator' }, data: { executionId, state: 'canceled', reason: `canceled by ${by}` } },
        ]);
        await this.notifier?.queue(tx, 'execution.finished', executionId);
      }
      return r.changes === 1;
    });
    if (!changed) return false;
    this.notifier?.committed();
    this.progress.delete(executionId);
    // Steps stay open until their agents confirm; one that never does is closed as canceled by
    // the dispatcher's watchdog.
    for (const id of await store.openStepRunIds(this.db, executionId)) await this.dispatcher.cancel(id);
    this.events.finished({ executionId, state: 'canceled' });
    return true;
  }

  /**
   * A result of a step this process dispatched for an ad-hoc execution it started: its node, and
   * the execution when it was the last open step, are written in the transaction that stores the
   * result (one commit). Other outcomes (refusals, given-up steps, results after a restart) are
   * closed by onFinished once they are committed.
   */
  private async closeWithResult(tx: Tx, o: StepRunOutcome): Promise<void> {
    const progress = this.progress.get(o.executionId);
    if (!progress) return;
    const failed = o.state !== 'succeeded';
    progress.remaining--;
    if (failed) progress.failed++;
    // Several results of one execution can share the transaction: each counts on the last.
    tx.afterRollback(() => {
      progress.remaining++;
      if (failed) progress.failed--;
    });
    const done = progress.remaining <= 0;
    const finalState = await this.close(tx, o, done, progress.failed, this.now());
    tx.afterCommit(() => {
      this.closedWithResult.set(o.stepRunId, { finalState });
      if (done) this.progress.delete(o.executionId);
    });
  }

  private async onFinished(o: StepRunOutcome): Promise<void> {
    const closed = this.closedWithResult.get(o.stepRunId);
    if (closed) {
      this.closedWithResult.delete(o.stepRunId);
      this.announce(o.executionId, closed.finalState);
      return;
    }
    let progress = this.progress.get(o.executionId);
    if (!progress) {
      // Most outcomes without a count here are runbook steps (the engine's): one lookup per
      // execution, not one per step.
      if ((await this.kindOf(o.executionId)) !== 'adhoc') return;
      progress = this.progress.get(o.executionId);
    }
    if (!progress) {
      // Not started by this process (it restarted): rebuild the count from the store once.
      const exec = await store.executionKind(this.db, o.executionId);
      if (!exec || exec.kind !== 'adhoc') return;
      if (exec.state !== 'running') {
        // Ended already (canceled): the node still shows what its step did.
        await this.db.batch(async (tx) => store.queueAdhocNodeOutcome(tx, o.executionId, o.agentId, o.state, this.now(), o.error));
        return;
      }
      const counts = await store.stepCounts(this.db, o.executionId);
      // This outcome is already in the store, so it is counted in open/bad.
      progress = { remaining: counts.open + 1, failed: counts.bad - (o.state === 'succeeded' ? 0 : 1) };
      this.progress.set(o.executionId, progress);
    }
    progress.remaining--;
    if (o.state !== 'succeeded') progress.failed++;
    const done = progress.remaining <= 0;
    if (done) this.progress.delete(o.executionId);
    const failed = progress.failed;
    const now = this.now();
    const finalState = await this.db.batch((tx) => this.close(tx, o, done, failed, now));
    this.announce(o.executionId, finalState);
  }

  /** Records a step's outcome on its node and, when `done`, ends the execution; the state it ended in. */
  private async close(tx: Tx, o: StepRunOutcome, done: boolean, failed: number, now: number): Promise<string | undefined> {
    store.queueAdhocNodeOutcome(tx, o.executionId, o.agentId, o.state, now, o.error);
    if (!done) return undefined;
    const state = await store.finishRunningAdhoc(tx, o.executionId, failed > 0 ? 'failed' : 'succeeded', now);
    if (state === undefined) return undefined;
    await this.audit.append(tx, { type: AuditEvents.executionCompleted, actor: { kind: 'system', id: 'coordinator' }, data: { executionId: o.executionId, state } });
    await this.notifier?.queue(tx, 'execution.finished', o.executionId);
    return state;
  }

  /** After the commit: the execution ended (in `finalState`) or one of its steps did. */
  private announce(executionId: string, finalState: string | undefined): void {
    if (finalState) {
      this.notifier?.committed();
      this.events.finished({ executionId, state: finalState });
    } else this.events.changed(executionId);
  }
}
