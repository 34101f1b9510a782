import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { openGate } from '../helpers/gate.js';
import { ROOT, waitFor } from '../helpers/processes.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'engine');

describe('a coordinator restart loses no accepted execution', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator(['--runbooks-dir', FIXTURES]);
    const web = await fleet.token(['--labels', 'role=web,env=test', '--uses', '3']);
    for (const n of ['web-1', 'web-2', 'web-3']) await fleet.startAgent(n, { token: web });
    for (const n of ['web-1', 'web-2', 'web-3']) await fleet.waitOnline(n);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('continues a rolling execution after SIGKILL: in-flight results arrive, undispatched work is dispatched, nothing runs twice', async () => {
    // Each node's step runs until the gate opens, which it does only once the coordinator is dead.
    const gate = join(fleet.dir, 'gate-restart');
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'long-rolling', options: { gate } });
    expect(started.status).toBe(201);
    const id = started.body.executionId;
    let running: ExecutionResult['steps'][number] | undefined;
    try {
      // kill while the first node's step is running on its agent
      running = await waitFor(async () => (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${id}`)).body.steps.find((s) => s.state === 'running'));
      fleet.coordinator!.proc.kill('SIGKILL');
      await fleet.coordinator!.proc.wait();
    } finally {
      await openGate(gate);
    }
    // the step finishes on the agent while no coordinator listens
    const agent = [...fleet.agents.values()].find((a) => a.agentId === running.agentId)!;
    await agent.proc.waitForLog((l) => l.event === 'step.finished' && l['stepRunId'] === running.id);
    await fleet.startCoordinator(['--runbooks-dir', FIXTURES]);
    const r = await fleet.waitExecution(id);
    expect(r.state).toBe('succeeded');
    expect(r.nodes.every((n) => n.state === 'succeeded')).toBe(true);
    // each node ran each step once: no duplicate dispatch of finished work
    const agentSteps = r.steps.filter((s) => s.name === 'wait');
    expect(agentSteps.map((s) => s.agentId).sort()).toEqual(r.nodes.map((n) => n.agentId).sort());
    expect(agentSteps.every((s) => s.state === 'succeeded' && s.attempt === 1)).toBe(true);
    // the first node's result was one the new coordinator received after its restart
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.finished' && l['stepRunId'] === running.id);
  });
});
