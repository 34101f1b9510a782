/**
 * The webhook service over a real store (SQLite file, secret box, signed audit log) with the
 * clock injected: secret rotation's 24 h grace, replays that race, refusals rate-limited in the
 * audit log with their count, delivery ids forgotten once no timestamp could pass again. The
 * engine is a recorder that honours `within` the way the engine does (one transaction).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir, STORE_FILE, type DataDir } from '../../coordinator/data-dir.js';
import { SecretBox } from '../../coordinator/pki/secret-box.js';
import { WebhookStore } from '../../coordinator/store/webhooks.js';
import { PREVIOUS_SECRET_GRACE_MS, WebhookAdmin } from '../../coordinator/webhooks/webhook-admin.js';
import { WebhookService, type InboundDelivery } from '../../coordinator/webhooks/webhook-service.js';
import { Counters } from '../../coordinator/metrics/counters.js';
import type { RunRequest } from '../../coordinator/engine/engine.js';
import { signWebhook } from '../../core/webhook-signature.js';
import { newId } from '../../core/ids.js';

const T0 = Date.UTC(2026, 11, 3, 9, 0, 0);
const ADMIN = { kind: 'cli', id: 'root' } as const;
const OPTIONS = [{ name: 'alert', type: 'string', required: true, default: undefined }];

describe('webhook service', () => {
  let t = T0;
  let data: DataDir;
  let store: WebhookStore;
  let admin: WebhookAdmin;
  let service: WebhookService;
  let counters: Counters;
  let started: RunRequest[];
  let beforeStart: () => Promise<void>;

  beforeEach(async () => {
    t = T0;
    const dir = await mkdtemp(join(tmpdir(), 'hr-hooks-'));
    data = await openDataDir(dir, () => t);
    await data.users.add('svc', ['hooks'], ADMIN, t);
    store = new WebhookStore(data.db, await SecretBox.open(join(dir, 'keys', 'secrets.key')));
    counters = new Counters();
    started = [];
    beforeStart = async () => undefined;
    const runbooks = (id: string): typeof OPTIONS | undefined => (id === 'diag' ? OPTIONS : undefined);
    admin = new WebhookAdmin({ store, audit: data.audit, runbooks, userExists: async (n) => (await data.users.get(n)) !== undefined, now: () => t });
    service = new WebhookService({
      store,
      audit: data.audit,
      runbooks,
      user: (n) => data.users.get(n),
      start: async (req) => {
        await beforeStart();
        const id = newId('exe');
        await data.db.batch((tx) => (req.within ? req.within(tx, id) : Promise.resolve()));
        started.push(req);
        return { executionId: id, state: 'running' };
      },
      counters,
      log: pino({ level: 'silent' }),
      now: () => t,
    });
  });
  afterEach(async () => {
    await data.close();
  });

  const define = (): ReturnType<WebhookAdmin['define']> => admin.define({ runbookId: 'diag', runAs: 'svc', mapping: { options: { alert: { path: '$.alert' } } }, description: null }, ADMIN);
  const delivery = (hookId: string, secret: string, o: { delivery?: string; ts?: number; body?: string } = {}): InboundDelivery => {
    const body = Buffer.from(o.body ?? '{"alert":"DiskFull"}');
    const ts = String(Math.floor((o.ts ?? t) / 1000));
    const id = o.delivery ?? newId('dlv');
    return { hookId, headers: { signature: signWebhook(secret, ts, id, body), timestamp: ts, delivery: id }, body, remote: '127.0.0.1', requestId: newId('req') };
  };
  const records = async (type: string): Promise<Array<Record<string, unknown>>> =>
    (await data.db.all<{ payload: Buffer }>('SELECT payload FROM audit_records ORDER BY seq'))
      .map((r) => JSON.parse(Buffer.from(r.payload).toString('utf8')) as { type: string; data: Record<string, unknown> })
      .filter((r) => r.type === type)
      .map((r) => r.data);

  it('accepts the previous secret for 24 h after a rotation, then only the new one', async () => {
    const { hook, secret: first } = await define();
    expect(await service.receive(delivery(hook.id, first))).toMatchObject({ ok: true });
    t += 60_000;
    const { secret: second, hook: rotated } = await admin.rotate(hook.id, ADMIN);
    expect(rotated.previousSecretValidUntil).toBe(new Date(t + PREVIOUS_SECRET_GRACE_MS).toISOString());
    expect(await service.receive(delivery(hook.id, first))).toMatchObject({ ok: true });
    expect(await service.receive(delivery(hook.id, second))).toMatchObject({ ok: true });
    t += PREVIOUS_SECRET_GRACE_MS - 1;
    expect(await service.receive(delivery(hook.id, first))).toMatchObject({ ok: true });
    t += 1;
    expect(await service.receive(delivery(hook.id, first))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(await service.receive(delivery(hook.id, second))).toMatchObject({ ok: true });
    expect((await admin.list())[0]?.previousSecretValidUntil).toBeNull();
    // a second rotation forgets the first secret at once
    const { secret: third } = await admin.rotate(hook.id, ADMIN);
    expect(await service.receive(delivery(hook.id, first))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(await service.receive(delivery(hook.id, second))).toMatchObject({ ok: true });
    expect(await service.receive(delivery(hook.id, third))).toMatchObject({ ok: true });
    expect(started).toHaveLength(7);
    // a leaked secret: refused at once
    const { secret: fourth } = await admin.rotate(hook.id, ADMIN, false);
    expect(await service.receive(delivery(hook.id, third))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(await service.receive(delivery(hook.id, fourth))).toMatchObject({ ok: true });
    expect((await records('webhook.secret_rotated')).at(-1)).toEqual({ hookId: hook.id, previousValidUntil: new Date(t).toISOString() });
  });

  it('starts one run when the same delivery arrives twice at once, both past the first look', async () => {
    const { hook, secret } = await define();
    let entered = 0;
    let release: () => void = () => undefined;
    const bothIn = new Promise<void>((r) => (release = r));
    beforeStart = async () => {
      if (++entered === 2) release();
      await bothIn;
    };
    const d = delivery(hook.id, secret, { delivery: 'same-1' });
    const results = await Promise.all([service.receive(d), service.receive(d)]);
    expect(entered).toBe(2);
    expect(results.map((r) => (r.ok ? 'ok' : r.reason)).sort()).toEqual(['ok', 'replay']);
    expect(started).toHaveLength(1);
    expect(await records('webhook.accepted')).toHaveLength(1);
    expect(await store.deliveryCount()).toBe(1);
  });

  it('audits refusals at most once a minute per hook and reason, with the count they stand for', async () => {
    const { hook } = await define();
    for (let i = 0; i < 3; i++) expect(await service.receive(delivery(hook.id, 'hrw_wrong-wrong-wrong-wrong'))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(await service.receive(delivery(hook.id, 'hrw_wrong', { ts: t - 3_600_000 }))).toMatchObject({ ok: false, reason: 'bad_signature' });
    await data.db.drain();
    expect((await records('webhook.refused')).map((r) => [r['reason'], r['count']])).toEqual([['bad_signature', 1]]);
    t += 60_000;
    expect(await service.receive(delivery(hook.id, 'hrw_wrong-wrong-wrong-wrong'))).toMatchObject({ ok: false, reason: 'bad_signature' });
    // unknown hooks share one key, whatever id the caller makes up
    for (const id of ['whk-a', 'whk-b', 'whk-c']) expect(await service.receive(delivery(id, 'x'))).toMatchObject({ ok: false, reason: 'unknown_hook' });
    await data.db.drain();
    expect((await records('webhook.refused')).map((r) => [r['hookId'], r['reason'], r['count']])).toEqual([
      [hook.id, 'bad_signature', 1],
      [hook.id, 'bad_signature', 4],
      [null, 'unknown_hook', 1],
    ]);
    expect(counters.get('webhook_deliveries_total', { outcome: 'bad_signature' })).toBe(5);
    expect(counters.get('webhook_deliveries_total', { outcome: 'unknown_hook' })).toBe(3);
  });

  it('forgets delivery ids once no timestamp could pass the window again (2 × 5 min)', async () => {
    const { hook, secret } = await define();
    expect(await service.receive(delivery(hook.id, secret, { delivery: 'old' }))).toMatchObject({ ok: true });
    t += 5 * 60_000;
    // still inside the window from the old delivery's timestamp: a replay
    expect(await service.receive(delivery(hook.id, secret, { delivery: 'old', ts: T0 }))).toMatchObject({ ok: false, reason: 'replay' });
    t = T0 + 10 * 60_000 + 1;
    expect(await service.receive(delivery(hook.id, secret, { delivery: 'new' }))).toMatchObject({ ok: true });
    expect(await store.deliveryCount()).toBe(1);
    // the forgotten id cannot come back: its timestamp is stale by now
    expect(await service.receive(delivery(hook.id, secret, { delivery: 'old', ts: T0 }))).toMatchObject({ ok: false, reason: 'stale_timestamp' });
  });

  it('keeps secrets sealed in the store, bound to their hook', async () => {
    const a = await define();
    const b = await define();
    await data.db.drain();
    const file = await readFile(join(data.path, STORE_FILE));
    const wal = await readFile(join(data.path, `${STORE_FILE}-wal`)).catch(() => Buffer.alloc(0));
    for (const bytes of [file, wal]) {
      expect(bytes.includes(Buffer.from(a.secret))).toBe(false);
      expect(bytes.includes(Buffer.from(a.secret.slice(4)))).toBe(false);
    }
    expect(JSON.stringify(await records('webhook.defined'))).not.toContain(a.secret);
    // a sealed blob copied onto another hook does not open there
    await data.db.write((tx) => tx.run('UPDATE webhooks SET secrets_sealed = (SELECT secrets_sealed FROM webhooks WHERE id = ?) WHERE id = ?', [a.hook.id, b.hook.id]));
    await expect(store.getWithSecrets(b.hook.id)).rejects.toThrow();
    expect((await store.getWithSecrets(a.hook.id))?.secrets.current).toBe(a.secret);
  });

  it('refuses a hook whose runbook went away or whose user was disabled', async () => {
    const { hook, secret } = await define();
    await data.users.setDisabled('svc', true, ADMIN, t);
    expect(await service.receive(delivery(hook.id, secret))).toMatchObject({ ok: false, reason: 'denied', message: expect.stringMatching(/runs as svc, who is disabled/) as unknown });
    await data.db.write((tx) => tx.run("UPDATE webhooks SET runbook_id = 'gone' WHERE id = ?", [hook.id]));
    expect(await service.receive(delivery(hook.id, secret))).toMatchObject({ ok: false, reason: 'hook_broken' });
    expect(started).toHaveLength(0);
  });
});
