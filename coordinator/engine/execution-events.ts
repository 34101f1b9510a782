/** In-process notifications about executions (finished, output), for long-polls and live views. */
import { EventEmitter } from 'node:events';
import type { ExecutionOwner } from '../store/execution-queries.js';

export interface ExecutionFinished {
  readonly executionId: string;
  readonly state: string;
  /** The runbook it ran (absent for ad-hoc commands): for metrics by runbook and team. */
  readonly runbook?: { readonly id: string; readonly owner: string };
}

/** A wait on one execution's end (see ExecutionEvents.watchFinished). */
export interface FinishWatch {
  /** Resolves when the execution finishes, the time passes, or the watch is canceled. */
  readonly finished: Promise<void>;
  /** Stops waiting now (its timer too); `finished` resolves. Harmless after it resolved. */
  cancel(): void;
  /**
   * Set when this process started the execution and has not announced its end: who may see
   * it, and that it has not finished before the watch began (its end wakes the watch), so a
   * long-poll needs no read before it waits.
   */
  readonly running?: ExecutionOwner;
}

/** Running executions remembered for long-polls (past it, the oldest are forgotten: those polls read the store). */
const MAX_RUNNING = 10_000;

export class ExecutionEvents {
  /** `changed` carries whether the change is the execution's end. */
  private readonly emitter = new EventEmitter<{ finished: [ExecutionFinished]; changed: [string, boolean] }>();
  /**
   * Long-poll waiters by execution: a finish wakes only its own waiters, not every waiter on
   * the coordinator (hundreds of API clients each waiting on their own execution).
   */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Executions started here whose end has not been announced yet (see FinishWatch.running). */
  private readonly running = new Map<string, ExecutionOwner>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  /**
   * An execution this process started (committed) and will announce the end of with finished().
   * Call it before anything can finish it (before its steps are sent).
   */
  started(executionId: string, owner: ExecutionOwner): void {
    if (this.running.size >= MAX_RUNNING) this.running.delete(this.running.keys().next().value as string);
    this.running.set(executionId, { kind: owner.kind, runbookId: owner.runbookId, requestedBy: owner.requestedBy });
  }

  finished(e: ExecutionFinished): void {
    this.running.delete(e.executionId);
    const waiting = this.waiters.get(e.executionId);
    if (waiting) for (const done of [...waiting]) done();
    this.emitter.emit('finished', e);
    this.emitter.emit('changed', e.executionId, true);
  }

  changed(executionId: string): void {
    this.emitter.emit('changed', executionId, false);
  }

  onFinished(fn: (e: ExecutionFinished) => void): () => void {
    this.emitter.on('finished', fn);
    return () => this.emitter.off('finished', fn);
  }

  /** `ended`: the execution has finished (its last change). */
  onChanged(fn: (executionId: string, ended: boolean) => void): () => void {
    this.emitter.on('changed', fn);
    return () => this.emitter.off('changed', fn);
  }

  /**
   * Starts waiting for `executionId` to finish before its state is read, so one read is enough:
   * a finish that lands after the read wakes the watch, one before it shows in the read.
   */
  watchFinished(executionId: string, timeoutMs: number): FinishWatch {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs);
      done = (): void => {
        clearTimeout(timer);
        const set = this.waiters.get(executionId);
        if (set?.delete(done) && set.size === 0) this.waiters.delete(executionId);
        resolve();
      };
    });
    let set = this.waiters.get(executionId);
    if (!set) {
      set = new Set();
      this.waiters.set(executionId, set);
    }
    set.add(done);
    const running = this.running.get(executionId);
    return running ? { finished, cancel: done, running } : { finished, cancel: done };
  }

  /** Waiters not yet woken (a test's check that every long-poll let go of its execution). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }
}
