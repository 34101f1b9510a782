import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';
import { Database } from '../../coordinator/store/database.js';

describe('nothing is lost', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('durable');
    agentId = await fleet.waitOnline('durable');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('delivers a result finished while the coordinator was down (killed with SIGKILL), after it restarts', async () => {
    const started = await fleet.api<{ executionId: string; stepRunIds: Record<string, string> }>('POST', '/api/v1/adhoc', {
      agents: [agentId],
      script: 'echo before; sleep 2; echo after',
    });
    expect(started.status).toBe(201);
    const agent = fleet.agents.get('durable')!.proc;
    await agent.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === started.body.executionId);
    fleet.coordinator!.proc.kill('SIGKILL');
    await fleet.coordinator!.proc.wait();
    // the step finishes while nobody listens; the agent spools the signed result
    await agent.waitForLog((l) => l.event === 'step.finished' && l['executionId'] === started.body.executionId, 10_000);
    await agent.waitForLog((l) => l.event === 'agent.disconnected');
    await fleet.startCoordinator();
    const r = await fleet.waitExecution(started.body.executionId, 30_000);
    expect(r.state).toBe('succeeded');
    const s = r.steps[0]!;
    expect(s.state).toBe('succeeded');
    expect(await fleet.output(r.id, s.id)).toBe('before\nafter\n');
    // delivered once: the coordinator acknowledged it and the agent emptied its spool
    await waitFor(() => agent.events('step.finished').some((l) => l['stepRunId'] === s.id));
    await new Promise((r) => setTimeout(r, 500));
    expect(fleet.coordinator!.proc.events('step.finished').filter((l) => l['stepRunId'] === s.id)).toHaveLength(1);
  });

  it('answers a step cut short by an agent restart with a signed error result', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['sleep', '30'] });
    const agent = fleet.agents.get('durable')!;
    await agent.proc.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === started.body.executionId);
    agent.proc.kill('SIGKILL');
    await agent.proc.wait();
    const again = await fleet.startAgent('durable', { token: null, stateDir: agent.stateDir });
    await again.waitForLog((l) => l.event === 'agent.connected');
    const r = await fleet.waitExecution(started.body.executionId, 30_000);
    expect(r.steps[0]!.state).toBe('error');
    expect(r.steps[0]!.error).toMatch(/agent restarted/);
  });

  it('stores results exactly once even when the agent resends them', async () => {
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      const dup = await db.get<{ n: number }>("SELECT count(*) AS n FROM audit_records WHERE json_extract(CAST(payload AS TEXT), '$.type') = 'step.result' GROUP BY json_extract(CAST(payload AS TEXT), '$.data.stepRunId') HAVING count(*) > 1");
      expect(dup).toBeUndefined();
    } finally {
      await db.close();
    }
  });
});
