import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { ExecutionFeed, type FeedEvent, type FeedOptions, type LiveOutput } from '../../coordinator/engine/execution-feed.js';
import { insertExecution, insertNode, insertStepRun, migratedStore } from '../helpers/store-fixture.js';
import { openTransaction } from '../helpers/open-transaction.js';

const EXE = 'exe-feed';

/** The dispatcher's way: a number, the row queued for the store, the live event — all in one tick. */
class Outputs {
  readonly events = new EventEmitter<{ output: [LiveOutput]; changed: [string, boolean] }>();
  private seq = 0;
  private offset = new Map<string, number>();
  constructor(private readonly db: Database) {}

  /** Stores and announces a chunk; resolves when it is committed. */
  /** `slowCommitMs`: the store's transaction takes this long (an fsync on a busy disk). */
  emit(text: string, o: { stepRunId?: string; agentId?: string; live?: boolean; stream?: 'stdout' | 'stderr'; slowCommitMs?: number } = {}): Promise<void> {
    const stepRunId = o.stepRunId ?? 'sr-1';
    const stream = o.stream ?? 'stdout';
    const key = `${stepRunId}:${stream}`;
    const offset = this.offset.get(key) ?? 0;
    const data = Buffer.from(text);
    this.offset.set(key, offset + data.length);
    const seq = ++this.seq;
    const stored = this.db.batch(async (tx) => {
      if (o.slowCommitMs) await new Promise((r) => setTimeout(r, o.slowCommitMs));
      tx.queueInsert('step_output', ['step_run_id', 'stream', 'offset', 'data', 'received_at', 'seq'], [stepRunId, stream === 'stdout' ? 1 : 2, offset, data, 1, seq]);
    });
    if (o.live !== false) this.events.emit('output', { seq, executionId: EXE, stepRunId, agentId: o.agentId ?? 'agt-1', stream, offset, data });
    return stored;
  }

  changed(ended = false): void {
    this.events.emit('changed', EXE, ended);
  }

  sources(): ConstructorParameters<typeof ExecutionFeed>[1] {
    return {
      onOutput: (fn) => {
        this.events.on('output', fn);
        return () => this.events.off('output', fn);
      },
      onChanged: (fn) => {
        this.events.on('changed', fn);
        return () => this.events.off('changed', fn);
      },
    };
  }
}

const text = (e: FeedEvent): string => (e.kind === 'output' ? e.data.toString() : `<${e.kind}${e.kind === 'state' ? `:${e.view.state}` : ''}>`);

