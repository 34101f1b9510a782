/**
 * The result spool: every accepted step gets a directory holding the signed request, the
 * captured output and, once finished, the signed result. It is removed only when the
 * coordinator acknowledges the result, so nothing finished while the stream is down (or
 * while the coordinator restarts) is lost.
 *
 *   spool/<sha256(execution/step)[0:32]>/
 *     meta.json    ids, start time, pid
 *     request.bin  the signed request payload
 *     stdout, stderr
 *     result.bin   encoded SignedResult (written last, atomically)
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { atomicWrite } from './state-dir.js';

export interface SpoolMeta {
  readonly executionId: string;
  readonly stepId: string;
  readonly startedAtMs: number;
  readonly pid: number | null;
  /** The process's start time (/proc/PID/stat) and the boot it ran in: a pid alone may be reused. */
  readonly processStart?: string;
  readonly bootId?: string;
  readonly maxOutputBytes: number;
}

/** Who a pid is right now (Linux): its start time since boot, and the boot id. */
export async function processIdentity(pid: number): Promise<{ processStart: string; bootId: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const start = fields[19];
    return start ? { processStart: start, bootId } : undefined;
  } catch {
    return undefined;
  }
}

export type StreamName = 'stdout' | 'stderr';

export class SpoolEntry {
  private readonly handles = new Map<StreamName, FileHandle>();

  constructor(
    readonly dir: string,
    readonly meta: SpoolMeta,
  ) {}

  async append(stream: StreamName, data: Uint8Array): Promise<void> {
    let fh = this.handles.get(stream);
    if (!fh) {
      fh = await open(join(this.dir, stream), 'a', 0o600);
      this.handles.set(stream, fh);
    }
    await fh.write(data);
  }

  async closeStreams(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
    this.handles.clear();
  }

  async setPid(pid: number): Promise<void> {
    const identity = await processIdentity(pid);
    // Atomic: a crash mid-write must not leave meta.json half-written (the entry would be dropped).
    await atomicWrite(join(this.dir, 'meta.json'), JSON.stringify({ ...this.meta, pid, ...(identity ?? {}) }), 0o600);
  }

  /** Moves the entry to spool/refused/ (kept for inspection, never resent). */
  async setAside(): Promise<void> {
    await this.closeStreams();
    const dest = join(dirname(this.dir), 'refused');
    await mkdir(dest, { recursive: true, mode: 0o700 });
    await rename(this.dir, join(dest, basename(this.dir)));
  }

  async writeResult(encodedSignedResult: Uint8Array): Promise<void> {
    await this.closeStreams();
    await atomicWrite(join(this.dir, 'result.bin'), encodedSignedResult, 0o600);
  }

  async readResult(): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.dir, 'result.bin'));
    } catch {
      return undefined;
    }
  }

  async readRequest(): Promise<Buffer> {
    return readFile(join(this.dir, 'request.bin'));
  }

  /** Captured output in chunks of at most `chunk` bytes, with offsets. */
  async *readOutput(stream: StreamName, chunk = 64 * 1024): AsyncGenerator<{ offset: number; data: Buffer }> {
    let fh: FileHandle;
    try {
      fh = await open(join(this.dir, stream), 'r');
    } catch {
      return;
    }
    try {
      let offset = 0;
      for (;;) {
        const buf = Buffer.allocUnsafe(chunk);
        const { bytesRead } = await fh.read(buf, 0, chunk, offset);
        if (bytesRead === 0) return;
        yield { offset, data: buf.subarray(0, bytesRead) };
        offset += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }

  async outputSize(stream: StreamName): Promise<number> {
    try {
      return (await stat(join(this.dir, stream))).size;
    } catch {
      return 0;
    }
  }

  async remove(): Promise<void> {
    await this.closeStreams();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class Spool {
  constructor(private readonly root: string) {}

  dirFor(executionId: string, stepId: string): string {
    return join(this.root, createHash('sha256').update(`${executionId}/${stepId}`).digest('hex').slice(0, 32));
  }

  async exists(executionId: string, stepId: string): Promise<boolean> {
    try {
      await stat(join(this.dirFor(executionId, stepId), 'meta.json'));
      return true;
    } catch {
      return false;
    }
  }

  async begin(meta: SpoolMeta, requestPayload: Uint8Array): Promise<SpoolEntry> {
    const dir = this.dirFor(meta.executionId, meta.stepId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'request.bin'), requestPayload, { mode: 0o600 });
    await writeFile(join(dir, 'meta.json'), JSON.stringify(meta), { mode: 0o600 });
    return new SpoolEntry(dir, meta);
  }

  /** Every entry on disk (at start-up: finished ones to deliver, interrupted ones to close out). */
  async entries(): Promise<SpoolEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const out: SpoolEntry[] = [];
    for (const n of names) {
      if (!/^[0-9a-f]{32}$/.test(n)) continue;
      const dir = join(this.root, n);
      try {
        const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SpoolMeta;
        out.push(new SpoolEntry(dir, meta));
      } catch {
        await rm(dir, { recursive: true, force: true }); // a half-created entry: the step never started
      }
    }
    return out.sort((a, b) => a.meta.startedAtMs - b.meta.startedAtMs);
  }
}
