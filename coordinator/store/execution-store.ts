/**
 * The executions aggregate's SQL for the engine, the ad-hoc runner and the step dispatcher:
 * executions, their nodes, step runs and stored output. Writes take the caller's transaction
 * (a state change commits with its audit record); hot-path rows are queued (queueInsert /
 * queueUpdate) so that one commit writes a whole group of them in a few statements. The read
 * models for the API and portal are in execution-queries.ts.
 */
import type { Queryable } from './database.js';

// ---- output

/** One stream of one step run's stored output, in order (1 stdout, 2 stderr). */
export async function stepOutputChunks(q: Queryable, stepRunId: string, stream: 1 | 2): Promise<Buffer[]> {
  return (await q.all<{ data: Buffer }>('SELECT data FROM step_output WHERE step_run_id = ? AND stream = ? ORDER BY offset', [stepRunId, stream])).map((r) => r.data);
}

/** The stored output of several step runs (at most a few hundred ids), by run, stream and offset. */
export function stepOutputOfMany(q: Queryable, stepRunIds: readonly string[]): Promise<Array<{ step_run_id: string; stream: number; data: Buffer }>> {
  return q.all(`SELECT step_run_id, stream, data FROM step_output WHERE step_run_id IN (${stepRunIds.map(() => '?').join(',')}) ORDER BY step_run_id, stream, offset`, [...stepRunIds]);
}
