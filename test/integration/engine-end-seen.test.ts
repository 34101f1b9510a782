import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { simulatedFleet } from '../../bench/harness.js';
import type { SimAgent } from '../../bench/sim-agents.js';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { cli } from '../helpers/processes.js';

/**
 * What a user reads when an execution on a fleet ends: every node in its final state, and no
 * node's state changed after that. The end is written in the transaction of the last result,
 * while node states of earlier results may still be queued for the store: a reader of the
 * read-only connection (the API's long-poll, the event stream behind `handrail run --follow`)
 * must never see the execution ended with nodes still running, and no node-state write queued
 * before the end may land after it.
 *
 * Many simulated agents (real mTLS streams and signed results, answered at once) make results
 * arrive in many groups, so node states are in flight when the last result is stored. The
 * assertions do not depend on timing: each execution is read when it is seen ended, and the
 * store is read again once the coordinator has stopped (every queued write committed).
 */
describe('a fleet execution seen ended', () => {
  const N = 80;
  const ROUNDS = 8;
  let fleet: Fleet;
  let sims: SimAgent[] = [];
  /** Node states per execution, as seen when it was first seen ended. */
  const seen = new Map<string, Array<[string, string]>>();

  const nodeStates = (v: Pick<ExecutionResult, 'nodes'>): Array<[string, string]> => v.nodes.map((n) => [n.agentName, n.state]);

  beforeAll(async () => {
    fleet = await Fleet.create();
    const runbooks = join(fleet.dir, 'runbooks');
    await mkdir(runbooks, { recursive: true });
    await writeFile(
      join(runbooks, 'fleet.yaml'),
      `apiVersion: handrail/v1
kind: Runbook
metadata: { id: fan-out, title: One step on every host, owner: team-test, tags: [test] }
spec:
  targets: { selector: fleet=sim }
  strategy: parallel
  concurrency: 100%
  steps:
    - { name: only, run: ["true"] }
---
apiVersion: handrail/v1
kind: Policy
metadata: { name: fleet }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
`,
    );
    // Info, not debug: a line per step at debug is noise here. Heartbeats every 10 s, as the
    // benches have them: 80 agents in this one process on a loaded machine miss 1 s ones, and a
    // simulated agent does not reconnect.
    const coordinator = await fleet.startCoordinator(['--runbooks-dir', runbooks, '--enroll-rate-limit', '0', '--log-level', 'info', '--heartbeat-interval', '10s']);
    await fleet.ensureAdmin();
    const bootstrap = await fleet.token(['--labels', 'fleet=sim', '--uses', String(N)]);
    ({ sims } = await simulatedFleet({ certsDir: fleet.certsDir, address: coordinator.address, bootstrap }, N));
  });
  afterAll(async () => {
    for (const s of sims) s.close();
    await fleet?.close();
  });

  it('through the API long-poll: ended means every node final', async () => {
    const notFinal: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'fan-out' });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      const id = started.body.executionId;
      let view: ExecutionResult;
      do view = (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${id}?wait=30s`)).body;
      while (view.state === 'running' || view.state === 'queued');
      seen.set(id, nodeStates(view));
      expect(view.state).toBe('succeeded');
      expect(view.nodes).toHaveLength(N);
      expect(view.steps.filter((s) => s.state !== 'succeeded')).toEqual([]);
      const others = view.nodes.filter((n) => n.state !== 'succeeded');
      if (others.length > 0) notFinal.push(`round ${r}: ${others.length} nodes ${[...new Set(others.map((n) => n.state))].join('/')}, e.g. ${others[0]?.agentName}`);
    }
    expect(notFinal, 'nodes not final when the execution was seen ended').toEqual([]);
  });

  it('through `handrail run --follow`: every host is printed as succeeded before it exits 0', async () => {
    const r = await cli(['run', 'fan-out', '--follow', '--server', fleet.coordinator!.url, '--token', await fleet.ensureAdmin()]);
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const id = /execution (exe-\S+) running/.exec(r.stderr)?.[1];
    expect(id).toBeDefined();
    expect(r.stdout).toMatch(new RegExp(`execution ${id} succeeded`));
    // Each host's last progress line: the printer writes one whenever a node's state changes.
    const last = new Map<string, string>();
    for (const m of r.stderr.matchAll(/^\[(sim-\d+)\] (pending|running|succeeded|failed|skipped|canceled)$/gm)) last.set(m[1] as string, m[2] as string);
    seen.set(id as string, [...last]);
    expect([...last].filter(([, state]) => state !== 'succeeded'), 'hosts last printed other than succeeded').toEqual([]);
    expect(last.size).toBe(N);
  });

  it('no node state changes after its execution was seen ended', async () => {
    expect(seen.size).toBeGreaterThan(0);
    // A graceful stop commits every write still queued.
    for (const s of sims) s.close();
    sims = [];
    expect(await fleet.coordinator!.proc.stop()).toBe(0);
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      for (const [id, nodes] of seen) {
        const rows = await db.all<{ agent_name: string; state: string }>('SELECT agent_name, state FROM execution_nodes WHERE execution_id = ?', [id]);
        const then = new Map(nodes);
        const changed = rows.filter((n) => then.get(n.agent_name) !== n.state).map((n) => `${n.agent_name} ${then.get(n.agent_name) ?? 'unseen'} -> ${n.state}`);
        expect(changed, `execution ${id}: nodes changed after it was seen ended`).toEqual([]);
        expect(rows).toHaveLength(N);
      }
    } finally {
      await db.close();
    }
  });
});
