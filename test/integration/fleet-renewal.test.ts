import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/processes.js';

// The two fleets here are independent, and this one spends most of its time waiting for a
// certificate's real lifetime to run out (TLS checks it against the real clock): both describes
// are concurrent, so they run side by side (each has one test).
describe.concurrent('certificate renewal over the stream', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    // Short lifetimes so renewal happens within the test: agents renew with a third left (of
    // 16.5 s: the certificate is backdated by a tenth of the 15 s) and look at every 1 s
    // heartbeat, so the renewal (key generation, CSR, signing) has at least 4.5 s before the
    // first certificate expires.
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
    await agent.waitForLog((l) => l.event === 'agent.renewed', 60_000);
    const renewed = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.renewed' && l['agentId'] === agentId);
    expect(typeof renewed['serial']).toBe('string');
    await agent.waitForLog((l) => l.event === 'agent.reconnect_for_renewal');
    expect(await listExpiry()).toBeGreaterThan(firstExpiry);
    // Once the first certificate has expired (a point in time, not a guess at how long
    // something takes), the agent still runs steps.
    await waitFor(() => Date.now() > firstExpiry + 500, 60_000, 'the first certificate to expire');
    const r = await fleet.exec([agentId], { argv: ['echo', 'still here'] });
    expect(r.state).toBe('succeeded');
    expect(fleet.coordinator!.proc.events('gateway.connection_refused').filter((l) => l['agentId'] === agentId)).toHaveLength(0);
  });
});

// A fleet of its own with long-lived certificates: a short-lived one could expire while the
// coordinator is down here, and the agent would (rightly) give up.
describe.concurrent('reconnecting with backoff', () => {
  let fleet: Fleet;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('reconnector');
    agentId = await fleet.waitOnline('reconnector');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('reconnects with growing, jittered delays while the coordinator is down, and resumes when it returns', async () => {
    const agent = fleet.agents.get('reconnector')!.proc;
    const before = agent.events('agent.disconnected').length;
    await fleet.coordinator!.proc.stop();
    await waitFor(() => agent.events('agent.disconnected').length >= before + 4, undefined, 'four reconnect attempts');
    const delays = agent.events('agent.disconnected').slice(before).map((l) => l['retryInMs'] as number);
    // attempt n waits between half and all of 500ms * 2^n (the agent's first stream never failed before)
    delays.slice(0, 4).forEach((d, n) => {
      expect(d).toBeGreaterThanOrEqual(250 * 2 ** n);
      expect(d).toBeLessThanOrEqual(500 * 2 ** n);
    });
    const connectedBefore = agent.events('agent.connected').length;
    await fleet.startCoordinator();
    await waitFor(() => agent.events('agent.connected').length > connectedBefore, undefined, 'reconnect');
    const r = await fleet.exec([agentId], { argv: ['true'] });
    expect(r.state).toBe('succeeded');
  });
});
