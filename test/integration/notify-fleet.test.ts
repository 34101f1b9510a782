/**
 * Notifications end to end: a real coordinator and agent, subscriptions made with the CLI
 * through the API, and a receiver that holds its requests open until the test lets them go.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { cli, ROOT, waitFor } from '../helpers/processes.js';
import { verifyWebhook, WEBHOOK_HEADERS } from '../../core/webhook-signature.js';

interface Held {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly res: ServerResponse;
}

describe('notifications from a running coordinator', () => {
  let fleet: Fleet;
  let server: Server;
  let url = '';
  const received: Held[] = [];
  let hold = true;
  let secret = '';
  let subscriptionId = '';
  const as = (token: string): string[] => ['--server', fleet.coordinator?.url ?? '', '--token', token];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), res });
        if (!hold) res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/handrail`;
    fleet = await Fleet.create();
    const runbooks = join(fleet.dir, 'runbooks');
    await mkdir(runbooks);
    for (const f of ['policy.yaml', 'runbooks.yaml']) await copyFile(join(ROOT, 'test', 'fixtures', 'engine', f), join(runbooks, f));
    await writeFile(
      join(runbooks, 'gated.yaml'),
      `apiVersion: handrail/v1
kind: Runbook
metadata: { id: gated-step, title: Pauses at an approval step, owner: team-web, tags: [web, test] }
spec:
  targets: { selector: role=web }
  steps:
    - { name: look, sleep: 10ms }
    - name: a lead agrees
      approval: { required: 1, from: [group:web-leads] }
    - { name: act, sleep: 10ms }
`,
    );
    await fleet.startCoordinator(['--runbooks-dir', runbooks, '--public-url', 'https://handrail.example.com/', '--notify-timeout', '60s']);
    const web = await fleet.token(['--labels', 'role=web']);
    await fleet.startAgent('web-1', { token: web });
    await fleet.waitOnline('web-1');
  });
  afterAll(async () => {
    server?.closeAllConnections();
    server?.close();
    await fleet?.close();
  });

  it('an admin subscribes with the CLI; the secret is printed once and nowhere else', async () => {
    const admin = await fleet.ensureAdmin();
    const r = await cli(['notify', 'add', url, '--description', 'ops chat', ...as(admin)]);
    expect(r.code, r.stderr).toBe(0);
    secret = r.stdout.trim();
    expect(secret).toMatch(/^hrn_[A-Za-z0-9_-]{43}$/);
    subscriptionId = /subscription (ntf-[0-9a-z]+)/.exec(r.stderr)?.[1] ?? '';
    expect(r.stderr).toContain('execution.waiting_approval, execution.finished for all');
    const ls = await cli(['notify', 'ls', '--json', ...as(admin)]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout)).toMatchObject({ subscriptions: [{ id: subscriptionId, url, scope: 'all', enabled: true, description: 'ops chat' }] });
    expect(ls.stdout).not.toContain(secret);
  });

  it('refuses non-admins and bad input with a one-line reason', async () => {
    const support = await fleet.user('sam', ['support']);
    const denied = await cli(['notify', 'ls', ...as(support)]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^handrail notify ls: notification subscriptions are an admin action/);
    const admin = await fleet.ensureAdmin();
    const bad = await cli(['notify', 'add', 'ftp://example.com/x', ...as(admin)]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('must be http:// or https://');
    const both = await fleet.api('POST', '/api/v1/notifications', { url, runbook: 'guarded', team: 'team-web' });
    expect(both.status).toBe(400);
    const typo = await cli(['notify', 'add', url, '--runbook', 'guardd', ...as(admin)]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('no runbook "guardd" is loaded (did you mean "guarded"?)');
    const team = await cli(['notify', 'add', url, '--team', 'team-wbe', ...as(admin)]);
    expect(team.stderr).toContain('no loaded runbook is owned by team "team-wbe" (did you mean "team-web"?)');
    const unknown = await fleet.api<{ error: { message: string } }>('POST', '/api/v1/notifications', { url, secret: 'mine' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('unknown field');
  });

  it('a receiver that never answers does not hold up executions', async () => {
    const waiting = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'guarded' });
    expect(waiting.status, JSON.stringify(waiting.body)).toBe(201);
    await waitFor(() => received.length >= 1, 30_000, 'the waiting_approval notification');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'echo-options', options: { message: `run ${i}`, password: 's3cr3t-pass' } });
      expect(started.status, JSON.stringify(started.body)).toBe(201);
      expect((await fleet.waitExecution(started.body.executionId)).state).toBe('succeeded');
      ids.push(started.body.executionId);
    }
    // Every execution finished while the receiver held its requests: at most two at a time.
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received.length).toBeLessThanOrEqual(2);
    expect(received.every((r) => !r.res.writableEnded)).toBe(true);

    hold = false;
    for (const r of received) r.res.writeHead(204).end();
    const admin = await fleet.ensureAdmin();
    const deliveries = await waitFor(async () => {
      const d = await cli(['notify', 'deliveries', subscriptionId, '--json', ...as(admin)]);
      const list = (JSON.parse(d.stdout) as { deliveries: Array<{ state: string; executionId: string; event: string; attempts: number }> }).deliveries;
      return list.length === 4 && list.every((x) => x.state === 'delivered') ? list : undefined;
    }, 30_000, 'four deliveries delivered');
    expect(deliveries.map((d) => `${d.event} ${d.executionId}`).sort()).toEqual([`execution.waiting_approval ${waiting.body.executionId}`, ...ids.map((id) => `execution.finished ${id}`)].sort());

    const bodies = new Map<string, { event: string; url: string; execution: { id: string; state: string; options: Record<string, string> } }>();
    for (const r of received) {
      const ok = verifyWebhook({
        secret,
        timestamp: r.headers[WEBHOOK_HEADERS.timestamp] as string,
        deliveryId: r.headers[WEBHOOK_HEADERS.delivery] as string,
        body: r.body,
        signature: r.headers[WEBHOOK_HEADERS.signature] as string,
        nowMs: Date.now(),
      });
      expect(ok).toEqual({ ok: true });
      expect(r.body).not.toContain('s3cr3t-pass');
      const b = JSON.parse(r.body) as { event: string; url: string; execution: { id: string; state: string; options: Record<string, string> } };
      bodies.set(`${b.event} ${b.execution.id}`, b);
    }
    expect(bodies.get(`execution.waiting_approval ${waiting.body.executionId}`)).toMatchObject({ url: `https://handrail.example.com/executions/${waiting.body.executionId}`, execution: { state: 'awaiting_approval' } });
    expect(bodies.get(`execution.finished ${ids[0] ?? ''}`)).toMatchObject({ execution: { state: 'succeeded', options: { message: 'run 0', password: '********' } } });

    const metrics = await (await fetch(`${fleet.coordinator?.url ?? ''}/metrics`)).text();
    expect(metrics).toMatch(/^handrail_notification_deliveries_total\{outcome="delivered"\} 4$/m);
  });

  it('announces an approval step reached, with its own scope: the team\'s subscription, not the runbook\'s', async () => {
    const admin = await fleet.ensureAdmin();
    const team = await cli(['notify', 'add', url, '--team', 'team-web', '--event', 'execution.waiting_approval', '--event', 'execution.started', '--json', ...as(admin)]);
    expect(team.code, team.stderr).toBe(0);
    const teamId = (JSON.parse(team.stdout) as { subscription: { id: string } }).subscription.id;
    const other = await cli(['notify', 'add', url, '--runbook', 'echo-options', '--event', 'execution.waiting_approval', '--json', ...as(admin)]);
    expect(other.code, other.stderr).toBe(0);
    const otherId = (JSON.parse(other.stdout) as { subscription: { id: string } }).subscription.id;
    const lee = await fleet.user('lee', ['web-leads']);
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'gated-step' });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const id = started.body.executionId;
    const events = async (sub: string): Promise<string[]> => {
      const d = await cli(['notify', 'deliveries', sub, '--json', ...as(admin)]);
      return (JSON.parse(d.stdout) as { deliveries: Array<{ event: string; executionId: string; state: string }> }).deliveries.filter((x) => x.executionId === id && x.state === 'delivered').map((x) => x.event).sort();
    };
    await waitFor(async () => (await events(teamId)).length === 2, 30_000, 'started and waiting_approval delivered');
    expect(await events(teamId)).toEqual(['execution.started', 'execution.waiting_approval']);
    expect(await events(otherId)).toEqual([]);
    const gate = received.find((r) => r.headers[WEBHOOK_HEADERS.event] === 'execution.waiting_approval' && r.body.includes(id));
    expect(JSON.parse(gate?.body ?? '{}')).toMatchObject({ execution: { id, state: 'awaiting_approval', runbook: { id: 'gated-step', owner: 'team-web' } } });
    expect((await fleet.api('POST', `/api/v1/executions/${id}/approve`, { comment: 'go' }, lee)).status).toBe(200);
    expect((await fleet.waitExecution(id)).state).toBe('succeeded');
  });

  it('rotates and removes with the CLI; the coordinator never logged a secret', async () => {
    const admin = await fleet.ensureAdmin();
    const rotated = await cli(['notify', 'rotate', subscriptionId, ...as(admin)]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const next = rotated.stdout.trim();
    expect(next).toMatch(/^hrn_/);
    expect(next).not.toBe(secret);
    const off = await cli(['notify', 'disable', subscriptionId, ...as(admin)]);
    expect([off.code, off.stdout]).toEqual([0, `subscription ${subscriptionId} disabled\n`]);
    const ls = await cli(['notify', 'ls', '--json', ...as(admin)]);
    expect((JSON.parse(ls.stdout) as { subscriptions: Array<{ id: string; enabled: boolean }> }).subscriptions.find((x) => x.id === subscriptionId)?.enabled).toBe(false);
    const on = await cli(['notify', 'enable', subscriptionId, ...as(admin)]);
    expect([on.code, on.stdout]).toEqual([0, `subscription ${subscriptionId} enabled\n`]);
    const rm = await cli(['notify', 'rm', subscriptionId, ...as(admin)]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe(`subscription ${subscriptionId} removed\n`);
    const again = await cli(['notify', 'rm', subscriptionId, ...as(admin)]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`no notification subscription ${subscriptionId}`);
    const log = fleet.coordinator?.proc.stderrText ?? '';
    expect(log).toContain('"event":"notification.secret_rotated"');
    for (const s of [secret, next]) expect(log).not.toContain(s);
  });
});
