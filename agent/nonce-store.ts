/**
 * Nonces of accepted steps, kept until their request expires, on disk so that a replay is
 * refused even after the agent restarts or loses power. Append-only log, compacted at start.
 *
 * Durability: `add` resolves only after the line is on disk (write + fdatasync; concurrent adds
 * share one sync). Clock safety: the log remembers the latest not-after time of any nonce it
 * forgot (`prunedThroughMs`), and a request that expires at or before it is refused as expired
 * whatever the clock says, so a clock set back cannot revive an envelope whose nonce is gone.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { atomicWrite } from './state-dir.js';

const WATERMARK = 'pruned-through';

export class NonceStore {
  private readonly seen = new Map<string, number>();
  /** File writes run one at a time: an append racing a rewrite would be lost with the old file. */
  private io: Promise<unknown> = Promise.resolve();
  private pending: string[] = [];
  private appended = 0;
  private watermark = 0;
  /**
   * The log, open for appending between flushes: an open and a close per step cost more CPU
   * than the write. Closed before a compaction replaces the file (the next flush opens the new one).
   */
  private appendHandle: FileHandle | undefined;

  constructor(private readonly file: string) {}

  /** Requests that expire at or before this time may have had their nonce forgotten. */
  get prunedThroughMs(): number {
    return this.watermark;
  }

  async load(now: number): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const [head, value] = line.split(' ');
      const t = Number(value);
      if (!head || !Number.isFinite(t)) continue;
      if (head === WATERMARK) this.watermark = Math.max(this.watermark, t);
      else if (/^[0-9a-f]{32,128}$/.test(head)) this.seen.set(head, t);
    }
    this.prune(now);
    await this.compact();
  }

  has(nonce: Uint8Array): boolean {
    return this.seen.has(Buffer.from(nonce).toString('hex'));
  }

  /** Records a nonce; resolves once it is durable (the step it guards may start then). */
  async add(nonce: Uint8Array, notAfterMs: number): Promise<void> {
    const hex = Buffer.from(nonce).toString('hex');
    this.seen.set(hex, notAfterMs);
    this.appended++;
    this.pending.push(`${hex} ${notAfterMs}\n`);
    await this.serial(() => this.flush());
  }

  /** Writes every pending line and syncs once: adds that queue up meanwhile share the sync. */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    this.appendHandle ??= await open(this.file, 'a', 0o600);
    const fh = this.appendHandle;
    try {
      await fh.write(lines);
      await fh.datasync();
    } catch (e) {
      // A failed write or sync (disk full): start over with a fresh handle next time.
      this.appendHandle = undefined;
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Closes the log file (pending adds are flushed first). The store may still be used: it reopens. */
  close(): Promise<void> {
    return this.serial(async () => {
      await this.flush();
      await this.closeAppendHandle();
    });
  }

  private async closeAppendHandle(): Promise<void> {
    const fh = this.appendHandle;
    this.appendHandle = undefined;
    await fh?.close();
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.io.then(op);
    this.io = next.catch(() => undefined);
    return next;
  }

  prune(now: number): void {
    for (const [k, t] of this.seen) {
      if (t > now) continue;
      this.seen.delete(k);
      if (t > this.watermark) this.watermark = t;
    }
  }

  /** Rewrites the log once it holds far more lines than live nonces (it only grows otherwise). */
  async compactIfLarge(): Promise<void> {
    if (this.appended > 1000 && this.appended > 2 * this.seen.size) {
      this.appended = 0;
      await this.compact();
    }
  }

  /**
   * Rewrites the log from memory (which holds every nonce appended so far), via a temp file and
   * rename; the watermark goes with it, since the forgotten nonces leave the disk here.
   */
  private compact(): Promise<void> {
    return this.serial(async () => {
      await this.flush();
      await this.closeAppendHandle();
      const lines = `${WATERMARK} ${this.watermark}\n` + [...this.seen].map(([k, t]) => `${k} ${t}\n`).join('');
      await atomicWrite(this.file, lines, 0o600);
    });
  }
}
