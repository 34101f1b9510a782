import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

describe('certificate renewal over the stream, and reconnecting with backoff', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    // Short lifetimes so renewal happens within the test: agents renew with a third left.
    await fleet.startCoordinator(['--agent-cert-ttl', '15s']);
    await fleet.startAgent('renewer');
    agentId = await fleet.waitOnline('renewer');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('renews before expiry, reconnects with the new certificate, and keeps working past the first expiry', async () => {
    const agent = fleet.agents.get('renewer')!.proc;
    const listExpiry = async (): Promise<number> => {
      const r = await fleet.admin(['agents', 'ls', '--json']);
      return Date.parse((JSON.parse(r.stdout) as { agents: Array<{ id: string; certificateExpires: string }> }).agents.find((a) => a.id === agentId)!.certificateExpires);
    };
    const firstExpiry = await listExpiry();
    await agent.waitForLog((l) => l.event === 'agent.renewed', 20_000);
    const renewed = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.renewed' && l['agentId'] === agentId);
    expect(typeof renewed['serial']).toBe('string');
    await agent.waitForLog((l) => l.event === 'agent.reconnect_for_renewal', 10_000);
    expect(await listExpiry()).toBeGreaterThan(firstExpiry);
    // wait until the first certificate has expired, then prove the agent still runs steps
    await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now() + 500)));
    const r = await fleet.exec([agentId], { argv: ['echo', 'still here'] });
    expect(r.state).toBe('succeeded');
    expect(fleet.coordinator!.proc.events('gateway.connection_refused').filter((l) => l['agentId'] === agentId)).toHaveLength(0);
  });

  it('reconnects with growing, jittered delays while the coordinator is down, and resumes when it returns', async () => {
    const agent = fleet.agents.get('renewer')!.proc;
    const before = agent.events('agent.disconnected').length;
    await fleet.coordinator!.proc.stop();
    await waitFor(() => agent.events('agent.disconnected').length >= before + 4, 20_000, 'four reconnect attempts');
    const delays = agent.events('agent.disconnected').slice(before).map((l) => l['retryInMs'] as number);
    // attempt n waits between half and all of 500ms * 2^n
    delays.slice(0, 4).forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(250 * 2 ** n);
      expect(d).toBeLessThanOrEqual(500 * 2 ** n);
    });
    const connectedBefore = agent.events('agent.connected').length;
    await fleet.startCoordinator(['--agent-cert-ttl', '15s']);
    await waitFor(() => agent.events('agent.connected').length > connectedBefore, 20_000, 'reconnect');
    const r = await fleet.exec([agentId], { argv: ['true'] });
    expect(r.state).toBe('succeeded');
  });
});
