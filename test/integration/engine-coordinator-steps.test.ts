import { createServer, type Server } from 'node:http';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { ROOT, waitFor } from '../helpers/processes.js';

describe('coordinator-side steps (http, sleep, approval gates) and unreachable nodes', () => {
  let fleet: Fleet;
  let server: Server;
  let port = 0;
  const seen: string[] = [];
  let lee: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers['x-token'] ?? ''}`);
      res.statusCode = req.url?.startsWith('/broken') ? 500 : req.method === 'POST' ? 204 : 200;
      res.end('pool updated');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
    fleet = await Fleet.create();
    const dir = join(fleet.dir, 'runbooks');
    await mkdir(dir);
    await copyFile(join(ROOT, 'test/fixtures/engine/policy.yaml'), join(dir, 'policy.yaml'));
    await writeFile(
      join(dir, 'lb.yaml'),
      `apiVersion: handrail/v1
kind: Runbook
metadata: { id: lb-cycle, title: Drain via the LB API, owner: team-web, tags: [web, test] }
spec:
  options:
    - { name: reason, type: string, required: true }
    - { name: token, type: secret, required: true }
  targets: { selector: role=web }
  strategy: rolling
  concurrency: 1
  steps:
    - name: drain
      http: { method: POST, url: "http://127.0.0.1:${port}/pools/web/\${host.name}?why=\${option.reason}", headers: { X-Token: "\${option.token}" }, expectStatus: 204 }
    - name: wait for a lead
      approval: { required: 1, from: [group:web-leads] }
    - { name: settle, sleep: 100ms }
    - name: check
      http: { url: "http://127.0.0.1:${port}/health/\${host.name}" }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: lb-broken, title: LB call fails, owner: team-web, tags: [web, test] }
spec:
  targets: { selector: role=web }
  steps:
    - name: call
      http: { url: "http://127.0.0.1:${port}/broken/\${host.name}" }
  onFailure:
    - name: cleanup
      http: { method: POST, url: "http://127.0.0.1:${port}/cleanup/\${host.name}", expectStatus: [204] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: agent-echo, title: Echo on the agent, owner: team-web, tags: [web, test] }
spec:
  targets: { selector: role=web }
  steps:
    - { name: echo, run: [echo, hi] }
`,
    );
    await fleet.startCoordinator(['--runbooks-dir', dir, '--offline-wait', '1s']);
    lee = await fleet.user('lee', ['web-leads']);
    const web = await fleet.token(['--labels', 'role=web,env=test', '--uses', '2']);
    await fleet.startAgent('web 1'.replace(' ', '-'), { token: web });
    await fleet.startAgent('web-2', { token: web });
    await fleet.waitOnline('web-1');
    await fleet.waitOnline('web-2');
  });
  afterAll(async () => {
    await fleet?.close();
    server?.close();
  });

  it('runs http and sleep steps on the coordinator and pauses at an approval gate', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'lb-cycle', options: { reason: 'a b&c', token: 't0ps3cret' } });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const id = started.body.executionId;
    const waiting = await waitFor(async () => {
      const v = await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${id}`);
      return v.body.state === 'awaiting_approval' ? v.body : undefined;
    });
    expect(waiting.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['drain:succeeded']);
    expect(seen).toContain('POST /pools/web/web-1?why=a%20b%26c t0ps3cret');
    const inbox = await fleet.api<{ approvals: Array<{ executionId: string }> }>('GET', '/api/v1/approvals', undefined, lee);
    expect(inbox.body.approvals.map((a) => a.executionId)).toContain(id);
    const ok = await fleet.api('POST', `/api/v1/executions/${id}/approve`, { comment: 'go' }, lee);
    expect(ok.status).toBe(200);
    const r = await fleet.waitExecution(id);
    expect(r.state).toBe('succeeded');
    expect(r.steps.filter((s) => s.name === 'check').map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(seen.filter((s) => s.startsWith('GET /health/'))).toEqual(['GET /health/web-1 ', 'GET /health/web-2 ']);
    expect(await fleet.output(id, r.steps.find((s) => s.name === 'check')!.id)).toBe('pool updated');
    // the secret went to the LB, not into the execution's records
    expect(JSON.stringify(r)).not.toContain('t0ps3cret');
  });

  it('runs onFailure handlers when an http step gets an unexpected status', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'lb-broken', targets: 'name=web-1' });
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('failed');
    expect(r.steps.map((s) => `${s.name}:${s.state}:${s.exitCode ?? ''}`)).toEqual(['call:failed:500', 'cleanup:succeeded:204']);
    expect(r.nodes[0]!.reason).toMatch(/HTTP 500/);
  });

  it('reports an offline target as a failed node with the reason, not silently skipped', async () => {
    await fleet.agents.get('web-2')!.proc.stop();
    await waitFor(async () => {
      const x = await fleet.admin(['agents', 'ls', '--json']);
      return (JSON.parse(x.stdout) as { agents: Array<{ name: string; status: string }> }).agents.find((a) => a.name === 'web-2')?.status === 'offline';
    });
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'agent-echo', targets: 'name=web-2' });
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('failed');
    const web2 = r.nodes.find((n) => n.agentName === 'web-2')!;
    expect(web2.state).toBe('failed');
    expect(web2.reason).toMatch(/agent web-2 is offline \(waited 1 s\)/);
  });

  it('audits failed authentication, at most once a minute per address', async () => {
    for (let i = 0; i < 3; i++) expect((await fleet.api('GET', '/api/v1/agents', undefined, 'hru_not-a-real-token')).status).toBe(401);
    // Each failure is decided before its 401 goes out, but its record is written after. An
    // execution audited afterwards is written behind them (one write queue), so once it is
    // finished every record the three failures caused is in the store.
    const after = await fleet.exec([fleet.agents.get('web-1')!.agentId!], { argv: ['true'] });
    expect(after.state).toBe('succeeded');
    const out = join(fleet.dir, 'b.jsonl');
    await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', out]);
    const text = await (await import('node:fs/promises')).readFile(out, 'utf8');
    const failed = text.split('\n').filter((l) => l.includes('"t":"record"')).map((l) => Buffer.from((JSON.parse(l) as { payload: string }).payload, 'base64').toString()).filter((p) => p.includes('"type":"login.failed"'));
    expect(failed).toHaveLength(1);
  });
});
