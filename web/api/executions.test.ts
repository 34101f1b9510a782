/**
 * The execution API reads committed data only: through a read-only connection, an execution
 * written by a transaction still in progress does not exist yet (it may roll back), and a
 * long-poll answers with the finish once it has committed.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono } from 'hono';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';
import { Database } from '../../coordinator/store/database.js';
import { executionAccess } from '../../coordinator/engine/execution-access.js';
import { finishRunningAdhoc, insertAdhocExecution } from '../../coordinator/store/execution-store.js';
import type { User } from '../../coordinator/auth/user-store.js';
import type { ExecutionOwner } from '../../coordinator/store/execution-queries.js';
import { workspace } from '../../test/helpers/processes.js';
import { openTransaction } from '../../test/helpers/open-transaction.js';
import { errorResponse } from '../errors.js';
import type { FeedSource } from './execution-events.js';
import { executionRoutes, type ExecutionControl } from './executions.js';
import type { ApiEnv } from './router.js';

const SUE: User = { name: 'sue', groups: [], createdAt: 0, disabled: false, hasPassword: false };
const NO_FEED: FeedSource = { follow: () => ({ [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true as const, value: undefined }) }) }) };

/** A promise and the function that settles it: an observable point in a test's sequence. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire = (): void => undefined;
  const promise = new Promise<void>((r) => (fire = r));
  return { promise, fire };
}

describe('execution API reads', () => {
  let dir: string;
  let data: DataDir;
  let reader: Database;
  /** What the next long-poll waits for (the finish, or its timeout); resolved by the test. */
  let watch: { promise: Promise<void>; fire: () => void };
  /** What the next watch says of an execution started in this process (FinishWatch.running). */
  let running: ExecutionOwner | undefined;
  let watched: { promise: Promise<void>; fire: () => void };
  let app: Hono<ApiEnv>;
  /** Transactions a test holds open, let go after it (also when it fails). */
  let held: Array<() => Promise<void>>;

  beforeEach(async () => {
    held = [];
    dir = await workspace('hr-api-reads-');
    data = await openDataDir(join(dir, 'data'));
    reader = await Database.open(data.db.path, { readonly: true });
    watch = signal();
    watched = signal();
    running = undefined;
    const control = {
      watchFinished: () => {
        watched.fire();
        return { finished: watch.promise, cancel: () => undefined, ...(running ? { running } : {}) };
      },
    } as unknown as ExecutionControl;
    const access = executionAccess(reader, () => [], { get: () => undefined, list: () => [] });
    app = new Hono<ApiEnv>();
    app.use('*', async (c, next) => {
      c.set('user', SUE);
      await next();
    });
    app.route('/api/v1/executions', executionRoutes(reader, control, NO_FEED, access, pino({ level: 'silent' })));
    app.onError((e, c) => errorResponse(c, e));
  });

  afterEach(async () => {
    for (const f of held) await f();
    await reader.close();
    await data.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string): Promise<{ status: number; state?: string }> => {
    const res = await app.request(path);
    const body = (await res.json()) as { state?: string };
    return { status: res.status, ...(body.state !== undefined ? { state: body.state } : {}) };
  };

  it('does not show an execution whose transaction has not committed, nor one that rolled back', async () => {
    const open = await openTransaction(data.db, (tx) => insertAdhocExecution(tx, { id: 'exe-uncommitted', requestedBy: 'sue', targets: 'agt-1', createdAt: 1 }));
    held.push(() => open.end('rollback'));
    // The row is written, in a transaction that is still open: it does not exist for a reader.
    expect(await get('/api/v1/executions/exe-uncommitted')).toEqual({ status: 404 });
    await open.end('rollback');
    expect(await get('/api/v1/executions/exe-uncommitted')).toEqual({ status: 404 });

    await data.db.write((tx) => insertAdhocExecution(tx, { id: 'exe-committed', requestedBy: 'sue', targets: 'agt-1', createdAt: 1 }));
    expect(await get('/api/v1/executions/exe-committed')).toEqual({ status: 200, state: 'running' });
  });

  it('answers a long-poll with the state that has committed, and with the finish once it has', async () => {
    await data.db.write((tx) => insertAdhocExecution(tx, { id: 'exe-1', requestedBy: 'sue', targets: 'agt-1', createdAt: 1 }));
    const finishing = await openTransaction(data.db, (tx) => finishRunningAdhoc(tx, 'exe-1', 'succeeded', 2));
    held.push(() => finishing.end('rollback'));
    // The wait ends (its timeout) while the finish is written but not committed: the answer is
    // what has committed, the execution still running.
    const early = get('/api/v1/executions/exe-1?wait=30s');
    await watched.promise;
    watch.fire();
    expect(await early).toEqual({ status: 200, state: 'running' });

    watch = signal();
    watched = signal();
    const waiting = get('/api/v1/executions/exe-1?wait=30s');
    await watched.promise;
    await finishing.end('commit');
    // As ExecutionEvents announces an execution's end: after its commit.
    watch.fire();
    expect(await waiting).toEqual({ status: 200, state: 'succeeded' });
  });

  it('waits on an execution started here without reading it first, and hides one the user may not see', async () => {
    await data.db.write((tx) => insertAdhocExecution(tx, { id: 'exe-bob', requestedBy: 'bob', targets: 'agt-1', createdAt: 1 }));
    running = { kind: 'adhoc', runbookId: null, requestedBy: 'bob' };
    // Not sue's, and she is no admin: not found, as for any execution she may not see, without waiting.
    expect(await get('/api/v1/executions/exe-bob?wait=30s')).toEqual({ status: 404 });

    running = { kind: 'adhoc', runbookId: null, requestedBy: 'sue' };
    await data.db.write((tx) => insertAdhocExecution(tx, { id: 'exe-sue', requestedBy: 'sue', targets: 'agt-1', createdAt: 1 }));
    const waiting = get('/api/v1/executions/exe-sue?wait=30s');
    await watched.promise;
    await data.db.write((tx) => finishRunningAdhoc(tx, 'exe-sue', 'failed', 2));
    watch.fire();
    expect(await waiting).toEqual({ status: 200, state: 'failed' });
  });
});
