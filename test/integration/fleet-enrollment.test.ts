import { generateKeyPairSync } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { EnrollmentServiceClient } from '../../proto/gen/handrail/v1/enrollment.js';
import { createCsr } from '../../core/csr.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { Fleet } from '../helpers/fleet.js';
import { cli, waitFor } from '../helpers/processes.js';

describe('enrollment and the fleet list', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('refuses to overwrite the CA without --force (exit 2, clear message)', async () => {
    const r = await cli(['ca', 'init', '--certs-dir', fleet.certsDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists/);
    expect(r.stderr).toMatch(/--force/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('enrolls with a one-time token, keeps its key private, and lists online with labels and facts', async () => {
    const token = await fleet.token(['--labels', 'env=demo,role=web', '--uses', '1']);
    expect(token).toMatch(/^hrt_[A-Za-z0-9_-]{43}$/);
    const agent = await fleet.startAgent('web-1', { token, labels: 'role=db,zone=a' });
    const id = await fleet.waitOnline('web-1');
    const stateDir = join(fleet.dir, 'agent-web-1');
    expect((await stat(join(stateDir, 'identity', 'agent.pem'))).mode & 0o777).toBe(0o600);
    const ls = await waitFor(async () => {
      const r = await fleet.admin(['agents', 'ls', '--json']);
      const parsed = JSON.parse(r.stdout) as { agents: Array<Record<string, unknown>> };
      const a = parsed.agents.find((x) => x['id'] === id);
      return a && a['status'] === 'online' ? a : undefined;
    });
    // token-pinned labels win over the agent's own
    expect(ls['labels']).toEqual({ env: 'demo', role: 'web', zone: 'a' });
    expect(ls['name']).toBe('web-1');
    expect(ls['version']).toBe('0.1.0');
    expect(typeof ls['hostname']).toBe('string');
    expect(ls['cpus']).toBeGreaterThan(0);
    expect(Date.parse(ls['certificateExpires'] as string)).toBeGreaterThan(Date.now());
    const table = await fleet.admin(['agents', 'ls']);
    expect(table.stdout).toMatch(/ID\s+NAME\s+STATUS\s+LAST SEEN\s+VERSION\s+CERT EXPIRES\s+LABELS/);
    expect(table.stdout).toContain(id);

    // the first start ran as `handrail agent`: Node's default flags
    expect((await agent.waitForLog((l) => l.event === 'agent.running'))['nodeFlags']).toEqual([]);

    // restart without the token, as the shipped `handrail-agent` executable: the certificate alone is enough now
    await agent.stop();
    await waitFor(async () => {
      const r = await fleet.admin(['agents', 'ls', '--json']);
      return (JSON.parse(r.stdout) as { agents: Array<{ id: string; status: string }> }).agents.find((a) => a.id === id)?.status === 'offline';
    });
    const again = await fleet.startAgent('web-1', { token: null, agentBin: true });
    const line = await again.waitForLog((l) => l.event === 'agent.connected');
    expect(line['agentId']).toBe(id);
    expect((await again.waitForLog((l) => l.event === 'agent.running'))['nodeFlags']).toEqual(AGENT_NODE_FLAGS);
    expect(again.events('agent.enrolled')).toHaveLength(0);
  });

  it('refuses a reused, an expired, an unknown and a wrongly named token, with reasons, and keeps serving', async () => {
    const coordinator = fleet.coordinator!.proc;
    const once = await fleet.token(['--uses', '1']);
    await fleet.startAgent('reuse-a', { token: once });
    await fleet.waitOnline('reuse-a');
    const reused = await fleet.startAgent('reuse-b', { token: once });
    expect(await reused.wait()).toBe(2);
    expect(reused.stderrText).toMatch(/already used 1 of 1/);

    const shortLived = await fleet.token(['--ttl', '1s']);
    // It expires 1 s after it was made, at the latest 1 s from now: wait for that point in time.
    const expiredBy = Date.now() + 1_000;
    await waitFor(() => Date.now() > expiredBy, undefined, 'the token to expire');
    const expired = await fleet.startAgent('late', { token: shortLived });
    expect(await expired.wait()).toBe(2);
    expect(expired.stderrText).toMatch(/expired/);

    const unknown = await fleet.startAgent('nobody', { token: 'hrt_' + 'A'.repeat(43) });
    expect(await unknown.wait()).toBe(2);
    expect(unknown.stderrText).toMatch(/no such token/);

    const pinned = await fleet.token(['--name', 'db-*']);
    const wrongName = await fleet.startAgent('web-9', { token: pinned });
    expect(await wrongName.wait()).toBe(2);
    expect(wrongName.stderrText).toMatch(/not allowed by token/);
    // the refusal spent nothing: the right name still enrolls with the same token
    await fleet.startAgent('db-1', { token: pinned });
    await fleet.waitOnline('db-1');

    // Each refusal is logged as it is sent; the log line may reach us after the agent has exited.
    await waitFor(() => {
      const reasons = new Set(coordinator.events('enroll.refused').map((l) => l['reason']));
      return ['used_up', 'expired', 'unknown', 'name_not_allowed'].every((r) => reasons.has(r));
    }, undefined, 'the coordinator to log every refusal with its reason');
    // the token secret never reaches the coordinator's logs
    expect(coordinator.stderrText).not.toContain(once);
    expect(coordinator.stderrText).not.toContain(pinned);
  });

  it('rejects bad usage with exit code 2 and a message', async () => {
    const r = await fleet.admin(['token', 'create', '--ttl', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid duration "soon"/);
    const bad = await fleet.admin(['token', 'create', '--labels', 'no-equals']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/key=value/);
    const unknownFlag = await cli(['agents', 'ls', '--colour']);
    expect(unknownFlag.code).toBe(2);
    const help = await cli(['agent', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--coordinator HOST:PORT/);
    expect(help.stdout).toMatch(/HANDRAIL_COORDINATOR/);
  });

  it('limits enrollment attempts per address (the only unauthenticated call)', async () => {
    const caPem = await readFile(fleet.caFile, 'utf8');
    const client = new EnrollmentServiceClient(fleet.coordinator!.address, credentials.createSsl(Buffer.from(caPem)), {
      'grpc.ssl_target_name_override': 'handrail-coordinator',
      'grpc.default_authority': 'handrail-coordinator',
    });
    const csrPem = createCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'spammer');
    const codes: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 40; i++) {
      codes.push(
        await new Promise<number>((resolve) =>
          client.enroll({ token: 'hrt_' + 'B'.repeat(43), csrPem, labels: {}, facts: undefined }, new Metadata(), (e: ServiceError | null) => resolve(e?.code ?? 0)),
        ),
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    client.close();
    // 30 attempts a minute per address, as a bucket of 30 refilled at 0.5 a second (this test's
    // agents already took some). How many get through depends on how long the 40 took, so the
    // bound does too: at most the bucket plus what refilled meanwhile; the rest are refused.
    expect(codes.every((c) => c === 7 || c === 8), codes.join(',')).toBe(true); // PERMISSION_DENIED (no such token) or RESOURCE_EXHAUSTED
    expect(codes).toContain(7);
    expect(codes.filter((c) => c === 7).length).toBeLessThanOrEqual(30 + Math.ceil(seconds * 0.5));
    expect(codes).toContain(8);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'enroll.refused' && l['reason'] === 'rate_limited');
  });
});
