/**
 * Admission of new connections: at most `maxActive` are being served at once (TLS handshake,
 * peer check, Hello, registry write, Welcome); the others wait in arrival order. An entry that
 * waited past `maxWaitMs`, or whose peer went away, is dropped when its turn comes instead of
 * being served (its client has given up and will dial again). Beyond `maxQueued` waiting, a new
 * connection is refused at once. No I/O here: the front door supplies the clock, the liveness
 * test and what "serve" means.
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
  private readonly waiting: Array<Waiting<T> | undefined> = [];
  private head = 0;
  /** Entries dropped unserved because they waited too long or their peer left. */
  dropped = 0;

  constructor(private readonly o: AdmissionOptions<T>) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Serves `item` now or queues it; 'refused' when the queue is full (the caller closes it). */
  offer(item: T, serve: Serve<T>): 'served' | 'queued' | 'refused' {
    if (this.running < this.o.maxActive && this.queued === 0) {
      this.run(item, serve);
      return 'served';
    }
    if (this.queued >= this.o.maxQueued) return 'refused';
    this.waiting.push({ item, since: this.o.now(), serve });
    this.pump();
    return 'queued';
  }

  /** Empties the queue (shutdown); returns what was waiting. */
  drain(): T[] {
    const left: T[] = [];
    for (let i = this.head; i < this.waiting.length; i++) {
      const w = this.waiting[i];
      if (w) left.push(w.item);
    }
    this.waiting.length = 0;
    this.head = 0;
    return left;
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

  private pump(): void {
    while (this.running < this.o.maxActive && this.head < this.waiting.length) {
      const w = this.waiting[this.head] as Waiting<T>;
      this.waiting[this.head] = undefined;
      this.head++;
      const gone = !this.o.alive(w.item);
      if (gone || this.o.now() - w.since > this.o.maxWaitMs) {
        this.dropped++;
        this.o.drop(w.item, gone ? 'gone' : 'waited_too_long');
        continue;
      }
      this.run(w.item, w.serve);
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }
}
