/** Admin commands act on the coordinator's data dir directly: open it, run, always close it. */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DataDir } from '../coordinator/data-dir.js';
import type { CliIo } from './io.js';
import { HandrailError } from '../core/errors.js';
import { str, UsageError, type ParsedCommand } from './options.js';

export async function withDataDir<T>(p: ParsedCommand, io: CliIo, fn: (data: DataDir) => Promise<T>): Promise<T> {
  const dir = str(p.values, 'data-dir') as string;
  // Loaded here, not at the top: every admin command's module imports this one, and
  // `handrail --help` loads them all; the store (SQLite, migrations, keyring) is only for running.
  const { openDataDir, STORE_FILE } = await import('../coordinator/data-dir.js');
  // A typo must not quietly create a second, empty store with its own keys.
  const found = await stat(join(dir, STORE_FILE)).then((s) => s.isFile(), () => false);
  if (!found) throw new UsageError(`no Handrail store in ${dir} (${join(dir, STORE_FILE)} is missing)`, 'run this on the coordinator host, with --data-dir (or HANDRAIL_DATA_DIR) set to the coordinator\'s data dir; the coordinator creates it when it first starts');
  let data: DataDir;
  try {
    data = await openDataDir(dir, io.now);
  } catch (e) {
    // Our own refusals (a store newer than this build) already say what to do.
    if (e instanceof HandrailError) throw e;
    throw new UsageError(`cannot open the store in ${dir}: ${(e as Error).message}`);
  }
  try {
    return await fn(data);
  } finally {
    await data.close();
  }
}
