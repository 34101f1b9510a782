/** In-process notifications about executions (finished, output), for long-polls and live views. */
import { EventEmitter } from 'node:events';

export interface ExecutionFinished {
  readonly executionId: string;
  readonly state: string;
  /** The runbook it ran (absent for ad-hoc commands): for metrics by runbook and team. */
  readonly runbook?: { readonly id: string; readonly owner: string };
}

export class ExecutionEvents {
  private readonly emitter = new EventEmitter<{ finished: [ExecutionFinished]; changed: [string] }>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  finished(e: ExecutionFinished): void {
    this.emitter.emit('finished', e);
    this.emitter.emit('changed', e.executionId);
  }

  changed(executionId: string): void {
    this.emitter.emit('changed', executionId);
  }

  onFinished(fn: (e: ExecutionFinished) => void): () => void {
    this.emitter.on('finished', fn);
    return () => this.emitter.off('finished', fn);
  }

  onChanged(fn: (executionId: string) => void): () => void {
    this.emitter.on('changed', fn);
    return () => this.emitter.off('changed', fn);
  }

  /** Resolves when `executionId` finishes or `timeoutMs` passes (whichever first). */
  waitFinished(executionId: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const onFinished = (e: ExecutionFinished): void => {
        if (e.executionId !== executionId) return;
        done();
      };
      const timer = setTimeout(() => done(), timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.emitter.off('finished', onFinished);
        resolve();
      };
      this.emitter.on('finished', onFinished);
    });
  }
}
