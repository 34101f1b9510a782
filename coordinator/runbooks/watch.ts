/** Reloads the catalog when files under its directory change (debounced). */
import { watch, type FSWatcher } from 'node:fs';

export function watchDirectory(dir: string, onChange: () => void, debounceMs = 300): () => void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { recursive: true }, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined; // no such directory yet: reload on demand still works
  }
  return () => {
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
