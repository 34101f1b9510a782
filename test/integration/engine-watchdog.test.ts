import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

/**
 * Steps whose agent goes silent are given up as lost, on two clocks: once taken, after the
 * step's timeout plus --lost-after; untaken, only after the request's not-after time (an
 * offline or busy agent may still take it until then) plus timeout plus --lost-after.
 */
describe('steps nobody answers', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator(['--lost-after', '1s', '--request-ttl', '4s']);
    await fleet.startAgent('silent');
    agentId = await fleet.waitOnline('silent');
  });
  afterAll(async () => {
    fleet.agents.get('silent')?.proc.child.kill('SIGCONT');
    await fleet?.close();
  });

  const stepOf = async (executionId: string): Promise<ExecutionResult['steps'][number]> =>
    (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${executionId}`)).body.steps[0]!;

  it('gives up a taken step after its timeout plus the grace, and an untaken one only after its request expired', async () => {
    const agent = fleet.agents.get('silent')!.proc;
    const taken = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['sleep', '30'], timeout: '1s' });
    await waitFor(async () => (await stepOf(taken.body.executionId)).state === 'running', 10_000, 'the coordinator to see the step taken');
    const t0 = Date.now();
    agent.child.kill('SIGSTOP'); // the agent can neither kill the step nor answer

    const untaken = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '1s' });
    const t1 = Date.now();

    const lostTaken = await waitFor(async () => ((await stepOf(taken.body.executionId)).state === 'lost' ? Date.now() : undefined), 15_000, 'the taken step to be lost');
    expect((await stepOf(taken.body.executionId)).error).toBe('no result within the step timeout plus 1 s');
    expect(lostTaken - t0).toBeGreaterThanOrEqual(1_500); // timeout 1 s + grace 1 s, from acceptance
    expect((await fleet.waitExecution(taken.body.executionId)).state).toBe('failed');

    // Not given up at the same point: it could still have been taken until its not-after time.
    expect((await stepOf(untaken.body.executionId)).state).toBe('dispatched');
    const lostUntaken = await waitFor(async () => ((await stepOf(untaken.body.executionId)).state === 'lost' ? Date.now() : undefined), 15_000, 'the untaken step to be lost');
    expect((await stepOf(untaken.body.executionId)).error).toBe('no agent took the step before it expired plus 1 s');
    expect(lostUntaken - t1).toBeGreaterThanOrEqual(5_000); // request TTL 4 s + timeout 1 s + grace 1 s

    // The agent wakes up: it refuses the expired request, and the lost step stays lost.
    agent.child.kill('SIGCONT');
    await agent.waitForLog((l) => l.event === 'step.rejected' && l['reason'] === 'expired' && l['executionId'] === untaken.body.executionId, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    expect((await stepOf(untaken.body.executionId)).state).toBe('lost');
  }, 40_000);
  it('closes a canceled step its agent never confirms, and keeps watching open steps across a coordinator restart', async () => {
    const agent = fleet.agents.get('silent')!.proc;
    agent.child.kill('SIGSTOP');
    try {
      const canceled = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '1s' });
      const orphan = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '1s' });
      expect((await fleet.api('POST', `/api/v1/executions/${canceled.body.executionId}/cancel`)).status).toBe(202);
      expect((await fleet.waitExecution(canceled.body.executionId)).state).toBe('canceled');
      expect((await stepOf(canceled.body.executionId)).state).toBe('dispatched'); // the agent may still have it

      // A restart loses the in-memory watchdogs; the new process re-arms them from the store.
      fleet.coordinator!.proc.kill('SIGKILL');
      await fleet.coordinator!.proc.wait();
      await fleet.startCoordinator(['--lost-after', '1s', '--request-ttl', '4s']);

      const step = await waitFor(async () => {
        const s = await stepOf(canceled.body.executionId);
        return s.state === 'dispatched' ? undefined : s;
      }, 15_000, 'the canceled step to be closed');
      expect(step.state).toBe('canceled');
      expect(step.error).toBe('canceled; the agent never confirmed');
      const lost = await waitFor(async () => {
        const s = await stepOf(orphan.body.executionId);
        return s.state === 'dispatched' ? undefined : s;
      }, 15_000, 'the orphaned step to be given up');
      expect(lost.state).toBe('lost');
      expect((await fleet.waitExecution(orphan.body.executionId)).state).toBe('failed');
    } finally {
      agent.child.kill('SIGCONT');
    }
  }, 40_000);
});
