/**
 * The event stream of one execution, lossless: a follower gets every output chunk stored so
 * far, then live ones, in store order (OutputSequence), each exactly once, plus the execution's
 * state whenever it changes and a last `end`. Resuming after position N (SSE Last-Event-ID)
 * continues with the first chunk after N.
 *
 * How it holds together: the follower subscribes to live output first, then waits for every
 * write queued before that to commit (a barrier), then pages through the store after its
 * position. Every chunk is numbered in the tick it is queued for the store, so whatever the
 * store did not hold at the barrier arrives live, and what arrives live twice (stored and
 * queued) is skipped by its number. A follower that reads more slowly than output arrives does
 * not hold it in memory: past a bound its live queue is dropped and it goes back to the store
 * (behind a barrier again). Output a coordinator step stores without a live event (an http
 * step's body) is picked up from the store before every state.
 *
 * States are read through a read-only connection when one is given (WAL: it sees only
 * committed transactions and never waits for the writer), with no barrier: a state shows what
 * had committed when it was read, however busy the write queue is. On the writer's connection
 * a read would wait behind every statement of the transaction in progress and could see its
 * uncommitted rows; behind a barrier it would wait for a whole commit per state, and during a
 * fan-out, when every commit is slow, the first state came only after the last result. Changes
 * are folded into at most one state per interval, except the execution's end: that is sent at
 * once.
 */
import type { Database } from '../store/database.js';
import { ACTIVE_EXECUTION_STATES, loadExecution, nodeNames, outputAfter, type ExecutionView } from '../store/execution-queries.js';

export type FeedEvent =
  | {
      readonly kind: 'output';
      readonly seq: number;
      readonly stepRunId: string;
      readonly agentId: string;
      /** The host name, as the execution's nodes show it (the agent id if it has none). */
      readonly agentName: string;
      readonly stream: 'stdout' | 'stderr';
      readonly offset: number;
      readonly data: Buffer;
    }
  | { readonly kind: 'state'; readonly view: ExecutionView }
  | { readonly kind: 'end'; readonly state: string }
  /** Nothing happened for a while (a stream sends a keepalive). */
  | { readonly kind: 'idle' };

/** A live output chunk as the dispatcher announces it. */
export interface LiveOutput {
  readonly seq: number;
  readonly executionId: string;
  readonly stepRunId: string;
  readonly agentId: string;
  readonly stream: 'stdout' | 'stderr';
  readonly offset: number;
  readonly data: Buffer;
}

export interface FeedSources {
  onOutput(fn: (e: LiveOutput) => void): () => void;
  /** `ended`: the change is the execution's end (its state is sent without waiting for the interval). */
  onChanged(fn: (executionId: string, ended: boolean) => void): () => void;
}

export interface FeedOptions {
  /** Stored chunks read per query. */
  readonly pageSize: number;
  /** Live items, and bytes of output in them, held for a slow follower before it is sent back to the store. */
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
  /** At most one state per this many milliseconds (changes in between are folded into it); the end is not held back. */
  readonly stateIntervalMs: number;
  /** An `idle` event after this long without any. */
  readonly idleMs: number;
}

export const DEFAULT_FEED_OPTIONS: FeedOptions = { pageSize: 64, maxQueued: 2048, maxQueuedBytes: 4 * 1024 * 1024, stateIntervalMs: 100, idleMs: 15_000 };


type Item = { readonly kind: 'output'; readonly e: LiveOutput } | { readonly kind: 'changed'; readonly ended: boolean };

const sizeOf = (item: Item): number => (item.kind === 'output' ? item.e.data.length : 0);

/** Live items for one follower, bounded in count and bytes: past either they are dropped and `overflowed` is set. */
class LiveQueue {
  private items: Item[] = [];
  private bytes = 0;
  private wake: (() => void) | undefined;
  overflowed = false;

  constructor(
    private readonly max: number,
    private readonly maxBytes: number,
  ) {}

  push(item: Item): void {
    if (this.items.length >= this.max || this.bytes + sizeOf(item) > this.maxBytes) {
      this.items = [];
      this.bytes = 0;
      this.overflowed = true;
    } else {
      this.items.push(item);
      this.bytes += sizeOf(item);
    }
    this.wake?.();
  }

