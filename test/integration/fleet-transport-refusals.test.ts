import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { rawClient, rawConnect, tlsCredentials } from '../helpers/raw-grpc.js';
import { waitFor } from '../helpers/processes.js';
import { issueAgentCertificate, loadCa, parseCsr } from '../../coordinator/pki/ca.js';
import { createCsr } from '../../core/csr.js';
import { ConnectRequest } from '../../proto/gen/handrail/v1/gateway.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

async function metric(fleet: Fleet, series: string): Promise<number> {
  const text = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`handrail_${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('the agent port refuses what it must, logs why, and keeps serving', () => {
  let fleet: Fleet;
  let caPem: string;
  let agentId: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    caPem = await readFile(fleet.caFile, 'utf8');
    await fleet.startAgent('steady');
    agentId = await fleet.waitOnline('steady');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  const stillServes = async (): Promise<void> => {
    const r = await fleet.exec([agentId], { argv: ['echo', 'alive'] });
    expect(r.state).toBe('succeeded');
  };

  it('refuses the agent stream without a client certificate', async () => {
    const client = rawClient(fleet.coordinator!.address, tlsCredentials(caPem));
    const r = await rawConnect(client, [Buffer.from(ConnectRequest.encode({ msg: { $case: 'heartbeat', value: { sentAtMs: 1, runningSteps: 0 } } }).finish())]);
    client.close();
    expect(r.code).toBe(16); // UNAUTHENTICATED
    expect(r.details).toMatch(/client certificate is required/);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'no_client_certificate');
    expect(await metric(fleet, 'connections_refused_total{reason="no_client_certificate"}')).toBeGreaterThanOrEqual(1);
    await stillServes();
  });

  it('refuses a certificate from another CA (made with openssl)', async () => {
    const dir = join(fleet.dir, 'foreign');
    execFileSync('mkdir', ['-p', dir]);
    const sh = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Evil CA']);
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'agent.key', '-out', 'agent.csr', '-subj', `/CN=${agentId}`]);
    sh(['x509', '-req', '-in', 'agent.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'agent.pem', '-days', '1']);
    const client = rawClient(fleet.coordinator!.address, tlsCredentials(caPem, await readFile(join(dir, 'agent.key'), 'utf8'), await readFile(join(dir, 'agent.pem'), 'utf8')));
    const r = await rawConnect(client, [Buffer.alloc(0)]);
    client.close();
    expect(r.code).not.toBe(0);
    const line = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'untrusted');
    expect(String(line['msg'])).toMatch(/client certificate rejected/);
    expect(await metric(fleet, 'connections_refused_total{reason="untrusted"}')).toBeGreaterThanOrEqual(1);
    await stillServes();
  });

  it('refuses an expired certificate from the right CA', async () => {
    const ca = await loadCa(fleet.certsDir);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Date.now();
    const cert = issueAgentCertificate(ca, parseCsr(createCsr(privateKey, 'x')), agentId, { notBefore: now - 7_200_000, notAfter: now - 3_600_000 });
    const client = rawClient(fleet.coordinator!.address, tlsCredentials(caPem, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert.pem));
    const r = await rawConnect(client, [Buffer.alloc(0)]);
    client.close();
    expect(r.code).not.toBe(0);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'expired');
    await stillServes();
  });

  it('refuses a valid-looking certificate the registry never issued', async () => {
    const ca = await loadCa(fleet.certsDir);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Date.now();
    // Signed by the real CA key (as if the key leaked) but never recorded: the registry refuses it.
    const cert = issueAgentCertificate(ca, parseCsr(createCsr(privateKey, 'x')), agentId, { notBefore: now - 1000, notAfter: now + 3_600_000 });
    const client = rawClient(fleet.coordinator!.address, tlsCredentials(caPem, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert.pem));
    const r = await rawConnect(client, [Buffer.alloc(0)]);
    client.close();
    expect(r.code).not.toBe(0);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'unknown_certificate');
  });

  it('ends streams that send malformed or oversized messages, and keeps serving others', async () => {
    // Use a second enrolled agent's credentials from its state dir, with the agent itself stopped.
    await fleet.startAgent('victim');
    await fleet.waitOnline('victim');
    const victim = fleet.agents.get('victim')!;
    await victim.proc.stop();
    const creds = await readFile(join(victim.stateDir, 'identity', 'agent.pem'), 'utf8');
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(creds)![0];
    const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(creds)![0];

    const garbage = rawClient(fleet.coordinator!.address, tlsCredentials(caPem, key, cert));
    const g = await rawConnect(garbage, [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])]);
    garbage.close();
    expect(g.code).toBe(3); // INVALID_ARGUMENT
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'session.message_refused' && l['reason'] === 'malformed');

    const big = rawClient(fleet.coordinator!.address, tlsCredentials(caPem, key, cert));
    const hello = ConnectRequest.encode({ msg: { $case: 'hello', value: { facts: undefined, labels: { pad: 'x'.repeat(3 * 1024 * 1024) }, spooledResults: 0, agentVersion: HANDRAIL_VERSION } } }).finish();
    const b = await rawConnect(big, [Buffer.from(hello)]);
    big.close();
    expect(b.code).toBe(8); // RESOURCE_EXHAUSTED
    const refused = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'session.message_refused' && l['reason'] === 'oversized');
    expect(String(refused['msg'])).toMatch(/over the 1048576-byte limit/);
    expect(await metric(fleet, 'messages_refused_total{reason="malformed"}')).toBeGreaterThanOrEqual(1);
    await stillServes();
  });

  it('cuts a revoked agent on its live stream and refuses it at every later connection', async () => {
    const agent = fleet.agents.get('steady')!;
    const before = agent.proc.events('agent.disconnected').length;
    const r = await fleet.admin(['agents', 'revoke', agentId, '--reason', 'host decommissioned']);
    expect(r.code, r.stderr).toBe(0);
    // The live stream is cut because of the revocation (not a timeout or a reconnect). How soon
    // is a latency figure, for a benchmark on a quiet machine, not for a test on a busy one.
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.revoked_stream_closed' && l['agentId'] === agentId);
    await waitFor(() => agent.proc.events('agent.disconnected').length > before, undefined, 'the agent to see its stream cut');
    expect(agent.proc.events('agent.disconnected')[before]!['reason']).toMatch(/revoked/);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'revoked' && l['agentId'] === agentId);
    const ls = await waitFor(async () => {
      const x = await fleet.admin(['agents', 'ls', '--json']);
      return (JSON.parse(x.stdout) as { agents: Array<{ id: string; status: string }> }).agents.find((a) => a.id === agentId);
    });
    expect(ls.status).toBe('revoked');
    const ad = await fleet.api<{ error: { message: string } }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['true'] });
    expect(ad.status).toBe(400);
    expect(ad.body.error.message).toMatch(/revoked/);
  });
});
