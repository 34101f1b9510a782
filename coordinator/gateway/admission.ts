/**
 * Admission of new connections: at most `maxActive` are being served at once (TLS handshake
 * and certificate check); the others wait. The newest waiting connection
 * is served first: under overload the oldest have the least patience left (a client that gave
 * up has dialed again and is waiting as a new entry), so serving them first would spend the
 * coordinator's work on connections nobody waits for any more. Entries that waited past
 * `maxWaitMs`, or whose peer went away, are dropped unserved. Beyond `maxQueued` waiting, a
 * new connection is refused at once. No I/O here: the front door supplies the clock, the
 * liveness test and what "serve" and "drop" mean.
 */

export interface AdmissionOptions<T> {
  readonly maxActive: number;
  readonly maxQueued: number;
  readonly maxWaitMs: number;
  readonly now: () => number;
  /** Whether a waiting entry is still worth serving. */
  readonly alive: (item: T) => boolean;
  /** Called for an entry dropped unserved (the caller closes it). */
  readonly drop: (item: T, why: 'waited_too_long' | 'gone') => void;
}

export type Serve<T> = (item: T, release: () => void) => void;

interface Waiting<T> {
  readonly item: T;
  readonly since: number;
  readonly serve: Serve<T>;
}

export class AdmissionQueue<T> {
  private running = 0;
  /** Oldest first; served from the end. */
  private readonly waiting: Array<Waiting<T>> = [];
  /** Entries dropped unserved because they waited too long or their peer left. */
  dropped = 0;

  constructor(private readonly o: AdmissionOptions<T>) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Serves `item` now or queues it; 'refused' when the queue is full (the caller closes it). */
  offer(item: T, serve: Serve<T>): 'served' | 'queued' | 'refused' {
    this.expire();
    if (this.running < this.o.maxActive && this.waiting.length === 0) {
      this.run(item, serve);
      return 'served';
    }
    if (this.waiting.length >= this.o.maxQueued) return 'refused';
    this.waiting.push({ item, since: this.o.now(), serve });
    this.pump();
    return 'queued';
  }

  /** Empties the queue (shutdown); returns what was waiting. */
  drain(): T[] {
    return this.waiting.splice(0).map((w) => w.item);
  }

  private run(item: T, serve: Serve<T>): void {
    this.running++;
    let done = false;
    serve(item, () => {
      if (done) return;
      done = true;
      this.running--;
      this.pump();
    });
  }

  /** Drops the entries that waited too long (they are the oldest, at the front). */
  private expire(): void {
    const limit = this.o.now() - this.o.maxWaitMs;
    let n = 0;
    while (n < this.waiting.length && (this.waiting[n] as Waiting<T>).since < limit) n++;
    for (const w of this.waiting.splice(0, n)) {
      this.dropped++;
      this.o.drop(w.item, 'waited_too_long');
    }
  }

  private pump(): void {
    this.expire();
    while (this.running < this.o.maxActive && this.waiting.length > 0) {
      const w = this.waiting.pop() as Waiting<T>;
      if (!this.o.alive(w.item)) {
        this.dropped++;
        this.o.drop(w.item, 'gone');
        continue;
      }
      this.run(w.item, w.serve);
    }
  }
}
