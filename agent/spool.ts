/**
 * The result spool: every accepted step is held until the coordinator acknowledges its result,
 * so nothing finished while the stream is down (or while the coordinator restarts) is lost.
 * What a step must keep across a crash (nonce, signed request, pid, signed result) is in the
 * step journal (step-journal.ts); its captured output is here, in files made at its first byte:
 *
 *   spool/<sha256(execution/step)[0:32]>/stdout, stderr
 *   spool/refused/<same>/   a result the coordinator refused: request.bin, meta.json, result.bin
 *                           and the output, kept for inspection, never resent
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { JournalStep, StepJournal } from './step-journal.js';

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
    // procfs answers from memory: a synchronous read costs less than a trip through libuv's pool.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
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

export type StreamName = 'stdout' | 'stderr';

export class SpoolEntry {
  private readonly handles = new Map<StreamName, FileHandle>();
  /** Set once this process made the output directory (or found one on disk). */
  private outputDir = false;

  constructor(
    readonly dir: string,
    private readonly step: JournalStep,
    private readonly journal: StepJournal,
    fromDisk = false,
  ) {
    this.outputDir = fromDisk;
  }

  get meta(): SpoolMeta {
    const s = this.step;
    return {
      executionId: s.executionId,
      stepId: s.stepId,
      startedAtMs: s.startedAtMs,
      pid: s.pid,
      maxOutputBytes: s.maxOutputBytes,
      ...(s.processStart !== undefined ? { processStart: s.processStart } : {}),
      ...(s.bootId !== undefined ? { bootId: s.bootId } : {}),
    };
  }

  async append(stream: StreamName, data: Uint8Array): Promise<void> {
    let fh = this.handles.get(stream);
    if (!fh) {
      if (!this.outputDir) await mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.outputDir = true;
      fh = await open(join(this.dir, stream), 'a', 0o600);
      this.handles.set(stream, fh);
    }
    await fh.write(data);
  }

  async closeStreams(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close().catch(() => undefined);
    this.handles.clear();
  }

  /**
   * Records who runs the step, so an agent restarted after a crash can stop what the step left
   * behind. Not synced: the pid matters only within this boot, and the page cache outlives a
   * crashed agent process; after a power loss the step's processes are gone anyway.
   */
  async setPid(pid: number): Promise<void> {
    const identity = await processIdentity(pid);
    await this.journal.setPid(this.step.key, pid, identity);
  }

  /** Moves the entry to spool/refused/ (kept for inspection, never resent). */
  async setAside(): Promise<void> {
    await this.closeStreams();
    const dest = join(dirname(this.dir), 'refused', basename(this.dir));
    await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
    // The output goes with it; a step found on disk may have had none (no directory).
    const moved = this.outputDir
      ? await rename(this.dir, dest).then(
          () => true,
          (e: NodeJS.ErrnoException) => {
            if (e.code === 'ENOENT') return false;
            throw e;
          },
        )
      : false;
    if (!moved) await mkdir(dest, { recursive: true, mode: 0o700 });
    await writeFile(join(dest, 'request.bin'), this.step.request, { mode: 0o600 });
    await writeFile(join(dest, 'meta.json'), JSON.stringify(this.meta), { mode: 0o600 });
    if (this.step.result) await writeFile(join(dest, 'result.bin'), this.step.result, { mode: 0o600 });
    await this.journal.done(this.step.key);
  }

  /**
   * Stores the encoded SignedResult: in the file (safe from a kill of the agent) when this
   * resolves, synced (safe from a power loss) when `durable` does (see StepJournal.setResult).
   */
  async writeResult(encodedSignedResult: Uint8Array): Promise<{ durable: Promise<void> }> {
    await this.closeStreams();
    const { written, durable } = this.journal.setResult(this.step.key, encodedSignedResult);
    await written;
    return { durable };
  }

  readResult(): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.step.result);
  }

  readRequest(): Promise<Uint8Array> {
    return Promise.resolve(this.step.request);
  }

  /** Captured output in chunks of at most `chunk` bytes, with offsets. */
  async *readOutput(stream: StreamName, chunk = 64 * 1024): AsyncGenerator<{ offset: number; data: Buffer }> {
    if (!this.outputDir) return;
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
    if (!this.outputDir) return 0;
    try {
      return (await stat(join(this.dir, stream))).size;
    } catch {
      return 0;
    }
  }

  /** The step is acknowledged: the journal lets it go, and its output goes. */
  async remove(): Promise<void> {
    await this.closeStreams();
    await this.journal.done(this.step.key);
    if (this.outputDir) await rm(this.dir, { recursive: true, force: true });
  }
}

export class Spool {
  constructor(
    private readonly root: string,
    private readonly journal: StepJournal,
  ) {}

  dirFor(executionId: string, stepId: string): string {
    return join(this.root, createHash('sha256').update(`${executionId}/${stepId}`).digest('hex').slice(0, 32));
  }

  /** Takes a step on: its nonce and signed request are durable (one record, one sync) when this resolves. */
  async begin(meta: Omit<SpoolMeta, 'pid'>, requestPayload: Uint8Array, nonce: Uint8Array, notAfterMs: number): Promise<SpoolEntry> {
    const dir = this.dirFor(meta.executionId, meta.stepId);
    const step = await this.journal.begin(
      { key: basename(dir), executionId: meta.executionId, stepId: meta.stepId, startedAtMs: meta.startedAtMs, maxOutputBytes: meta.maxOutputBytes, request: requestPayload },
      nonce,
      notAfterMs,
    );
    return new SpoolEntry(dir, step, this.journal);
  }

  /**
   * Every step held (at start-up: finished ones to deliver, interrupted ones to close out), after
   * the journal is loaded. Output directories of steps the journal no longer holds (acknowledged
   * just before a crash) are removed.
   */
  async entries(): Promise<SpoolEntry[]> {
    const steps = this.journal.steps();
    const held = new Set(steps.map((s) => s.key));
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const n of names) if (/^[0-9a-f]{32}$/.test(n) && !held.has(n)) await rm(join(this.root, n), { recursive: true, force: true });
    return steps.map((s) => new SpoolEntry(join(this.root, s.key), s, this.journal, true));
  }
}
