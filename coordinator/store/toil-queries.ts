/**
 * The toil report's one aggregate query: runbook executions created in a period, grouped by
 * runbook, limited to what the reader may see (the history's ExecutionScope). Bounded by
 * `created_at`, so it reads the executions_created (or, scoped, the per-runbook and
 * per-requester) index range of the period only.
 */
import type { Database, SqlValue } from './database.js';
import type { ExecutionScope } from '../policy/visibility.js';
import type { ToilAggregate } from '../engine/toil-report.js';

export async function toilAggregates(db: Database, period: { fromMs: number; toMs: number }, scope: ExecutionScope): Promise<ToilAggregate[]> {
  const where = ["kind = 'runbook'", 'runbook_id IS NOT NULL', 'created_at >= ?', 'created_at < ?'];
  const params: SqlValue[] = [period.fromMs, period.toMs];
  if (!scope.all) {
    // Their own executions, and those of the runbooks they may see (ad-hoc ones have no runbook).
    const ids = scope.runbookIds;
    where.push(ids.length ? `(requested_by = ? OR runbook_id IN (${ids.map(() => '?').join(', ')}))` : 'requested_by = ?');
    params.push(scope.user, ...ids);
  }
  // Grouped by the owner team recorded at request time too: a runbook handed to another team
  // leaves its past runs with the team that ran them.
  const rows = await db.all<{ runbook_id: string; owner_team: string | null; executions: number; succeeded: number; durations: string | null }>(
    `SELECT runbook_id, owner_team, COUNT(*) AS executions, SUM(state = 'succeeded') AS succeeded,
            group_concat(CASE WHEN state = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL THEN finished_at - started_at END) AS durations
       FROM executions WHERE ${where.join(' AND ')} GROUP BY runbook_id, owner_team ORDER BY runbook_id, owner_team`,
    params,
  );
  return rows.map((r) => ({
    runbookId: r.runbook_id,
    team: r.owner_team,
    executions: r.executions,
    succeeded: r.succeeded,
    successDurationsMs: r.durations ? r.durations.split(',').map(Number) : [],
  }));
}
