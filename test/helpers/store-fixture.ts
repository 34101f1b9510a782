/** A migrated store in a temp dir, and rows written the way the engine and dispatcher write them. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../../coordinator/store/database.js';
import { migrate } from '../../coordinator/store/migrations.js';

export async function migratedStore(): Promise<Database> {
  const db = await Database.open(join(await mkdtemp(join(tmpdir(), 'hr-store-')), 'handrail.db'));
  await migrate(db);
  return db;
}

export interface ExecutionRow {
  id: string;
  kind?: 'runbook' | 'adhoc';
  runbookId?: string | null;
  requestedBy: string;
  state?: string;
  createdAt: number;
  reason?: string | null;
  /** The runbook's owner team when it was requested (as the engine records it). */
  team?: string;
}

export async function insertExecution(db: Database, e: ExecutionRow): Promise<void> {
  const runbookId = e.kind === 'adhoc' ? null : (e.runbookId ?? null);
  await db.write(async (tx) => {
    await tx.run('INSERT INTO executions (id, kind, runbook_id, requested_by, state, reason, created_at, owner_team) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      e.id,
      e.kind ?? 'runbook',
      runbookId,
      e.requestedBy,
      e.state ?? 'succeeded',
      e.reason ?? null,
      e.createdAt,
      e.team ?? null,
    ]);
    if (e.team !== undefined && runbookId !== null) await tx.run('INSERT OR IGNORE INTO runbook_teams (team, runbook_id) VALUES (?, ?)', [e.team, runbookId]);
  });
}

export async function insertNode(db: Database, executionId: string, agentId: string, agentName: string, index = 0): Promise<void> {
  await db.write((tx) => tx.run("INSERT INTO execution_nodes (execution_id, agent_id, node_index, agent_name, state) VALUES (?, ?, ?, ?, 'running')", [executionId, agentId, index, agentName]));
}

export async function insertStepRun(db: Database, id: string, executionId: string, agentId: string): Promise<void> {
  await db.write((tx) => tx.run("INSERT INTO step_runs (id, execution_id, agent_id, step_index, name, state, dispatched_at) VALUES (?, ?, ?, 0, 'step', 'running', 1)", [id, executionId, agentId]));
}
