/**
 * The version handshake end to end: a real coordinator refuses an agent reporting a release
 * older than it serves (at enrollment, before the token is spent, and on the stream), and a
 * real agent refuses a coordinator older than it works with; each refusal names the side to
 * upgrade. The decision itself is table-tested in test/unit/version-compat.test.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr } from '../../core/csr.js';
import { HANDRAIL_VERSION, MIN_AGENT_VERSION, MIN_COORDINATOR_VERSION } from '../../core/version.js';
import { StateDir } from '../../agent/state-dir.js';
import { EnrollmentServiceClient } from '../../proto/gen/handrail/v1/enrollment.js';
import { AgentGatewayServiceClient, type ConnectResponse } from '../../proto/gen/handrail/v1/gateway.js';
import { FakeCoordinator } from '../helpers/fake-coordinator.js';
import { Fleet } from '../helpers/fleet.js';
import { BACKSTOP_MS, spawnCli, waitFor, type Proc } from '../helpers/processes.js';
import { join } from 'node:path';
import { Database } from '../../coordinator/store/database.js';

const TOO_OLD = '0.0.9';
const TLS_NAME = { 'grpc.ssl_target_name_override': 'handrail-coordinator', 'grpc.default_authority': 'handrail-coordinator', 'grpc.use_local_subchannel_pool': 1 };
const facts = (agentVersion: string) => ({ hostname: 'old-host', os: 'Linux', platform: 'linux', arch: 'x64', cpus: 1, memoryBytes: 1, agentVersion, kernelRelease: '' });

describe('the version handshake', () => {
  let fleet: Fleet;
  let caPem: string;
  const extra: Proc[] = [];
  let fake: FakeCoordinator | undefined;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    caPem = await readFile(fleet.caFile, 'utf8');
  });
  afterAll(async () => {
    await Promise.all(extra.map((p) => p.stop()));
    await fake?.close();
    await fleet?.close();
  });

  it('refuses to enroll a too-old agent without spending its token, saying to upgrade the agent', async () => {
    const token = await fleet.token(['--uses', '1']);
    const client = new EnrollmentServiceClient(fleet.coordinator!.address, credentials.createSsl(Buffer.from(caPem)), TLS_NAME);
    const csrPem = createCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'old-agent');
    const err = await new Promise<ServiceError | null>((resolve) => client.enroll({ token, csrPem, labels: {}, facts: facts(TOO_OLD) }, new Metadata(), (e) => resolve(e)));
    client.close();
    expect(err?.code).toBe(status.FAILED_PRECONDITION);
    expect(err?.details).toBe(`agent ${TOO_OLD} is too old: coordinator ${HANDRAIL_VERSION} serves agents from ${MIN_AGENT_VERSION} on; upgrade the agent (re-run its install line from \`handrail agent install-command\`)`);
    // The one-use token is still good: a current agent enrolls with it.
    await fleet.startAgent('current', { token });
    await fleet.waitOnline('current');
  });

  it('ends the stream of an enrolled agent that reports a too-old release, naming the agent as the side to upgrade', async () => {
    const state = new StateDir(fleet.agents.get('current')!.stateDir);
    const creds = await state.readCredentials();
    const client = new AgentGatewayServiceClient(fleet.coordinator!.address, credentials.createSsl(Buffer.from(caPem), Buffer.from(creds.keyPem), Buffer.from(creds.certPem)), TLS_NAME);
    const call = client.connect(new Metadata(), { deadline: Date.now() + BACKSTOP_MS });
    const received: Array<NonNullable<ConnectResponse['msg']>> = [];
    const ended = new Promise<ServiceError>((resolve) => {
      call.on('data', (r: ConnectResponse) => r.msg && received.push(r.msg));
      call.on('error', (e: ServiceError) => resolve(e));
    });
    call.write({ msg: { $case: 'hello', value: { facts: facts(TOO_OLD), labels: {}, spooledResults: 0, agentVersion: TOO_OLD } } });
    const e = await ended;
    client.close();
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/^agent 0\.0\.9 is too old: .*upgrade the agent/);
    expect(received.map((m) => m.$case)).toEqual(['disconnect']);
    const notice = received[0]!.$case === 'disconnect' ? received[0]!.value : undefined;
    expect(notice).toEqual({ reason: e.details, upgrade: 'agent' });
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.version_refused' && l['agentVersion'] === TOO_OLD && l['upgrade'] === 'agent');
  });

  it('an agent refuses a coordinator older than it works with, saying to upgrade the coordinator', async () => {
    fake = await FakeCoordinator.start(fleet.certsDir, { coordinatorVersion: '0.0.1' });
    const stateDir = fleet.agents.get('current')!.stateDir;
    await fleet.agents.get('current')!.proc.stop();
    const agent = spawnCli(['agent', '--coordinator', `127.0.0.1:${fake.port}`, '--state-dir', stateDir, '--log-level', 'debug']);
    extra.push(agent);
    const refused = await agent.waitForLog((l) => l.event === 'agent.coordinator_version_refused');
    expect(refused['upgrade']).toBe('coordinator');
    expect(refused.msg).toBe(`coordinator 0.0.1 is too old: agent ${HANDRAIL_VERSION} serves coordinators from ${MIN_COORDINATOR_VERSION} on; upgrade the coordinator`);
    // It never counts itself connected, and keeps retrying (an upgraded coordinator is picked up by itself).
    await agent.waitForLog((l) => l.event === 'agent.disconnected' && String(l['reason']).includes('upgrade the coordinator'));
    expect(agent.events('agent.connected')).toEqual([]);
  });

  it('audits each refusal with the side to upgrade, at most five per address and stage a minute', async () => {
    // A flood of enrollments with an old release, on a good token that is never spent.
    const token = await fleet.token(['--uses', '1']);
    const client = new EnrollmentServiceClient(fleet.coordinator!.address, credentials.createSsl(Buffer.from(caPem)), TLS_NAME);
    const csrPem = createCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'old-flood');
    for (let i = 0; i < 8; i++) {
      const err = await new Promise<ServiceError | null>((resolve) => client.enroll({ token, csrPem, labels: {}, facts: facts(TOO_OLD) }, new Metadata(), (e) => resolve(e)));
      expect(err?.code).toBe(status.FAILED_PRECONDITION);
    }
    client.close();
    const proc = fleet.coordinator!.proc;
    await waitFor(() => proc.events('enroll.refused').filter((l) => l['reason'] === 'agent_version').length >= 9, undefined, 'nine enrollment refusals');
    // The records are written in the background: stop the coordinator, which waits for them.
    await proc.stop();
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    let records: Array<{ code: string; data: { stage: string; upgrade: string; agentVersion: string; coordinatorVersion: string; name: string | null; agentId: string | null; suppressed: number } }>;
    try {
      const rows = await db.all<{ payload: Buffer | string }>('SELECT payload FROM audit_records ORDER BY seq');
      records = rows.map((r) => JSON.parse(r.payload.toString()) as { type: string }).filter((r) => r.type === 'agent.version_refused') as unknown as typeof records;
    } finally {
      await db.close();
    }
    const enrollment = records.filter((r) => r.data.stage === 'enrollment');
    const stream = records.filter((r) => r.data.stage === 'stream');
    // 1 + 8 refused enrollments from one address: the first five are recorded, the rest counted.
    expect(enrollment).toHaveLength(5);
    expect(enrollment[0]).toMatchObject({ code: 'HR1106', data: { upgrade: 'agent', agentVersion: TOO_OLD, coordinatorVersion: HANDRAIL_VERSION, name: 'old-agent', agentId: null, suppressed: 0 } });
    expect(stream).toHaveLength(1);
    expect(stream[0]!.data).toMatchObject({ upgrade: 'agent', agentVersion: TOO_OLD, name: null, suppressed: 0 });
    expect(stream[0]!.data.agentId).toMatch(/^agt-/);
  });
});
