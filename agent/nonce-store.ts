/**
 * Nonces of accepted steps, kept until their request expires, on disk so that a replay is
 * refused even after the agent restarts. Append-only log, compacted at start.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { atomicWrite } from './state-dir.js';

export class NonceStore {
  private readonly seen = new Map<string, number>();
  /** File writes run one at a time: an append racing a rewrite would be lost with the old file. */
  private io: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string) {}

  async load(now: number): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const [hex, until] = line.split(' ');
      const t = Number(until);
      if (hex && /^[0-9a-f]{32,128}$/.test(hex) && Number.isFinite(t) && t > now) this.seen.set(hex, t);
    }
    await this.compact();
  }

  has(nonce: Uint8Array): boolean {
    return this.seen.has(Buffer.from(nonce).toString('hex'));
  }

  async add(nonce: Uint8Array, notAfterMs: number): Promise<void> {
    const hex = Buffer.from(nonce).toString('hex');
    this.seen.set(hex, notAfterMs);
    this.appended++;
    await this.serial(() => appendFile(this.file, `${hex} ${notAfterMs}\n`, { mode: 0o600 }));
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.io.then(op);
    this.io = next.catch(() => undefined);
    return next;
  }

  private appended = 0;

  prune(now: number): void {
    for (const [k, t] of this.seen) if (t <= now) this.seen.delete(k);
  }

  /** Rewrites the log once it holds far more lines than live nonces (it only grows otherwise). */
  async compactIfLarge(): Promise<void> {
    if (this.appended > 1000 && this.appended > 2 * this.seen.size) {
      this.appended = 0;
      await this.compact();
    }
  }

  /** Rewrites the log from memory (which holds every nonce appended so far), via a temp file and rename. */
  private compact(): Promise<void> {
    return this.serial(async () => {
      const lines = [...this.seen].map(([k, t]) => `${k} ${t}\n`).join('');
      await atomicWrite(this.file, lines, 0o600);
    });
  }
}
