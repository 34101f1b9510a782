/**
 * The private temp file a script step's body is written to: a fresh 0700 directory holding
 * one 0600 file, so no other local user can read the body or swap the file between writing
 * and running it. The interpreter reads it as an argument, so it needs no exec bit.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ScriptFile {
  readonly path: string;
  /** Removes the file and its directory; never throws. */
  remove(): Promise<void>;
}

export async function writeScriptFile(body: string, parentDir: string): Promise<ScriptFile> {
  // mkdtemp creates the directory 0700 and fails rather than reuse an existing one.
  const dir = await mkdtemp(join(parentDir, 'handrail-step-'));
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true }).catch(() => undefined);
  const path = join(dir, 'script');
  try {
    await writeFile(path, body, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    await remove();
    throw e;
  }
  return { path, remove };
}
