/**
 * Inbound webhooks end to end: a real coordinator and agents, deliveries signed as a sender
 * would (HMAC-SHA256 with node:crypto, not Handrail's own helper), every refusal with its status
 * and its audit record, and the audit log still verifying afterwards.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../../coordinator/store/database.js';
import { STORE_FILE } from '../../coordinator/data-dir.js';
import { Fleet } from '../helpers/fleet.js';
import { ROOT, cli, waitFor } from '../helpers/processes.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'webhooks');
const PWNED = '/tmp/handrail-webhook-pwned';

interface Delivery {
  status: number;
  body: { executionId?: string; state?: string; error?: { kind: string; message: string; details?: { reason: string } } };
}

describe('inbound webhooks', () => {
  let fleet: Fleet;
  let hookId = '';
  let secret = '';
  let seq = 0;

  const sign = (key: string, ts: string, delivery: string, body: Buffer): string => `sha256=${createHmac('sha256', key).update(`v1:${ts}:${delivery}:`).update(body).digest('hex')}`;

  /** POSTs `payload` to a hook, signed with `key` unless headers say otherwise. */
  const deliver = async (payload: unknown, o: { key?: string; hook?: string; delivery?: string; ts?: number; raw?: Buffer; headers?: Record<string, string | null> } = {}): Promise<Delivery> => {
    const body = o.raw ?? Buffer.from(JSON.stringify(payload));
    const ts = String(o.ts ?? Math.floor(Date.now() / 1000));
    const delivery = o.delivery ?? `am-${++seq}-${randomBytes(4).toString('hex')}`;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-handrail-timestamp': ts, 'x-handrail-delivery': delivery, 'x-handrail-signature': sign(o.key ?? secret, ts, delivery, body) };
    for (const [k, v] of Object.entries(o.headers ?? {})) {
      if (v === null) delete headers[k];
      else headers[k] = v;
    }
    const res = await fetch(`${fleet.coordinator!.url}/hooks/${o.hook ?? hookId}`, { method: 'POST', headers, body });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Delivery['body'] };
  };

  const alert = (alertname: string, host: string, severity = 'critical'): unknown => ({
    version: '4',
    status: 'firing',
    receiver: 'handrail',
    commonLabels: { severity },
    alerts: [{ status: 'firing', labels: { alertname, host, instance: `${host}:9100` }, annotations: { summary: 'disk almost full' } }],
  });

  const auditRecords = async (): Promise<Array<{ type: string; code: string; actor: { id: string }; data: Record<string, unknown> }>> => {
    const db = await Database.open(join(fleet.dataDir, STORE_FILE), { readonly: true });
    try {
      const rows = await db.all<{ payload: Buffer }>('SELECT payload FROM audit_records ORDER BY seq');
      return rows.map((r) => JSON.parse(Buffer.from(r.payload).toString('utf8')) as { type: string; code: string; actor: { id: string }; data: Record<string, unknown> });
    } finally {
      await db.close();
    }
  };
  const refusalAudited = (reason: string): Promise<Record<string, unknown>> =>
    waitFor(async () => (await auditRecords()).find((r) => r.type === 'webhook.refused' && r.data['reason'] === reason)?.data, 20_000, `a webhook.refused record for ${reason}`);

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator(['--runbooks-dir', FIXTURES]);
    await fleet.ensureAdmin();
    expect((await fleet.admin(['user', 'add', 'alertmanager', '--group', 'hooks'])).code).toBe(0);
    expect((await fleet.admin(['user', 'add', 'bystander'])).code).toBe(0);
    await fleet.startAgent('web-1', { labels: 'role=web,host=web-1' });
    await fleet.startAgent('web-2', { labels: 'role=web,host=web-2' });
    await fleet.startAgent('db-1', { labels: 'role=db,host=db-1' });
    for (const n of ['web-1', 'web-2', 'db-1']) await fleet.waitOnline(n);
    const r = await fleet.api<{ webhook: { id: string }; secret: string; url: string }>('POST', '/api/v1/webhooks', {
      runbook: 'disk-diagnose',
      runAs: 'alertmanager',
      description: 'disk alerts from Alertmanager',
      mapping: {
        options: { alert: { path: '$.alerts[0].labels.alertname' }, severity: { path: '$.commonLabels.severity', default: 'warning' } },
        target: { label: 'host', path: '$.alerts[-1].labels.host' },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    hookId = r.body.webhook.id;
    secret = r.body.secret;
    expect(secret).toMatch(/^hrw_[A-Za-z0-9_-]{43}$/);
    expect(r.body.url).toBe(`/hooks/${hookId}`);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('starts the mapped runbook on the mapped target as the service user, passing hostile values only as data', async () => {
    const hostile = 'DiskFull $(touch /tmp/handrail-webhook-pwned) `touch /tmp/handrail-webhook-pwned`; rm -rf /';
    const d = await deliver(alert(hostile, 'web-2'));
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    expect(d.body.state).toBe('running');
    const r = await fleet.waitExecution(d.body.executionId!);
    expect(r.state).toBe('succeeded');
    expect(r.nodes.map((n) => n.agentName)).toEqual(['web-2']);
    expect(r.options).toEqual({ alert: hostile, severity: 'critical' });
    const out = (await fleet.output(r.id, r.steps[0]!.id)).split('\0');
    expect(out.slice(0, 3)).toEqual([hostile, 'critical', 'web-2']);
    expect(existsSync(PWNED)).toBe(false);
    const show = await fleet.api<{ requestedBy: string; reason: string | null }>('GET', `/api/v1/executions/${r.id}`);
    expect(show.body.requestedBy).toBe('alertmanager');
    expect(show.body.reason).toMatch(new RegExp(`^webhook ${hookId} delivery am-`));
    const recs = await auditRecords();
    const accepted = recs.find((x) => x.type === 'webhook.accepted' && x.data['executionId'] === r.id);
    expect(accepted?.code).toBe('HR7004');
    expect(accepted?.actor.id).toBe('alertmanager');
    expect(recs.find((x) => x.type === 'policy.decided' && x.data['executionId'] === r.id)?.data['rule']).toBe('webhook-test-policy/hooks-run-diagnostics-on-web');
  });

  it('refuses a replayed delivery, also when the two arrive together, and starts one run', async () => {
    const payload = alert('DiskFull', 'web-1');
    const ts = Math.floor(Date.now() / 1000);
    const [a, b] = await Promise.all([deliver(payload, { delivery: 'replay-1', ts }), deliver(payload, { delivery: 'replay-1', ts })]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    const again = await deliver(payload, { delivery: 'replay-1', ts });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ kind: 'already_exists', details: { reason: 'replay' } });
    const hist = await fleet.api<{ executions: Array<{ reason: string | null }> }>('GET', '/api/v1/executions?limit=100');
    expect(hist.body.executions.filter((e) => e.reason === `webhook ${hookId} delivery replay-1`)).toHaveLength(1);
    expect(await refusalAudited('replay')).toMatchObject({ hookId, deliveryId: 'replay-1' });
  });

  it.each<[string, Parameters<typeof deliver>[1], number, string]>([
    ['a bad signature', { key: 'hrw_not-the-secret-not-the-secret-xx' }, 401, 'bad_signature'],
    ['no signature', { headers: { 'x-handrail-signature': null } }, 401, 'missing_headers'],
    ['a malformed signature', { headers: { 'x-handrail-signature': 'sha1=abc' } }, 401, 'malformed_headers'],
    ['a stale timestamp', { ts: Math.floor(Date.now() / 1000) - 600 }, 401, 'stale_timestamp'],
    ['an unknown hook', { hook: 'whk-doesnotexist' }, 404, 'unknown_hook'],
  ])('refuses %s', async (_name, o, status, reason) => {
    const d = await deliver(alert('DiskFull', 'web-1'), o);
    expect(d.status, JSON.stringify(d.body)).toBe(status);
    expect(d.body.error?.details?.reason).toBe(reason);
    const rec = await refusalAudited(reason);
    expect(rec['hookId']).toBe(reason === 'unknown_hook' ? null : hookId);
  });

  /**
   * node:http, not fetch, and no race with the server's close: the client writes nothing the
   * server leaves unread (an unread rest would turn the server's close into a reset, and a write
   * after it into EPIPE, either of which can beat the answer). `declared`: headers only, with a
   * Content-Length over the limit; otherwise exactly limit + 1 bytes, chunked, then silence.
   */
  const oversized = (declared: boolean): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest(`${fleet.coordinator!.url}/hooks/${hookId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(declared ? { 'content-length': String(300 * 1024) } : { 'transfer-encoding': 'chunked' }) },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (declared) req.flushHeaders();
      else for (const n of [65_536, 65_536, 65_536, 65_536, 1]) req.write(Buffer.alloc(n, 0x20));
    });

  it.each([
    ['by its declared length, unread', true],
    ['once past the limit as it streams in (chunked)', false],
  ])('refuses an oversized body %s', async (_name, declared) => {
    const r = await oversized(declared);
    expect(r.status, r.text).toBe(413);
    expect((JSON.parse(r.text) as Delivery['body']).error).toMatchObject({ kind: 'resource_exhausted', message: 'request body is larger than the limit of 262144 bytes', details: { reason: 'too_large' } });
    await refusalAudited('too_large');
  });

  it('refuses a signed body that is not JSON', async () => {
    const d = await deliver(undefined, { raw: Buffer.from('alertname=DiskFull') });
    expect(d.status).toBe(400);
    expect(d.body.error?.details?.reason).toBe('not_json');
  });

  it.each<[string, unknown, RegExp]>([
    ['a payload without the mapped field', { alerts: [] }, /the payload has no \$\.alerts\[0\]\.labels\.alertname \(nothing at \$\.alerts\[0\]\)/],
    ['an object where a value belongs', { alerts: [{ labels: { alertname: { nested: true }, host: 'web-1' } }] }, /\$\.alerts\[0\]\.labels\.alertname is an object/],
    ['a target value with selector syntax', { alerts: [{ labels: { alertname: 'x', host: 'web-1,role!=web' } }] }, /\$\.alerts\[-1\]\.labels\.host is "web-1,role!=web", not a label value/],
    ['a target hidden behind __proto__', JSON.parse('{"alerts":[{"labels":{"alertname":"x","__proto__":{"host":"web-1"}}}]}') as unknown, /the payload has no \$\.alerts\[-1\]\.labels\.host/],
  ])('refuses %s, naming the field', async (_name, payload, message) => {
    const d = await deliver(payload);
    expect(d.status, JSON.stringify(d.body)).toBe(400);
    expect(d.body.error?.details?.reason).toBe('unmapped');
    expect(d.body.error?.message).toMatch(message);
    await refusalAudited('unmapped');
  });

  it('refuses values the runbook does not allow, and targets outside policy', async () => {
    const bad = await deliver(alert('DiskFull', 'web-1', 'catastrophic'));
    expect(bad.status).toBe(400);
    expect(bad.body.error?.details?.reason).toBe('invalid');
    expect(bad.body.error?.message).toMatch(/severity/);
    // db-1 is not in the runbook's selector (role=web): narrowing finds no agent
    const outside = await deliver(alert('DiskFull', 'db-1'));
    expect(outside.status).toBe(400);
    expect(outside.body.error?.details?.reason).toBe('invalid');
  });

  it('runs as a user policy does not allow: 403, audited', async () => {
    const r = await fleet.api<{ webhook: { id: string }; secret: string }>('POST', '/api/v1/webhooks', { runbook: 'disk-diagnose', runAs: 'bystander', mapping: { options: { alert: { value: 'fixed' } } } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const d = await deliver({}, { hook: r.body.webhook.id, key: r.body.secret });
    expect(d.status, JSON.stringify(d.body)).toBe(403);
    expect(d.body.error?.details?.reason).toBe('denied');
    expect(await refusalAudited('denied')).toMatchObject({ hookId: r.body.webhook.id });
    expect((await fleet.api('DELETE', `/api/v1/webhooks/${r.body.webhook.id}`)).status).toBe(200);
    expect((await deliver({}, { hook: r.body.webhook.id, key: r.body.secret })).status).toBe(404);
  });

  it('accepts the previous secret after a rotation, and the new one', async () => {
    const rot = await fleet.api<{ secret: string; webhook: { previousSecretValidUntil: string } }>('POST', `/api/v1/webhooks/${hookId}/rotate-secret`);
    expect(rot.status).toBe(200);
    expect(rot.body.secret).not.toBe(secret);
    expect(Date.parse(rot.body.webhook.previousSecretValidUntil) - Date.now()).toBeGreaterThan(23 * 3600_000);
    const old = await deliver(alert('DiskFull', 'web-1'), { key: secret });
    expect(old.status, JSON.stringify(old.body)).toBe(202);
    const fresh = await deliver(alert('DiskFull', 'web-1'), { key: rot.body.secret });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(202);
    for (const id of [old.body.executionId!, fresh.body.executionId!]) expect((await fleet.waitExecution(id)).state).toBe('succeeded');
    const list = await fleet.api<{ webhooks: unknown[] }>('GET', '/api/v1/webhooks');
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(JSON.stringify(list.body)).not.toContain(rot.body.secret);
    secret = rot.body.secret;
  });

  it('leaves hooks to admins, and refuses a mapping that does not fit the runbook', async () => {
    const token = await fleet.user('hookuser', ['hooks']);
    expect((await fleet.api('GET', '/api/v1/webhooks', undefined, token)).status).toBe(403);
    expect((await fleet.api('POST', '/api/v1/webhooks', { runbook: 'disk-diagnose', runAs: 'alertmanager', mapping: { options: { alert: { value: 'x' } } } }, token)).status).toBe(403);
    for (const [mapping, message] of [
      [{ options: { severity: { value: 'warning' } } }, /required option "alert" is not mapped/],
      [{ options: { alert: { value: 'x' }, token: { path: '$.t' } } }, /"token" is a secret/],
      [{ options: { alert: { value: 'x' }, colour: { value: 'red' } } }, /declares no option "colour"/],
      [{ options: { alert: { path: 'alertname' } } }, /must start with \$/],
    ] as const) {
      const r = await fleet.api<{ error: { message: string } }>('POST', '/api/v1/webhooks', { runbook: 'disk-diagnose', runAs: 'alertmanager', mapping });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(message);
    }
    expect((await fleet.api('POST', '/api/v1/webhooks', { runbook: 'disk-diagnose', runAs: 'nobody', mapping: { options: { alert: { value: 'x' } } } })).status).toBe(400);
  });

  it('manages hooks from the CLI, printing the secret once', async () => {
    const env = { HANDRAIL_SERVER: fleet.coordinator!.url, HANDRAIL_TOKEN: await fleet.ensureAdmin() };
    const add = await cli(['webhook', 'add', '--runbook', 'disk-diagnose', '--run-as', 'alertmanager', '--map', 'alert=$.alerts[0].labels.alertname', '--set', 'severity=warning', '--target', 'host=$.alerts[0].labels.host'], env);
    expect(add.code, add.stderr).toBe(0);
    const cliSecret = add.stdout.trim();
    expect(cliSecret).toMatch(/^hrw_/);
    const id = /webhook (whk-[0-9a-z]+) defined/.exec(add.stderr)![1]!;
    const ls = await cli(['webhook', 'ls'], env);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(id);
    expect(ls.stdout + ls.stderr).not.toContain(cliSecret);
    const d = await deliver(alert('DiskFull', 'web-1'), { hook: id, key: cliSecret });
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    const rot = await cli(['webhook', 'rotate', id, '--revoke-previous'], env);
    expect(rot.code, rot.stderr).toBe(0);
    expect(rot.stdout.trim()).not.toBe(cliSecret);
    expect((await deliver(alert('DiskFull', 'web-1'), { hook: id, key: cliSecret })).status).toBe(401);
    expect((await deliver(alert('DiskFull', 'web-1'), { hook: id, key: rot.stdout.trim() })).status).toBe(202);
    expect((await cli(['webhook', 'rm', id], env)).code).toBe(0);
    const gone = await cli(['webhook', 'rm', id], env);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/no webhook/);
  });

  it('counts deliveries by outcome, keeps secrets out of logs and records, and the audit log verifies', async () => {
    const metrics = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
    expect(metrics).toMatch(/^handrail_webhook_deliveries_total\{outcome="accepted"\} [4-9]$/m);
    expect(metrics).toMatch(/^handrail_webhook_deliveries_total\{outcome="bad_signature"\} 2$/m);
    const logs = fleet.coordinator!.proc.stderrText;
    expect(logs).toMatch(/"event":"webhook.refused"/);
    expect(logs).not.toContain(secret);
    const recs = JSON.stringify(await auditRecords());
    expect(recs).not.toContain(secret);
    expect(recs).not.toMatch(/hrw_[A-Za-z0-9_-]{16}/);
    for (const code of ['HR7001', 'HR7002', 'HR7003', 'HR7004', 'HR7005']) expect(recs).toContain(`"code":"${code}"`);
    const v = await cli(['audit', 'verify', '--data-dir', fleet.dataDir, '--certs-dir', fleet.certsDir]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