describe.each([
  ['reading through the writer', false],
  ['reading through a read-only connection', true],
])('the lossless execution feed (%s)', (_how, withReader) => {
  let db: Database;
  let reader: Database;
  let out: Outputs;
  let abort: AbortController;
  const options: FeedOptions = { pageSize: 2, maxQueued: 1000, maxQueuedBytes: 1024 * 1024, stateIntervalMs: 5, idleMs: 60_000 };

  beforeEach(async () => {
    db = await migratedStore();
    await insertExecution(db, { id: EXE, runbookId: 'diag', requestedBy: 'sue', state: 'running', createdAt: 1 });
    await insertNode(db, EXE, 'agt-1', 'web-1', 0);
    await insertNode(db, EXE, 'agt-2', 'web-2', 1);
    await insertStepRun(db, 'sr-1', EXE, 'agt-1');
    await insertStepRun(db, 'sr-2', EXE, 'agt-2');
    reader = withReader ? await Database.open(db.path, { readonly: true }) : db;
    out = new Outputs(db);
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    if (reader !== db) await reader.close();
    await db.close();
  });

  const feed = (o: FeedOptions = options): ExecutionFeed => new ExecutionFeed(db, out.sources(), o, Date.now, reader);
  const follow = (after = 0, o: FeedOptions = options): AsyncIterator<FeedEvent> => feed(o).follow(EXE, after, abort.signal)[Symbol.asyncIterator]();
  /** Events up to and including the first that satisfies `stop`, idle ones left out. */
  const until = async (it: AsyncIterator<FeedEvent>, stop: (e: FeedEvent) => boolean): Promise<FeedEvent[]> => {
    const seen: FeedEvent[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) return seen;
      if (r.value.kind === 'idle') continue;
      seen.push(r.value);
      if (stop(r.value)) return seen;
    }
  };
  const finish = async (): Promise<void> => {
    await db.write((tx) => tx.run("UPDATE executions SET state = 'succeeded' WHERE id = ?", [EXE]));
    out.changed(true);
  };

  it('sends what was stored before it was asked, labelled by host name, then the state, then live output, then the end', async () => {
    await out.emit('one\n');
    await out.emit('two\n', { stepRunId: 'sr-2', agentId: 'agt-2' });
    await out.emit('three\n');
    const it = follow();
    const first = await until(it, (e) => e.kind === 'state');
    expect(first.map(text)).toEqual(['one\n', 'two\n', 'three\n', '<state:running>']);
    expect(first.filter((e) => e.kind === 'output').map((e) => (e.kind === 'output' ? `${e.seq}:${e.agentName}` : ''))).toEqual(['1:web-1', '2:web-2', '3:web-1']);
    await out.emit('four\n');
    await out.emit('five\n');
    await finish();
    const rest = await until(it, (e) => e.kind === 'end');
    expect(rest.map(text)).toEqual(['four\n', 'five\n', '<state:succeeded>', '<end>']);
    expect((await it.next()).done).toBe(true);
  });

  it('has no gap and no duplicate at the seam: output queued in the tick the follower starts comes once', async () => {
    await out.emit('before\n');
    const pending = out.emit('uncommitted, announced before subscribing\n', { slowCommitMs: 200 });
    const it = follow();
    const firstNext = it.next(); // subscribes now, synchronously
    const racing = out.emit('announced after subscribing, committed later\n');
    const seen = [(await firstNext).value as FeedEvent, ...(await until(it, (e) => e.kind === 'state'))];
    await Promise.all([pending, racing]);
    await out.emit('live\n');
    await finish();
    seen.push(...(await until(it, (e) => e.kind === 'end')));
    const outputs = seen.filter((e) => e.kind === 'output');
    expect(outputs.map(text)).toEqual(['before\n', 'uncommitted, announced before subscribing\n', 'announced after subscribing, committed later\n', 'live\n']);
    expect(outputs.map((e) => (e.kind === 'output' ? e.seq : 0))).toEqual([1, 2, 3, 4]);
  });

  it('resumes after a position: the first output after it, nothing before', async () => {
    for (const t of ['a', 'b', 'c', 'd', 'e']) await out.emit(t);
    const it = follow(3);
    expect((await until(it, (e) => e.kind === 'state')).map(text)).toEqual(['d', 'e', '<state:running>']);
  });

  it.each<[string, Partial<FeedOptions>]>([
    ['more items than it holds', { maxQueued: 3 }],
    ['more bytes than it holds', { maxQueuedBytes: 20 }],
  ])('sends a slow follower back to the store instead of holding what it has not read (%s)', async (_what, limits) => {
    const it = follow(0, { ...options, ...limits });
    await until(it, (e) => e.kind === 'state');
    const all = Array.from({ length: 20 }, (_, i) => `line ${i}\n`);
    for (const t of all) await out.emit(t);
    await finish();
    const rest = await until(it, (e) => e.kind === 'end');
    expect(rest.filter((e) => e.kind === 'output').map(text)).toEqual(all);
    expect(rest.at(-1)?.kind).toBe('end');
  });

  it('picks up output stored without a live event (a coordinator step\'s body) before the next state', async () => {
    const it = follow();
    await until(it, (e) => e.kind === 'state');
    await out.emit('http body\n', { live: false });
    out.changed();
    expect((await until(it, (e) => e.kind === 'state')).map(text)).toEqual(['http body\n', '<state:running>']);
  });

  it('says when it is idle, and stops when asked', async () => {
    const it = follow(0, { ...options, idleMs: 5 });
    await until(it, (e) => e.kind === 'state');
    expect((await it.next()).value).toEqual({ kind: 'idle' });
    abort.abort();
    expect((await it.next()).done).toBe(true);
    // it unsubscribed
    expect(out.events.listenerCount('output') + out.events.listenerCount('changed')).toBe(0);
  });

  it('replays a finished execution whole and ends', async () => {
    await out.emit('x\n');
    await db.write((tx) => tx.run("UPDATE executions SET state = 'failed' WHERE id = ?", [EXE]));
    const all: FeedEvent[] = [];
    for await (const e of feed().follow(EXE, 0, abort.signal)) all.push(e);
    expect(all.map(text)).toEqual(['x\n', '<state:failed>', '<end>']);
  });

  it('sends nothing for an execution that does not exist', async () => {
    const all: FeedEvent[] = [];
    for await (const e of feed().follow('exe-nope', 0, abort.signal)) all.push(e);
    expect(all).toEqual([]);
  });
  it('sends the end at once, not held back by the interval between states', async () => {
    const it = follow(0, { ...options, stateIntervalMs: 3_600_000 });
    await until(it, (e) => e.kind === 'state');
    out.changed(); // folded into the next state, an hour away
    await finish();
    expect((await until(it, (e) => e.kind === 'end')).map(text)).toEqual(['<state:succeeded>', '<end>']);
  });

  if (withReader) {
    it('shows what has committed while a write is still in flight, and nothing it has not committed', async () => {
      const it = follow();
      await until(it, (e) => e.kind === 'state');
      await db.write((tx) => tx.run("UPDATE execution_nodes SET state = 'succeeded' WHERE execution_id = ? AND agent_id = 'agt-1'", [EXE]));
      // A transaction in progress (a fan-out's next group of results, a slow fsync): it has
      // written agt-2's row but not committed, and every write queued after it waits.
      const inFlight = await openTransaction(db, (tx) => tx.run("UPDATE execution_nodes SET state = 'failed' WHERE execution_id = ? AND agent_id = 'agt-2'", [EXE]));
      const queuedBehind = out.emit('queued behind the open transaction\n');
      try {
        out.changed();
        const seen = await until(it, (e) => e.kind === 'state');
        expect(seen.map(text)).toEqual(['queued behind the open transaction\n', '<state:running>']);
        const state = seen.at(-1);
        expect(state?.kind === 'state' ? state.view.nodes.map((n) => `${n.agentName}:${n.state}`) : []).toEqual(['web-1:succeeded', 'web-2:running']);
      } finally {
        await inFlight.end('commit');
      }
      await queuedBehind;
      await finish();
      const rest = await until(it, (e) => e.kind === 'end');
      expect(rest.map(text)).toEqual(['<state:succeeded>', '<end>']);
      expect(rest.flatMap((e) => (e.kind === 'state' ? e.view.nodes.map((n) => n.state) : []))).toEqual(['succeeded', 'failed']);
    });
  }
});
