/** In-process notifications about executions (finished, output), for long-polls and live views. */
import { EventEmitter } from 'node:events';

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
}

export class ExecutionEvents {
  /** `changed` carries whether the change is the execution's end. */
  private readonly emitter = new EventEmitter<{ finished: [ExecutionFinished]; changed: [string, boolean] }>();
  /**
   * Long-poll waiters by execution: a finish wakes only its own waiters, not every waiter on
   * the coordinator (hundreds of API clients each waiting on their own execution).
   */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  finished(e: ExecutionFinished): void {
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
    return { finished, cancel: done };
  }

  /** Waiters not yet woken (a test's check that every long-poll let go of its execution). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }
}
