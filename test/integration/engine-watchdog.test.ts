import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';
import { TestClock } from '../helpers/test-clock.js';

/**
 * Steps whose agent goes silent are given up as lost, on two clocks: once taken, after the
 * step's timeout plus --lost-after; untaken, only after the request's not-after time (an
 * offline or busy agent may still take it until then) plus timeout plus --lost-after.
 *
 * When each step was given up is read from the store and compared with the times the store
 * recorded for it (taken, not-after), not with how long the test happened to wait.
 */
describe('steps nobody answers', () => {
  let fleet: Fleet;
  let agentId: string;
  const LOST_AFTER_MS = 1_000;

  const startCoordinator = (requestTtl: string, env: Record<string, string> = {}): ReturnType<Fleet['startCoordinator']> =>
    fleet.startCoordinator(['--lost-after', '1s', '--request-ttl', requestTtl], env);

  beforeAll(async () => {
    fleet = await Fleet.create();
    await startCoordinator('4s');
    await fleet.startAgent('silent');
    agentId = await fleet.waitOnline('silent');
  });
  afterAll(async () => {
    fleet.agents.get('silent')?.proc.child.kill('SIGCONT');
    await fleet?.close();
  });

  const stepOf = async (executionId: string): Promise<ExecutionResult['steps'][number]> =>
    (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${executionId}`)).body.steps[0]!;
  /** The store's times for an execution's (only) step run. */
  const timesOf = async (executionId: string): Promise<{ accepted_at: number | null; not_after: number; finished_at: number | null }> => {
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      return (await db.get<{ accepted_at: number | null; not_after: number; finished_at: number | null }>('SELECT accepted_at, not_after, finished_at FROM step_runs WHERE execution_id = ?', [executionId]))!;
    } finally {
      await db.close();
    }
  };
  const settledStep = (executionId: string, what: string): Promise<ExecutionResult['steps'][number]> =>
    waitFor(async () => {
      const s = await stepOf(executionId);
      return s.state === 'dispatched' || s.state === 'running' ? undefined : s;
    }, undefined, what);

  it('gives up a taken step after its timeout plus the grace, and an untaken one only after its request expired', async () => {
    const agent = fleet.agents.get('silent')!.proc;
    // The agent must fall silent after the coordinator saw the step taken and before the agent's
    // own timeout stops it (it would answer then): the step's timeout is that window.
    const TIMEOUT_MS = 5_000;
    const taken = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['sleep', '30'], timeout: '5s' });
    await waitFor(async () => (await stepOf(taken.body.executionId)).state === 'running', undefined, 'the coordinator to see the step taken');
    agent.child.kill('SIGSTOP'); // the agent can neither kill the step nor answer

    // Its own timeout is shorter (nothing races it: the agent is stopped), and it is still given
    // up later than the taken one, at its not-after time (4 s on) plus 2 s plus the grace.
    const UNTAKEN_TIMEOUT_MS = 2_000;
    const untaken = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '2s' });

    const lostTaken = await settledStep(taken.body.executionId, 'the taken step to be given up');
    expect(lostTaken.state).toBe('lost');
    expect(lostTaken.error).toBe('no result within the step timeout plus 1 s');
    const t = await timesOf(taken.body.executionId);
    expect(t.finished_at! - t.accepted_at!).toBeGreaterThanOrEqual(TIMEOUT_MS + LOST_AFTER_MS); // counted from acceptance
    expect((await fleet.waitExecution(taken.body.executionId)).state).toBe('failed');

    // Not given up at the same point: it could still have been taken until its not-after time.
    const lostUntaken = await settledStep(untaken.body.executionId, 'the untaken step to be given up');
    expect(lostUntaken.state).toBe('lost');
    expect(lostUntaken.error).toBe('no agent took the step before it expired plus 1 s');
    const u = await timesOf(untaken.body.executionId);
    expect(u.accepted_at).toBeNull();
    expect(u.finished_at! - u.not_after).toBeGreaterThanOrEqual(UNTAKEN_TIMEOUT_MS + LOST_AFTER_MS); // counted from its not-after time
    expect(u.finished_at!).toBeGreaterThan(t.finished_at!);

    // The agent wakes up: it refuses the expired request, and the lost step stays lost.
    agent.child.kill('SIGCONT');
    const refusal = await agent.waitForLog((l) => l.event === 'step.rejected' && l['reason'] === 'expired' && l['executionId'] === untaken.body.executionId);
    // Wait until that refusal has had its effect, whichever way it went: the coordinator handled
    // it (it logs it before it would touch the step), or the stream it was sent on was already
    // closed (silent for three heartbeats) and the agent is on a new one, where it is not resent.
    await waitFor(
      () =>
        fleet.coordinator!.proc.events('step.rejected').some((l) => l['executionId'] === untaken.body.executionId) ||
        agent.logs.slice(agent.logs.indexOf(refusal)).some((l) => l.event === 'agent.connected'),
      undefined,
      'the refusal to be handled or its stream replaced',
    );
    expect((await stepOf(untaken.body.executionId)).state).toBe('lost');
  });

  it('closes a canceled step its agent never confirms, and keeps watching open steps across a coordinator restart', async () => {
    // A longer request TTL here: the coordinator must be killed before its own watchdogs (at
    // not-after + timeout + grace) fire, so that the restarted one is what closes the steps.
    fleet.coordinator!.proc.kill('SIGKILL');
    await fleet.coordinator!.proc.wait();
    const agent = fleet.agents.get('silent')!.proc;
    const connections = agent.events('agent.connected').length;
    await startCoordinator('15s');
    await waitFor(() => agent.events('agent.connected').length > connections, undefined, 'the agent to reconnect');
    agent.child.kill('SIGSTOP');
    try {
      const canceled = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '1s' });
      const orphan = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'], timeout: '1s' });
      expect((await fleet.api('POST', `/api/v1/executions/${canceled.body.executionId}/cancel`)).status).toBe(202);
      expect((await fleet.waitExecution(canceled.body.executionId)).state).toBe('canceled');
      expect((await stepOf(canceled.body.executionId)).state).toBe('dispatched'); // the agent may still have it (the watchdog is 17 s off)

      // A restart loses the in-memory watchdogs; the new process re-arms them from the store.
      // It starts with its clock 3 s short of the requests' not-after time (an injected clock,
      // the real one for timers): the watchdogs are then due 3 s + 1 s + 1 s later, counted
      // from not-after, instead of some 15 s of real time later. (A watchdog re-armed without
      // the wait until not-after would close them before not-after + 2 s unless the restart
      // itself took over 3 s: the check below catches it.)
      const notAfter = Math.max(...(await Promise.all([canceled, orphan].map(async (x) => (await timesOf(x.body.executionId)).not_after))));
      fleet.coordinator!.proc.kill('SIGKILL');
      await fleet.coordinator!.proc.wait();
      const killedAt = Date.now();
      const clock = await TestClock.create(fleet.dir, 'coordinator', Math.max(0, notAfter - 3_000 - Date.now()));
      await startCoordinator('15s', clock.env);

      const step = await settledStep(canceled.body.executionId, 'the canceled step to be closed');
      expect(step.state).toBe('canceled');
      expect(step.error).toBe('canceled; the agent never confirmed');
      const lost = await settledStep(orphan.body.executionId, 'the orphaned step to be given up');
      expect(lost.state).toBe('lost');
      expect((await fleet.waitExecution(orphan.body.executionId)).state).toBe('failed');
      // Closed by the restarted coordinator, at the time its re-armed watchdogs were due.
      for (const id of [canceled.body.executionId, orphan.body.executionId]) {
        const times = await timesOf(id);
        expect(times.finished_at!).toBeGreaterThan(killedAt);
        expect(times.finished_at! - times.not_after).toBeGreaterThanOrEqual(1_000 + LOST_AFTER_MS);
      }
    } finally {
      agent.child.kill('SIGCONT');
    }
  });
});
