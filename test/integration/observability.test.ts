/**
 * Watching a real coordinator and agent: /metrics read by a Prometheus text parser moves
 * after a real execution; /healthz and /readyz; the standard gRPC health service and server
 * reflection on the agent port, probed with an independent client (buf curl, Go gRPC) that
 * must present a certificate the gateway accepts; logs carry ids and never a secret; and a
 * SIGTERM shutdown that ends with a signed checkpoint covering every record.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { AgentGatewayServiceClient } from '../../proto/gen/handrail/v1/gateway.js';
import { Database } from '../../coordinator/store/database.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { foreignCa, certFor } from '../helpers/forged-pki.js';
import { ROOT, waitFor } from '../helpers/processes.js';
import { parseMetrics, sampleValue, type Family } from '../helpers/prometheus-text.js';
import { generateKeyPairSync } from 'node:crypto';

const BUF = join(ROOT, 'node_modules', '.bin', 'buf');
const SECRET = 'obs-s3cret-Zq7xW9';

let fleet: Fleet;
let agentPem: string;
let bootstrapToken: string;

beforeAll(async () => {
  fleet = await Fleet.create();
  await fleet.startCoordinator();
  await fleet.ensureAdmin();
  bootstrapToken = await fleet.token();
  await fleet.startAgent('web-1', { labels: 'role=web', token: bootstrapToken });
  await fleet.waitOnline('web-1');
  agentPem = join(fleet.agents.get('web-1')!.stateDir, 'identity', 'agent.pem');
});
afterAll(async () => {
  await fleet?.close();
});

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(`${fleet.coordinator!.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, families: await parseMetrics(text) };
}

async function run(runbook: string, options: Record<string, string>): Promise<ExecutionResult> {
  const r = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook, options, targets: 'role=web' });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return fleet.waitExecution(r.body.executionId);
}

function bufCurl(args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ['curl', '--protocol', 'grpc', ...args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('/metrics', () => {
  it('moves after a real execution: executions by runbook/team/status, step and dispatch histograms, audit and store figures', async () => {
    const before = await scrape();
    const v = (fs: Map<string, Family>, name: string, labels: Record<string, string> = {}): number => sampleValue(fs, name, labels) ?? 0;
    const exec = await run('echo-options', { message: 'hello metrics', password: SECRET });
    expect(exec.state).toBe('succeeded');
    // The last counters move after the result is stored: wait for the scrape to show them.
    const after = await waitFor(async () => {
      const s = await scrape();
      return v(s.families, 'handrail_executions_total', { kind: 'runbook', runbook: 'echo-options', team: 'team-test', status: 'succeeded' }) === 1 ? s : undefined;
    }, 30_000, 'the execution to be counted');
    const f = after.families;
    expect(v(f, 'handrail_steps_dispatched_total') - v(before.families, 'handrail_steps_dispatched_total')).toBe(2);
    expect(v(f, 'handrail_results_stored_total') - v(before.families, 'handrail_results_stored_total')).toBe(2);
    expect(v(f, 'handrail_step_duration_seconds', { status: 'succeeded' }) - v(before.families, 'handrail_step_duration_seconds', { status: 'succeeded' })).toBe(2);
    expect(sampleValue(f, 'handrail_step_duration_seconds', { status: 'succeeded' }, 'sum')).toBeGreaterThan(sampleValue(before.families, 'handrail_step_duration_seconds', { status: 'succeeded' }, 'sum') ?? 0);
    expect(v(f, 'handrail_dispatch_latency_seconds') - v(before.families, 'handrail_dispatch_latency_seconds')).toBe(2);
    // Records for the request, the policy decision, two dispatches, two results, the completion…
    expect(v(f, 'handrail_audit_records_appended_total') - v(before.families, 'handrail_audit_records_appended_total')).toBeGreaterThanOrEqual(6);
    expect(v(f, 'handrail_store_commit_duration_seconds')).toBeGreaterThan(v(before.families, 'handrail_store_commit_duration_seconds'));
    expect(v(f, 'handrail_store_commits_total', { outcome: 'committed' })).toBeGreaterThan(v(before.families, 'handrail_store_commits_total', { outcome: 'committed' }));
    expect(v(f, 'handrail_agents_online')).toBe(1);
    expect(v(f, 'handrail_queue_length', { queue: 'steps_in_flight' })).toBe(0);
    expect(v(f, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(f.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    // Conventions: every family documented; counters end in _total; no label carries an id.
    for (const [name, fam] of f) {
      expect(fam.help, name).toMatch(/\S/);
      if (fam.type === 'counter') expect(name).toMatch(/_total$/);
    }
    expect(after.text).not.toMatch(/="(exe|agt|sr|req)-[a-z0-9]+"/);
    expect(after.text).not.toContain(SECRET);
  });
});

describe('/healthz and /readyz', () => {
  it('answers alive and ready with JSON naming each check', async () => {
    const alive = await fetch(`${fleet.coordinator!.url}/healthz`);
    expect(alive.status).toBe(200);
    expect(await alive.json()).toMatchObject({ alive: true });
    const ready = await fetch(`${fleet.coordinator!.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      ready: true,
      phase: 'serving',
      checks: [
        { name: 'store', ok: true, detail: 'writable' },
        { name: 'gateway', ok: true, detail: 'listening for agents' },
        { name: 'runbooks', ok: true, detail: expect.stringMatching(/^\d+ runbook\(s\), 1 policy loaded$/) as unknown as string },
      ],
    });
  });
});

describe('gRPC health and reflection on the agent port', () => {
  const url = (): string => `https://127.0.0.1:${fleet.coordinator!.grpcPort}`;

  it('lists the services by reflection and answers Health/Check for a client with an accepted certificate', async () => {
    const tls = ['--cacert', fleet.caFile, '--cert', agentPem, '--key', agentPem];
    const list = await bufCurl([...tls, '--list-services', url()]);
    expect(list.code, list.out).toBe(0);
    expect(list.out.split('\n').filter(Boolean).sort()).toEqual(['grpc.health.v1.Health', 'handrail.v1.AgentGatewayService', 'handrail.v1.EnrollmentService']);
    const methods = await bufCurl([...tls, '--list-methods', url()]);
    expect(methods.out).toContain('handrail.v1.AgentGatewayService/Connect');
    const check = await bufCurl([...tls, `${url()}/grpc.health.v1.Health/Check`]);
    expect(check.code, check.out).toBe(0);
    expect(JSON.parse(check.out)).toEqual({ status: 'SERVING' });
    const one = await bufCurl([...tls, '-d', '{"service":"handrail.v1.AgentGatewayService"}', `${url()}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(one.out)).toEqual({ status: 'SERVING' });
    const unknown = await bufCurl([...tls, '-d', '{"service":"no.such.Service"}', `${url()}/grpc.health.v1.Health/Check`]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.out).toMatch(/not[_ ]found/i);
  });

  it('serves neither to a client without a certificate, nor to one from another CA', async () => {
    const anonymous = await bufCurl(['--cacert', fleet.caFile, '--list-services', url()]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.out).toMatch(/unimplemented/i);
    const check = await bufCurl(['--cacert', fleet.caFile, `${url()}/grpc.health.v1.Health/Check`]);
    expect(check.code).not.toBe(0);
    expect(check.out).not.toContain('SERVING');

    const other = await foreignCa();
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Date.now();
    const dir = await mkdtemp(join(tmpdir(), 'hr-obs-'));
    const pem = join(dir, 'foreign.pem');
    const cert = certFor(other, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'agt-foreign', { notBefore: now - 60_000, notAfter: now + 3_600_000 });
    await writeFile(pem, cert + privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const foreign = await bufCurl(['--cacert', fleet.caFile, '--cert', pem, '--key', pem, '--list-services', url()]);
    expect(foreign.code).not.toBe(0);
    expect(foreign.out).not.toContain('grpc.health.v1.Health');
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'untrusted', 30_000, 'the foreign certificate refused');
  });
});

describe('a probe certificate (ca issue-probe)', () => {
  const url = (): string => `https://127.0.0.1:${fleet.coordinator!.grpcPort}`;

  it('reaches health and reflection with a certificate no agent holds, is audited, and opens no agent stream', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'hr-probe-')), 'probe');
    const r = await fleet.admin(['ca', 'issue-probe', '--out', dir, '--name', 'prometheus', '--ttl', '1h', '--certs-dir', fleet.certsDir]);
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(join(dir, 'probe.key'))).mode & 0o777).toBe(0o600);
    const tls = ['--cacert', join(dir, 'ca.pem'), '--cert', join(dir, 'probe.pem'), '--key', join(dir, 'probe.key')];
    const list = await bufCurl([...tls, '--list-services', url()]);
    expect(list.code, list.out).toBe(0);
    expect(list.out).toContain('grpc.health.v1.Health');
    const check = await bufCurl([...tls, `${url()}/grpc.health.v1.Health/Check`]);
    expect(check.code, check.out).toBe(0);
    expect(JSON.parse(check.out)).toEqual({ status: 'SERVING' });

    // The agent stream refuses it, with a reason of its own (grpc-js, real mTLS).
    const creds = credentials.createSsl(await readFile(join(dir, 'ca.pem')), await readFile(join(dir, 'probe.key')), await readFile(join(dir, 'probe.pem')));
    const client = new AgentGatewayServiceClient(`127.0.0.1:${fleet.coordinator!.grpcPort}`, creds, { 'grpc.ssl_target_name_override': 'handrail-coordinator', 'grpc.default_authority': 'handrail-coordinator' });
    const call = client.connect();
    const ended = new Promise<ServiceError>((resolve) => call.on('error', (e: ServiceError) => resolve(e)));
    call.write({ msg: { $case: 'hello', value: { facts: undefined, labels: {}, spooledResults: 0, agentVersion: '0.1.0' } } });
    const e = await ended;
    client.close();
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.details).toMatch(/probe certificate serves health and reflection only/);
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.connection_refused' && l['reason'] === 'probe_certificate');
    expect(fleet.coordinator!.proc.events('agent.connected').filter((l) => String(l['agentId'] ?? '').startsWith('probe'))).toEqual([]);

    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      const rows = await db.all<{ payload: Buffer | string }>('SELECT payload FROM audit_records ORDER BY seq');
      const issued = rows.map((row) => JSON.parse(row.payload.toString()) as { type: string; code: string; data: { name: string } }).filter((x) => x.type === 'ca.probe_certificate_issued');
      expect(issued.map((x) => [x.code, x.data.name])).toEqual([['HR6022', 'prometheus']]);
    } finally {
      await db.close();
    }

    const bad = await fleet.admin(['ca', 'issue-probe', '--out', dir, '--name', 'no spaces', '--certs-dir', fleet.certsDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--name "no spaces" is invalid/);
  });
});

describe('logs', () => {
  it('carry execution, agent and request ids, and never a secret option, an API token or a bootstrap token', async () => {
    const exec = await run('echo-options', { message: 'ids please', password: SECRET });
    expect(exec.state).toBe('succeeded');
    const coordinator = fleet.coordinator!.proc;
    await coordinator.waitForLog((l) => l.event === 'execution.finished' && l['executionId'] === exec.id, 30_000, 'execution.finished with its id');
    const request = coordinator.logs.find((l) => l.event === 'http.request' && l['method'] === 'POST' && l['path'] === '/api/v1/executions');
    expect(request?.['requestId']).toMatch(/^req-/);
    expect(request?.['user']).toBe('root');
    const agent = fleet.agents.get('web-1')!.proc;
    expect(agent.logs.some((l) => l.event === 'step.accepted' && l['executionId'] === exec.id && typeof l['agentId'] === 'string')).toBe(true);
    for (const [who, text] of [['coordinator', coordinator.stderrText], ['agent', agent.stderrText]] as const) {
      expect(text, who).not.toContain(SECRET);
      expect(text, who).not.toContain(fleet.adminToken);
      expect(text, who).not.toContain(bootstrapToken);
      expect(text, who).not.toContain('PRIVATE KEY');
    }
  });
});

describe('shutdown (SIGTERM)', () => {
  it('ends with a signed checkpoint of the last record, and exits 0', async () => {
    const coordinator = fleet.coordinator!.proc;
    const code = await coordinator.stop('SIGTERM');
    expect(code).toBe(0);
    const events = coordinator.logs.map((l) => l.event);
    const stopping = events.indexOf('coordinator.stopping');
    const checkpoint = events.lastIndexOf('audit.checkpoint');
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(checkpoint).toBeGreaterThan(stopping);
    expect(events.indexOf('coordinator.stopped')).toBeGreaterThan(checkpoint);
    const line = coordinator.logs[checkpoint]!['checkpoint'] as { checkpoint: string };
    const body = JSON.parse(Buffer.from(line.checkpoint, 'base64').toString('utf8')) as { seq: number; head: string };
    // Nothing was written after it: the checkpoint's head is the log's last record.
    const out = join(fleet.dir, 'after-stop.jsonl');
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', out]);
    expect(ex.code, ex.stderr).toBe(0);
    const records = (await readFile(out, 'utf8')).split('\n').filter((l) => l.includes('"seq"'));
    const seqs = records.map((l) => (JSON.parse(l) as { seq?: number }).seq).filter((s): s is number => typeof s === 'number');
    expect(Math.max(...seqs)).toBe(body.seq);
    const cps = join(fleet.dir, 'cp.jsonl');
    await writeFile(cps, JSON.stringify(line) + '\n');
    const verified = await fleet.admin(['audit', 'verify', out, '--checkpoints', cps]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });
});
