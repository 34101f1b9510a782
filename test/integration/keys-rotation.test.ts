import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { cli, waitFor } from '../helpers/processes.js';
import { Database } from '../../coordinator/store/database.js';

interface KeysStatus {
  keys: Array<{ keyId: string; purpose: string; state: string }>;
  dispatchKeySetVersion: number;
  agentsLacking: Array<{ agentId: string; name: string; online: boolean }>;
}

/**
 * `handrail keys rotate dispatch` against a real coordinator and real agents while steps run:
 * the new key reaches every online agent over its stream, signing switches only after they all
 * acknowledged it, and not one step is refused (as unknown_key or anything else). An agent that
 * was offline takes the new key when it reconnects, before the steps signed with it.
 */
describe('dispatch key rotation with agents online', () => {
  let fleet: Fleet;
  let a: string;
  let b: string;
  let sleeper: string;
  let oldKey: string;
  let newKey: string;

  const status = async (): Promise<KeysStatus> => {
    const r = await fleet.admin(['keys', 'status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as KeysStatus;
  };
  const activeDispatch = (s: KeysStatus): string => s.keys.find((k) => k.purpose === 'dispatch' && k.state === 'active')!.keyId;
  /** step_runs as stored: which key signed each step and how it ended. */
  const stepRuns = async (): Promise<Array<{ id: string; state: string; request_key_id: string | null; error: string | null }>> => {
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      return await db.all('SELECT id, state, request_key_id, error FROM step_runs ORDER BY rowid');
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('rot-a');
    await fleet.startAgent('rot-b');
    await fleet.startAgent('rot-sleeper');
    a = await fleet.waitOnline('rot-a');
    b = await fleet.waitOnline('rot-b');
    sleeper = await fleet.waitOnline('rot-sleeper');
    // Offline during the whole rotation: it must catch up when it comes back.
    await fleet.agents.get('rot-sleeper')!.proc.stop();
    oldKey = activeDispatch(await status());
    await fleet.ensureAdmin();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('switches signing only after the online agents acknowledged the new key, and loses no step while steps run', async () => {
    let stop = false;
    const results: ExecutionResult[] = [];
    const load = async (): Promise<void> => {
      while (!stop) results.push(await fleet.exec([a, b], { argv: ['true'] }));
    };
    const loops = [load(), load()];
    // Steps are running on both agents before the rotation starts.
    await waitFor(() => results.length >= 2, undefined, 'steps before the rotation');

    const r = await fleet.admin(['keys', 'rotate', 'dispatch', '--wait', '40s']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    newKey = /steps are now signed with (dispatch-[0-9a-f]+)/.exec(r.stdout)![1]!;
    expect(newKey).not.toBe(oldKey);
    expect(r.stdout).toContain('1 offline agent(s) take the new key when they reconnect: rot-sleeper');

    // The running coordinator takes the switch up; steps after it are signed with the new key.
    const coordinator = fleet.coordinator!.proc;
    await coordinator.waitForLog((l) => l.event === 'keys.active_changed' && l['keyId'] === newKey);
    const switchedAt = results.length;
    await waitFor(() => results.length >= switchedAt + 4, undefined, 'steps after the switch');
    stop = true;
    await Promise.all(loops);

    // Each online agent acknowledged the new set before signing switched.
    for (const name of ['rot-a', 'rot-b']) {
      const agent = fleet.agents.get(name)!.proc;
      const updated = agent.events('agent.dispatch_keys_updated').find((l) => l['source'] === 'rotation');
      expect(updated?.['keyIds']).toEqual(expect.arrayContaining([oldKey, newKey]));
    }
    expect(results.every((x) => x.state === 'succeeded'), JSON.stringify(results.filter((x) => x.state !== 'succeeded'))).toBe(true);
    const runs = await stepRuns();
    expect(runs.filter((s) => s.state !== 'succeeded')).toEqual([]);
    const signers = new Set(runs.map((s) => s.request_key_id));
    expect(signers).toEqual(new Set([oldKey, newKey]));
    for (const name of ['rot-a', 'rot-b']) {
      expect(fleet.agents.get(name)!.proc.logs.filter((l) => String(l['reason'] ?? '').includes('unknown_key') || l.event === 'step.rejected')).toEqual([]);
    }
    const s = await status();
    expect(activeDispatch(s)).toBe(newKey);
    expect(s.keys.find((k) => k.keyId === oldKey)?.state).toBe('previous');
    expect(s.agentsLacking.map((x) => x.agentId)).toEqual([sleeper]);
  });

  it('refuses to retire the old key while an enrolled agent lacks the new one', async () => {
    const r = await fleet.admin(['keys', 'retire', 'dispatch', '--request-ttl', '0s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1 agent\(s\) do not hold the active key yet .*rot-sleeper/);
    expect(activeDispatch(await status())).toBe(newKey);
  });

  it('gives an agent that was offline the new key when it reconnects, before the steps signed with it', async () => {
    // Queued while the agent is offline, so it goes out the moment the agent is welcomed: right
    // behind the key set that names its key, which the agent may still be saving.
    const queued = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [sleeper], argv: ['true'] });
    expect(queued.status).toBe(201);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'adhoc.agent_offline' && l['executionId'] === queued.body.executionId);
    await fleet.startAgent('rot-sleeper', { token: null });
    const r = await fleet.waitExecution(queued.body.executionId);
    expect(r.state, JSON.stringify(r)).toBe('succeeded');
    const agent = fleet.agents.get('rot-sleeper')!.proc;
    const updated = agent.events('agent.dispatch_keys_updated').find((l) => l['source'] === 'welcome');
    expect(updated?.['keyIds']).toEqual(expect.arrayContaining([newKey]));
    await waitFor(async () => (await status()).agentsLacking.length === 0, undefined, 'every agent to hold the new key');
  });

  it('retires the old key once every agent holds the new one; steps keep running', async () => {
    const r = await fleet.admin(['keys', 'retire', 'dispatch', '--request-ttl', '0s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`retired ${oldKey}`);
    for (const name of ['rot-a', 'rot-b', 'rot-sleeper']) {
      await fleet.agents.get(name)!.proc.waitForLog((l) => l.event === 'agent.dispatch_keys_updated' && JSON.stringify(l['keyIds']) === JSON.stringify([newKey]), undefined, `${name} to drop ${oldKey}`);
    }
    const after = await fleet.exec([a, b, sleeper], { argv: ['true'] });
    expect(after.state).toBe('succeeded');
    expect((await status()).keys.find((k) => k.keyId === oldKey)?.state).toBe('retired');
  });

  it('rotates the audit key under a running coordinator; the log verifies offline across the rotation', async () => {
    const r = await fleet.admin(['keys', 'rotate', 'audit']);
    expect(r.code, r.stderr).toBe(0);
    const [, next, previous] = /audit key (audit-[0-9a-f]+) is now active \(was (audit-[0-9a-f]+)\)/.exec(r.stdout)!;
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'keys.active_changed' && l['purpose'] === 'audit' && l['keyId'] === next);
    expect((await fleet.exec([a], { argv: ['true'] })).state).toBe('succeeded');
    const out = join(fleet.dir, 'after-audit-rotation.jsonl');
    expect((await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', out])).code).toBe(0);
    const v = await cli(['audit', 'verify', out, '--json']);
    expect(v.code, v.stdout).toBe(0);
    const report = JSON.parse(v.stdout) as { keysUsed: string[]; trust: { keys: Array<{ kid: string; how: string; by: string | null }> } };
    // The coordinator itself signed with the new key, which is trusted through the old key's key.rotated record.
    expect(report.keysUsed).toEqual([previous, next]);
    expect(report.trust.keys.find((k) => k.kid === next)).toMatchObject({ how: 'rotation', by: previous });
  });
});
