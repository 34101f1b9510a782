/**
 * Calls back when files under a directory change, debounced so that a `git pull` touching ten
 * files causes one reload. If the directory is missing or its watcher dies (the directory was
 * replaced, as a ConfigMap update or a checkout can do), watching is re-armed periodically and
 * a change is reported once it is back.
 */
import { watch, type FSWatcher } from 'node:fs';

export interface WatchOptions {
  /** Quiet time after the last event before `onChange` runs. @default 300 */
  readonly debounceMs?: number;
  /** How often to try again while the directory cannot be watched. @default 5000 */
  readonly retryMs?: number;
}

export function watchDirectory(dir: string, onChange: () => void, options: WatchOptions | number = {}): () => void {
  const { debounceMs = 300, retryMs = 5000 } = typeof options === 'number' ? { debounceMs: options } : options;
  let timer: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let stopped = false;

  const changed = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!stopped) onChange();
    }, debounceMs);
  };
  const arm = (afterFailure: boolean): void => {
    retry = undefined;
    if (stopped) return;
    try {
      watcher = watch(dir, { recursive: true }, changed);
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined;
        changed();
        if (!stopped) retry = setTimeout(() => arm(true), retryMs).unref();
      });
      // Whatever happened while nobody watched is caught up by one reload.
      if (afterFailure) changed();
    } catch {
      watcher = undefined;
      retry = setTimeout(() => arm(true), retryMs).unref();
    }
  };
  arm(false);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (retry) clearTimeout(retry);
    watcher?.close();
  };
}
