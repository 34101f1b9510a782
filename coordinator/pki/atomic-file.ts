/** Write-then-rename (synced), so that a reader never sees a half-written key or certificate. */
import { chmod, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function atomicWriteFile(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
