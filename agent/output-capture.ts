/**
 * Captures one output stream of a step. Bytes up to the cap go to the sink in order, in pieces
 * of at most 64 KiB, each with its offset, and into a SHA-256 over exactly the bytes handed to
 * the sink (the hash the agent signs). Bytes past the cap are read, counted and dropped, so a
 * chatty process never blocks on a full pipe once it is over its budget.
 *
 * Backpressure: while the sink's promise is pending the pipe is paused, the kernel buffer fills
 * and the child blocks in write(). The runner then holds at most one read plus the rest of the
 * chunk being delivered, however slow the sink.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

export type OutputStreamName = 'stdout' | 'stderr';

/**
 * Receives captured output, in order per stream. If it returns a promise, that stream is not
 * read again until it settles; a rejection (or a throw) fails the step. The promise must settle.
 */
export type OutputSink = (stream: OutputStreamName, offset: number, data: Buffer) => void | Promise<void>;

export interface StreamSummary {
  /** SHA-256 of the captured bytes (of the empty string when nothing was captured). */
  readonly sha256: Buffer;
  /** Bytes handed to the sink. */
  readonly capturedBytes: number;
  /** Bytes the process wrote, captured or not. */
  readonly totalBytes: number;
  readonly truncated: boolean;
}

/** Largest piece handed to the sink: one pipe read on Linux, and one bounded stream message. */
export const MAX_SINK_CHUNK = 64 * 1024;

interface Piece {
  readonly offset: number;
  readonly data: Buffer;
}

export class OutputCapture {
  private readonly hash = createHash('sha256');
  /** Bytes accepted under the cap (queued or delivered); the next piece's offset. */
  private accepted = 0;
  /** Bytes handed to the sink. */
  private captured = 0;
  private total = 0;
  private readonly queue: Piece[] = [];
  private sinkBusy = false;
  private failed = false;
  private closed = false;
  private stream: Readable | null = null;
  private quietMs = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  private settled: StreamSummary | undefined;
  private resolveDone: () => void = () => undefined;
  /** Resolves once the stream is closed and everything captured has been through the sink. */
  readonly done: Promise<void>;

  constructor(
    readonly name: OutputStreamName,
    private readonly limit: number,
    private readonly sink: OutputSink,
    private readonly onSinkError: (error: unknown) => void,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** Starts reading `stream`; null (no pipe, e.g. the spawn failed) counts as already closed. */
  attach(stream: Readable | null): void {
    if (!stream) {
      this.onClose();
      return;
    }
    this.stream = stream;
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    // A read error ends the stream like EOF does; 'close' follows it.
    stream.on('error', () => undefined);
    stream.on('close', () => this.onClose());
  }

  /**
   * From now on, close the pipe once it has been idle for `ms` while we wait for data (time
   * spent waiting on the sink does not count). For a process that left the step's group
   * (setsid) but kept the pipe: after the group is gone, only such a process can still hold it.
   */
  closeWhenQuiet(ms: number): void {
    this.quietMs = ms;
    this.armQuiet();
  }

  /** Closes the pipe now; what was already read is still delivered. */
  cut(): void {
    this.stream?.destroy();
  }

  /** The final figures; call after `done`. */
  summary(): StreamSummary {
    this.settled ??= {
      sha256: this.hash.digest(),
      capturedBytes: this.captured,
      totalBytes: this.total,
      truncated: this.total > this.captured,
    };
    return this.settled;
  }

  private onData(chunk: Buffer): void {
    this.total += chunk.length;
    this.armQuiet();
    const room = this.failed ? 0 : this.limit - this.accepted;
    if (room <= 0) return;
    const take = chunk.length > room ? chunk.subarray(0, room) : chunk;
    for (let at = 0; at < take.length; at += MAX_SINK_CHUNK) {
      this.queue.push({ offset: this.accepted + at, data: take.subarray(at, at + MAX_SINK_CHUNK) });
    }
    this.accepted += take.length;
    this.pump();
  }

  private pump(): void {
    while (!this.sinkBusy && !this.failed) {
      const piece = this.queue.shift();
      if (!piece) break;
      this.hash.update(piece.data);
      this.captured += piece.data.length;
      let pending: void | Promise<void>;
      try {
        pending = this.sink(this.name, piece.offset, piece.data);
      } catch (e) {
        this.fail(e);
        return;
      }
      if (isThenable(pending)) {
        this.sinkBusy = true;
        this.stream?.pause();
        this.disarmQuiet();
        pending.then(
          () => {
            this.sinkBusy = false;
            this.pump();
            if (!this.sinkBusy) this.stream?.resume();
          },
          (e: unknown) => {
            this.sinkBusy = false;
            this.fail(e);
          },
        );
        return;
      }
    }
    this.armQuiet();
    this.maybeDone();
  }

  /** The sink failed: report it once, stop capturing, keep draining so the child is not blocked. */
  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.queue.length = 0;
    this.stream?.resume();
    this.onSinkError(error);
    this.armQuiet();
    this.maybeDone();
  }

  private onClose(): void {
    this.closed = true;
    this.disarmQuiet();
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.closed && !this.sinkBusy && (this.failed || this.queue.length === 0)) this.resolveDone();
  }

  private armQuiet(): void {
    this.disarmQuiet();
    if (this.quietMs <= 0 || this.closed || this.sinkBusy) return;
    this.quietTimer = setTimeout(() => this.cut(), this.quietMs);
  }

  private disarmQuiet(): void {
    if (this.quietTimer !== undefined) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
  }
}

function isThenable(v: unknown): v is Promise<void> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