  /** The next item, or 'overflow' (once per overflow), 'timeout' or 'aborted'. */
  async next(timeoutMs: number, signal: AbortSignal): Promise<Item | 'overflow' | 'timeout' | 'aborted'> {
    for (;;) {
      if (signal.aborted) return 'aborted';
      if (this.overflowed) {
        this.overflowed = false;
        return 'overflow';
      }
      const item = this.items.shift();
      if (item) {
        this.bytes -= sizeOf(item);
        return item;
      }
      if (timeoutMs <= 0) return 'timeout';
      const woke = await new Promise<boolean>((resolve) => {
        const done = (v: boolean): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          this.wake = undefined;
          resolve(v);
        };
        const onAbort = (): void => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        signal.addEventListener('abort', onAbort, { once: true });
        this.wake = () => done(true);
      });
      if (!woke) return 'timeout';
    }
  }
}

export class ExecutionFeed {
  /**
   * `db`: the store's (writer) connection, for the barriers; `reader`: a read-only connection
   * to the same store for everything read (the writer's if none is given).
   */
  constructor(
    private readonly db: Database,
    private readonly sources: FeedSources,
    private readonly options: FeedOptions = DEFAULT_FEED_OPTIONS,
    private readonly now: () => number = Date.now,
    private readonly reader: Database = db,
  ) {}

  /**
   * Everything after position `afterSeq` (0: from the start), until the execution ends or
   * `signal` aborts. Ends without events if there is no such execution.
   */
  async *follow(executionId: string, afterSeq: number, signal: AbortSignal): AsyncGenerator<FeedEvent> {
    const { db, reader, options } = this;
    /** Without a separate reader, reads share the writer's connection: they go behind a barrier as before. */
    const ownReader = reader !== db;
    const queue = new LiveQueue(options.maxQueued, options.maxQueuedBytes);
    const offOutput = this.sources.onOutput((e) => {
      if (e.executionId === executionId) queue.push({ kind: 'output', e });
    });
    const offChanged = this.sources.onChanged((id, ended) => {
      if (id === executionId) queue.push({ kind: 'changed', ended });
    });
    let cursor = afterSeq;
    let names = await nodeNames(reader, executionId);
    const nameOf = async (agentId: string): Promise<string> => {
      if (!names.has(agentId)) names = await nodeNames(reader, executionId);
      return names.get(agentId) ?? agentId;
    };
    const output = async (o: { seq: number; stepRunId: string; agentId: string | null; stream: 'stdout' | 'stderr'; offset: number; data: Buffer }): Promise<FeedEvent> => {
      cursor = o.seq;
      const agentId = o.agentId ?? '';
      return { kind: 'output', seq: o.seq, stepRunId: o.stepRunId, agentId, agentName: agentId ? await nameOf(agentId) : 'coordinator', stream: o.stream, offset: o.offset, data: o.data };
    };
    /** Every write queued before now has committed (or failed) once this resolves. */
    const barrier = (): Promise<void> => db.batch(async () => undefined);
    /**
     * Stored output after the cursor. `seam`: first wait for every write queued before now (on
     * subscribing, and after an overflow: output announced before the live queue took it must
     * be in the store). Before a state, what is committed is enough: what is not yet arrives live.
     */
    const stored = async function* (seam: boolean): AsyncGenerator<FeedEvent> {
      if (seam || !ownReader) await barrier();
      for (;;) {
        const page = await outputAfter(reader, executionId, cursor, options.pageSize);
        for (const o of page) {
          if (signal.aborted) return;
          yield await output(o);
        }
        if (page.length < options.pageSize) return;
      }
    };
    const now = this.now;
    let lastStateAt = 0;
    /** Stored output first, then the state; true when the execution has ended (or does not exist). */
    const state = async function* (seam: boolean): AsyncGenerator<FeedEvent, boolean> {
      yield* stored(seam);
      const view = await loadExecution(reader, executionId);
      lastStateAt = now();
      if (!view) return true;
      yield { kind: 'state', view };
      if (ACTIVE_EXECUTION_STATES.has(view.state)) return false;
      yield { kind: 'end', state: view.state };
      return true;
    };
    try {
      if (yield* state(true)) return;
      let stateDue = false;
      let endDue = false;
      for (;;) {
        // Due states go first, so that a flood of output cannot hold them back.
        if (endDue || (stateDue && now() - lastStateAt >= options.stateIntervalMs)) {
          stateDue = false;
          endDue = false;
          if (yield* state(false)) return;
        }
        const next = await queue.next(stateDue ? lastStateAt + options.stateIntervalMs - now() : options.idleMs, signal);
        if (next === 'aborted') return;
        if (next === 'timeout') {
          if (!stateDue) yield { kind: 'idle' };
        } else if (next === 'overflow') {
          yield* stored(true);
          stateDue = true;
        } else if (next.kind === 'changed') {
          stateDue = true;
          if (next.ended) endDue = true;
        } else if (next.e.seq > cursor) {
          yield await output(next.e);
        }
      }
    } finally {
      offOutput();
      offChanged();
    }
  }
}
