import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

/**
 * A runbook execution ends in the transaction that stores its last result (one commit, not
 * two): the result and the execution's end are stored together or not at all. A failure is
 * injected where the end is written, or where the nodes' final states are (a trigger in the
 * store, switched on by the test): the last result must not be stored either, the engine must
 * not believe the execution ended nor its nodes' states written, and once the agent delivers the
 * result again the execution ends normally, with its nodes.
 */
describe('the end of a runbook execution commits with its last result', () => {
  let fleet: Fleet;
  let dbPath: string;

  const rolledBack = async (): Promise<number> => {
    const text = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
    const m = /^handrail_store_commits_total\{outcome="rolled_back"\} (\d+)/m.exec(text);
    return m ? Number(m[1]) : 0;
  };
  const withStore = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
    const db = await Database.open(dbPath);
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const view = async (executionId: string): Promise<ExecutionResult> => (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${executionId}`)).body;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.ensureAdmin();
    await fleet.startAgent('web-1', { labels: 'role=web,env=test' });
    await fleet.startAgent('db-1', { labels: 'role=db,env=test' });
    await fleet.waitOnline('web-1');
    await fleet.waitOnline('db-1');
    dbPath = join(fleet.dataDir, 'handrail.db');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  /** Where the injected failure is: the execution's end, or a node's final state (written after the end in the same transaction). */
  const failing = {
    executions: "NEW.state NOT IN ('queued', 'awaiting_approval', 'running')",
    execution_nodes: "NEW.state NOT IN ('pending', 'running')",
  } as const;

  /**
   * Runs `runbook` with ending switched off, checks that the transaction holding its last
   * result rolled back whole, then switches ending on, restarts `agentName` (it delivers the
   * unacknowledged result from its journal) and returns the ended execution.
   */
  const endFailsThenRecovers = async (runbook: string, targets: string, agentName: string, lastStep: string, settledSteps: readonly string[], on: keyof typeof failing = 'executions'): Promise<{ id: string; ended: ExecutionResult; types: string[] }> => {
    // Ending an execution (or a node) fails while the switch table holds a row.
    await withStore((db) =>
      db.exec(`CREATE TABLE test_fail_end (x);
        CREATE TRIGGER test_fail_end BEFORE UPDATE OF state ON ${on}
        WHEN ${failing[on]} AND EXISTS (SELECT 1 FROM test_fail_end)
        BEGIN SELECT RAISE(ABORT, 'injected: ending the execution fails'); END;
        INSERT INTO test_fail_end VALUES (1);`),
    );
    try {
      const before = await rolledBack();
      const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook, targets });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const id = started.body.executionId;

      // The transaction holding the end rolls back: as a group, then alone.
      await waitFor(async () => (await rolledBack()) >= before + 2, undefined, 'the injected failure to roll a transaction back twice');
      const failed = await view(id);
      expect(failed.state).toBe('running');
      for (const name of settledSteps) expect(failed.steps.find((s) => s.name === name)?.state).toMatch(/^(succeeded|failed)$/);
      // The last result was in the transaction that failed: it is not stored (nor audited), and the agent is not told it was.
      const last = failed.steps.find((s) => s.name === lastStep);
      expect(last?.state).toMatch(/^(dispatched|running)$/);
      const audited = await withStore((db) => db.all<{ payload: Buffer }>('SELECT payload FROM audit_records'));
      const records = audited.map((r) => JSON.parse(r.payload.toString('utf8')) as { type: string; data: { executionId?: string; stepRunId?: string } }).filter((r) => r.data.executionId === id);
      expect(records.filter((r) => r.type === 'step.result' && r.data.stepRunId === last?.id)).toEqual([]);
      expect(records.filter((r) => r.type === 'execution.completed')).toEqual([]);

      // Switched off, the agent's next delivery of the result (from its journal, after a restart) ends the execution.
      await withStore((db) => db.exec('DELETE FROM test_fail_end'));
      const agent = fleet.agents.get(agentName)!;
      await agent.proc.stop();
      await fleet.startAgent(agentName, { token: null, stateDir: agent.stateDir });
      const ended = await fleet.waitExecution(id);
      const after = await withStore((db) => db.all<{ payload: Buffer }>('SELECT payload FROM audit_records'));
      const types = after.map((r) => JSON.parse(r.payload.toString('utf8')) as { type: string; data: { executionId?: string } }).filter((r) => r.data.executionId === id).map((r) => r.type);
      return { id, ended, types };
    } finally {
      await withStore((db) => db.exec('DROP TRIGGER test_fail_end; DROP TABLE test_fail_end'));
    }
  };

  it.each(['executions', 'execution_nodes'] as const)('stores the last result and the end together or neither; a failed commit (in %s) leaves the execution running, and the resent result ends it', async (on) => {
    // Two steps on one node: the first result is stored as usual, the second ends the execution.
    const { ended, types } = await endFailsThenRecovers('parallel-two', 'name=web-1', 'web-1', 'second', ['first'], on);
    expect(ended.state).toBe('succeeded');
    expect(ended.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    // Its final state was in the transaction that rolled back too: it is written again with the end that commits.
    expect(ended.nodes.map((n) => [n.agentName, n.state])).toEqual([['web-1', 'succeeded']]);
    expect(types.filter((t) => t === 'step.result')).toHaveLength(2);
    expect(types.filter((t) => t === 'execution.completed')).toHaveLength(1);
    // The end is the last record of the execution, and comes with the last result.
    expect(types.slice(-2)).toEqual(['step.result', 'execution.completed']);
  });

  it.each(['executions', 'execution_nodes'] as const)('also when a failure ends the execution by its strategy (maxErrors 0: the nodes not started are skipped; failing in %s)', async (on) => {
    // Rolling, one node at a time: db-1 fails, its cleanup handler's result fails the node, web-1 is skipped.
    const { ended, types } = await endFailsThenRecovers('fail-on-db', 'env=test', 'db-1', 'cleanup', ['check role'], on);
    expect(ended.state).toBe('failed');
    expect(ended.nodes.map((n) => [n.agentName, n.state])).toEqual([['db-1', 'failed'], ['web-1', 'skipped']]);
    expect(types.filter((t) => t === 'execution.completed')).toHaveLength(1);
    expect(types.slice(-2)).toEqual(['step.result', 'execution.completed']);
  });
});
