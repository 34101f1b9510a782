/**
 * Stopping an agent for an upgrade pages nobody: on SIGTERM it turns new steps away, lets
 * running ones finish within --stop-grace, and reports what it had to stop as `interrupted`,
 * which the engine runs again when the agent is back — never a step failure, never onFailure.
 * A real coordinator, two real agents, the rolling `until-released` runbook (onFailure pages).
 */
import { access, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

let fleet: Fleet;
let gates: string;
let webA: string;

beforeAll(async () => {
  fleet = await Fleet.create();
  await fleet.startCoordinator();
  await fleet.startAgent('web-a', { labels: 'role=web', extra: ['--stop-grace', '1s'] });
  await fleet.startAgent('web-b', { labels: 'role=web' });
  webA = await fleet.waitOnline('web-a');
  await fleet.waitOnline('web-b');
  gates = await mkdtemp(join(tmpdir(), 'hr-gates-'));
});
afterAll(async () => {
  await fleet?.close();
});

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

async function start(gate: string): Promise<string> {
  const r = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'until-released', options: { gate }, targets: 'role=web' });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.executionId;
}

async function view(id: string): Promise<ExecutionResult> {
  return (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${id}`)).body;
}

/** Waits until the execution's view satisfies `pred`. */
function until(id: string, pred: (v: ExecutionResult) => boolean, what: string): Promise<ExecutionResult> {
  return waitFor(async () => {
    const v = await view(id);
    return pred(v) ? v : undefined;
  }, 30_000, what);
}

const onWebA = (v: ExecutionResult): ExecutionResult['steps'] => v.steps.filter((s) => s.agentId === webA);

describe('an agent asked to stop (SIGTERM)', () => {
  it('reports a step still running after its grace as interrupted: no onFailure, the other node is not skipped, the step runs again when the agent is back', async () => {
    const gate = join(gates, 'interrupted');
    const id = await start(gate);
    await until(id, (v) => onWebA(v).some((s) => s.state === 'running'), 'the step to run on web-a');

    const agent = fleet.agents.get('web-a')!.proc;
    agent.kill('SIGTERM');
    expect(await agent.wait()).toBe(0);
    expect(await agent.waitForLog((l) => l.event === 'agent.stopped')).toMatchObject({ finished: 0, interrupted: 1, spooled: 0 });

    // The result said interrupted; the engine sent the step again for when web-a is back.
    const paused = await until(id, (v) => onWebA(v).length === 2, 'the step to be dispatched again');
    const [first, again] = onWebA(paused);
    expect(first).toMatchObject({ state: 'interrupted', attempt: 1, handler: false });
    expect(first!.error).toMatch(/^interrupted: the agent was stopped/);
    expect(again).toMatchObject({ state: 'dispatched', attempt: 1, handler: false });
    expect(paused.state).toBe('running');
    expect(paused.nodes.map((n) => `${n.agentName}:${n.state}`)).toEqual(['web-a:running', 'web-b:pending']);

    await writeFile(gate, '');
    await fleet.startAgent('web-a', { token: null, labels: 'role=web' });
    const done = await fleet.waitExecution(id, 30_000);
    expect(done.state, JSON.stringify(done)).toBe('succeeded');
    expect(done.nodes.map((n) => `${n.agentName}:${n.state}`)).toEqual(['web-a:succeeded', 'web-b:succeeded']);
    expect(done.steps.filter((s) => s.handler)).toEqual([]);
    expect(onWebA(done).map((s) => s.state)).toEqual(['interrupted', 'succeeded']);
    expect(await exists(`${gate}.paged`)).toBe(false);
    await fleet.waitOnline('web-a');
  });

  it('lets a running step finish within its grace and hands the result over before it exits', async () => {
    // The restarted web-a runs with the default grace (30 s).
    const gate = join(gates, 'graceful');
    const id = await start(gate);
    await until(id, (v) => onWebA(v).some((s) => s.state === 'running'), 'the step to run on web-a');

    const agent = fleet.agents.get('web-a')!.proc;
    agent.kill('SIGTERM');
    await agent.waitForLog((l) => l.event === 'agent.draining', 10_000, 'web-a to wait for its running step');
    await writeFile(gate, '');
    expect(await agent.wait()).toBe(0);
    expect(await agent.waitForLog((l) => l.event === 'agent.stopped')).toMatchObject({ finished: 1, interrupted: 0, spooled: 0 });

    // web-a is gone, yet its node succeeded and the rollout went on to web-b.
    const done = await fleet.waitExecution(id, 30_000);
    expect(done.state, JSON.stringify(done)).toBe('succeeded');
    expect(onWebA(done).map((s) => `${s.state}#${s.attempt}`)).toEqual(['succeeded#1']);
    expect(done.steps.filter((s) => s.handler)).toEqual([]);
    expect(await exists(`${gate}.paged`)).toBe(false);
  });
});
