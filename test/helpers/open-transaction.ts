import type { Database, Tx } from '../../coordinator/store/database.js';

/** A write transaction held open by a test: `end` commits it, or rolls it back. */
export interface OpenTransaction {
  end(outcome: 'commit' | 'rollback'): Promise<void>;
}

/**
 * Runs `fn` in a write transaction on `db` (the writer's connection, as the engine's are) and
 * resolves once it has written, with the transaction still open, so that a test can look at
 * what other readers see meanwhile. Every write queued after it waits until `end`.
 */
export async function openTransaction(db: Database, fn: (tx: Tx) => Promise<unknown>): Promise<OpenTransaction> {
  let written = (): void => undefined;
  const ready = new Promise<void>((r) => (written = r));
  let decide: (commit: boolean) => void = () => undefined;
  const decided = new Promise<boolean>((r) => (decide = r));
  const ROLLBACK = new Error('the test rolls this transaction back');
  const done = db
    .write(async (tx) => {
      await fn(tx);
      written();
      if (!(await decided)) throw ROLLBACK;
    })
    .catch((e: unknown) => {
      if (e !== ROLLBACK) throw e;
    });
  // A failure before `fn` has written ends the wait too (and is thrown).
  await Promise.race([ready, done]);
  return {
    async end(outcome) {
      decide(outcome === 'commit');
      await done;
    },
  };
}
