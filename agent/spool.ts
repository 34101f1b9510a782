/**
 * The result spool: every accepted step gets a directory holding the signed request, the
 * captured output and, once finished, the signed result. It is removed only when the
 * coordinator acknowledges the result, so nothing finished while the stream is down (or
 * while the coordinator restarts) is lost.
 *
 *   spool/<sha256(execution/step)[0:32]>/
 *     meta.json    ids, start time (written once, when the step is accepted)
 *     pid.json     the step's pid and who that pid is (start time, boot id), once it runs
 *     request.bin  the signed request payload
 *     stdout, stderr
 *     result.bin   encoded SignedResult (written last, atomically)
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
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

/** The boot id does not change while this process lives: read once. */
let bootIdOnce: Promise<string> | undefined;

/** Who a pid is right now (Linux): its start time since boot, and the boot id. */
export async function processIdentity(pid: number): Promise<{ processStart: string; bootId: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    bootIdOnce ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((t) => t.trim());
    const bootId = await bootIdOnce.catch((e: unknown) => {
      bootIdOnce = undefined;
      throw e;
    });
    const start = fields[19];
    return start ? { processStart: start, bootId } : undefined;
  } catch {
    return undefined;
  }
}

/** What pid.json holds. */
interface PidRecord {
  readonly pid: number;
  readonly processStart?: string;
  readonly bootId?: string;
}

function isPidRecord(v: unknown): v is PidRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return Number.isSafeInteger(r['pid']) && (r['processStart'] === undefined || typeof r['processStart'] === 'string') && (r['bootId'] === undefined || typeof r['bootId'] === 'string');
}


export type StreamName = 'stdout' | 'stderr';

export class SpoolEntry {
  private readonly handles = new Map<StreamName, FileHandle>();
  /** The signed result this process wrote (what deliver sends), so it is not read back from disk. */
  private result: Uint8Array | undefined;

  /**
   * The files this process wrote into the entry, when it created the entry (begin): remove()
   * deletes them without listing the directory. Undefined for an entry found on disk.
   */
  private readonly written: Set<string> | undefined;

  /** `request`: the payload begin() wrote, kept so seal() need not read it back. */
  constructor(
    readonly dir: string,
    readonly meta: SpoolMeta,
    private readonly request?: Uint8Array,
  ) {
    this.written = request ? new Set(['request.bin', 'meta.json']) : undefined;
  }

  async append(stream: StreamName, data: Uint8Array): Promise<void> {
    let fh = this.handles.get(stream);
    if (!fh) {
      fh = await open(join(this.dir, stream), 'a', 0o600);
      this.handles.set(stream, fh);
      this.written?.add(stream);
    }
    await fh.write(data);
  }

  async closeStreams(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
    this.handles.clear();
  }

  /**
   * Records who runs the step, so an agent restarted after a crash can stop what the step left
   * behind. A file of its own, written without fsync or rename: meta.json stays as begin() wrote
   * it, so a torn pid.json costs only that cleanup (as a crash before this write does). No fsync:
   * the pid matters only within this boot, and the page cache outlives a crashed agent process;
   * after a power loss the step's processes are gone anyway.
   */
  async setPid(pid: number): Promise<void> {
    const identity = await processIdentity(pid);
    const record: PidRecord = { pid, ...(identity ?? {}) };
    this.written?.add('pid.json');
    await writeFile(join(this.dir, 'pid.json'), JSON.stringify(record), { mode: 0o600 });
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
    this.written?.add('result.bin');
    await atomicWrite(join(this.dir, 'result.bin'), encodedSignedResult, 0o600);
    this.result = encodedSignedResult;
  }

  async readResult(): Promise<Uint8Array | undefined> {
    if (this.result) return this.result;
    try {
      return await readFile(join(this.dir, 'result.bin'));
    } catch {
      return undefined;
    }
  }

  async readRequest(): Promise<Uint8Array> {
    return this.request ?? readFile(join(this.dir, 'request.bin'));
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
    // Its files, then the directory: fewer calls than rm -r's stat-and-list walk. Anything
    // else in it (an older agent's leftovers, a stray temp file) falls back to rm -r.
    try {
      const files = this.written ?? new Set(await readdir(this.dir));
      await Promise.all(
        [...files].map((f) =>
          unlink(join(this.dir, f)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          }),
        ),
      );
      await rmdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await rm(this.dir, { recursive: true, force: true });
    }
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
    return new SpoolEntry(dir, meta, requestPayload);
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
        out.push(new SpoolEntry(dir, { ...meta, ...(await readPidRecord(dir)) }));
      } catch {
        await rm(dir, { recursive: true, force: true }); // a half-created entry: the step never started
      }
    }
    return out.sort((a, b) => a.meta.startedAtMs - b.meta.startedAtMs);
  }
}

/** pid.json if it is there and whole; a torn or missing one only means no leftover cleanup. */
async function readPidRecord(dir: string): Promise<PidRecord | undefined> {
  try {
    const v: unknown = JSON.parse(await readFile(join(dir, 'pid.json'), 'utf8'));
    return isPidRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
