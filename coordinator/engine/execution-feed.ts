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
 * not hold it in memory: past a bound its live queue is dropped and it goes back to the store.
 * Output a coordinator step stores without a live event (an http step's body) is picked up from
 * the store before every state.
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
  onChanged(fn: (executionId: string) => void): () => void;
}

export interface FeedOptions {
  /** Stored chunks read per query. */
  readonly pageSize: number;
  /** Live items, and bytes of output in them, held for a slow follower before it is sent back to the store. */
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
  /** At most one state per this many milliseconds (changes in between are folded into it). */
  readonly stateIntervalMs: number;
  /** An `idle` event after this long without any. */
  readonly idleMs: number;
}

export const DEFAULT_FEED_OPTIONS: FeedOptions = { pageSize: 64, maxQueued: 2048, maxQueuedBytes: 4 * 1024 * 1024, stateIntervalMs: 100, idleMs: 15_000 };


type Item = { readonly kind: 'output'; readonly e: LiveOutput } | { readonly kind: 'changed' };

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
  constructor(
    private readonly db: Database,
    private readonly sources: FeedSources,
    private readonly options: FeedOptions = DEFAULT_FEED_OPTIONS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Everything after position `afterSeq` (0: from the start), until the execution ends or
   * `signal` aborts. Ends without events if there is no such execution.
   */
  async *follow(executionId: string, afterSeq: number, signal: AbortSignal): AsyncGenerator<FeedEvent> {
    const { db, options } = this;
    const queue = new LiveQueue(options.maxQueued, options.maxQueuedBytes);
    const offOutput = this.sources.onOutput((e) => {
      if (e.executionId === executionId) queue.push({ kind: 'output', e });
    });
    const offChanged = this.sources.onChanged((id) => {
      if (id === executionId) queue.push({ kind: 'changed' });
    });
    let cursor = afterSeq;
    let names = await nodeNames(db, executionId);
    const nameOf = async (agentId: string): Promise<string> => {
      if (!names.has(agentId)) names = await nodeNames(db, executionId);
      return names.get(agentId) ?? agentId;
    };
    const output = async (o: { seq: number; stepRunId: string; agentId: string | null; stream: 'stdout' | 'stderr'; offset: number; data: Buffer }): Promise<FeedEvent> => {
      cursor = o.seq;
      const agentId = o.agentId ?? '';
      return { kind: 'output', seq: o.seq, stepRunId: o.stepRunId, agentId, agentName: agentId ? await nameOf(agentId) : 'coordinator', stream: o.stream, offset: o.offset, data: o.data };
    };
    /** Every write queued before now has committed (or failed) once this resolves. */
    const barrier = (): Promise<void> => db.batch(async () => undefined);
    const stored = async function* (): AsyncGenerator<FeedEvent> {
      await barrier();
      for (;;) {
        const page = await outputAfter(db, executionId, cursor, options.pageSize);
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
    const state = async function* (): AsyncGenerator<FeedEvent, boolean> {
      yield* stored();
      const view = await loadExecution(db, executionId);
      lastStateAt = now();
      if (!view) return true;
      yield { kind: 'state', view };
      if (ACTIVE_EXECUTION_STATES.has(view.state)) return false;
      yield { kind: 'end', state: view.state };
      return true;
    };
    try {
      if (yield* state()) return;
      let stateDue = false;
      for (;;) {
        // Due states go first, so that a flood of output cannot hold them back.
        if (stateDue && now() - lastStateAt >= options.stateIntervalMs) {
          stateDue = false;
          if (yield* state()) return;
        }
        const next = await queue.next(stateDue ? lastStateAt + options.stateIntervalMs - now() : options.idleMs, signal);
        if (next === 'aborted') return;
        if (next === 'timeout') {
          if (!stateDue) yield { kind: 'idle' };
        } else if (next === 'overflow') {
          yield* stored();
          stateDue = true;
        } else if (next.kind === 'changed') {
          stateDue = true;
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
