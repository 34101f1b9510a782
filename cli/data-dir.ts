/** Admin commands act on the coordinator's data dir directly: open it, run, always close it. */
import { openDataDir, type DataDir } from '../coordinator/data-dir.js';
import type { CliIo } from './io.js';
import { str, type ParsedCommand } from './options.js';

export async function withDataDir<T>(p: ParsedCommand, io: CliIo, fn: (data: DataDir) => Promise<T>): Promise<T> {
  const data = await openDataDir(str(p.values, 'data-dir') as string, io.now);
  try {
    return await fn(data);
  } finally {
    await data.close();
  }
}
