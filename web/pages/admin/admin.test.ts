/**
 * The notification and webhook admin pages through `app.request()`: secrets shown once, CSRF,
 * 404 for non-admins.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotificationStore } from '../../../coordinator/store/notifications.js';
import { WebhookStore } from '../../../coordinator/store/webhooks.js';
import { SecretBox } from '../../../coordinator/pki/secret-box.js';
import { HOSTILE, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
afterEach(() => h.close());

describe('notification and webhook admin pages', () => {
  beforeEach(async () => {
    h = await teamsPortal();
  });

  it('are in the navigation of admins only, and 404 for everyone else', async () => {
    const root = await h.login('root', 'root-password');
    const nav = (await root.get('/runbooks')).html;
    expect(nav).toContain('href="/admin/notifications"');
    expect(nav).toContain('href="/admin/webhooks"');
    for (const [user, password] of [['alice', 'alice-password'], ['nina', 'nina-password']] as const) {
      const s = await h.login(user, password);
      expect((await s.get('/runbooks')).html).not.toContain('/admin/');
      for (const path of ['/admin/notifications', '/admin/webhooks']) expect((await s.get(path)).status).toBe(404);
      expect((await s.post('/admin/notifications', { url: 'https://x.example/h', 'event:execution.finished': 'on', enabled: 'true' })).status).toBe(404);
      expect((await s.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{}}' })).status).toBe(404);
    }
    expect(await h.notificationsList()).toEqual([]);
  });

  it('adds a subscription and shows its secret once; switches it off and on, rotates (a new secret, once), removes', async () => {
    const root = await h.login('root', 'root-password');
    const add = await root.post('/admin/notifications', { url: 'https://hooks.example/handrail', team: 'team-a', 'event:execution.finished': 'on', enabled: 'true', description: HOSTILE });
    expect(add.status).toBe(201);
    const html = await add.text();
    const secret = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(html)?.[1]?.trim() as string;
    expect(secret.length).toBeGreaterThan(20);
    expect(html).not.toContain('<script>alert(1)');
    const [sub] = await h.notificationsList();
    expect(sub).toMatchObject({ url: 'https://hooks.example/handrail', scope: { kind: 'team', team: 'team-a' }, events: ['execution.finished'], enabled: true });
    const id = sub?.id as string;
    const list = (await root.get('/admin/notifications')).html;
    expect(list).toContain(`data-subscription="${id}"`);
    expect(list).not.toContain(secret);
    expect((await root.post(`/admin/notifications/${id}/enabled`, { enabled: 'false' })).status).toBe(303);
    expect((await h.notificationsList())[0]?.enabled).toBe(false);
    expect((await root.post(`/admin/notifications/${id}/enabled`, { enabled: 'true' })).status).toBe(303);
    expect((await h.notificationsList())[0]?.enabled).toBe(true);
    const rotated = await (await root.post(`/admin/notifications/${id}/rotate`, {})).text();
    const next = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(rotated)?.[1]?.trim() as string;
    expect(next).toBeDefined();
    expect(next).not.toBe(secret);
    expect((await root.get('/admin/notifications')).html).not.toContain(next);
    expect((await root.post(`/admin/notifications/${id}/remove`, {})).status).toBe(303);
    expect((await root.get('/admin/notifications')).html).not.toContain(`data-subscription="${id}"`);
    // The API's audit records.
    for (const type of ['notification.subscription_created', 'notification.subscription_changed', 'notification.secret_rotated', 'notification.subscription_removed']) expect(await h.audited(type), type).not.toEqual([]);
  });

  it('says what is wrong with a subscription above the form, keeping the values', async () => {
    const root = await h.login('root', 'root-password');
    const both = await root.post('/admin/notifications', { url: 'https://hooks.example/h', runbook: 'portal-echo', team: 'team-a', 'event:execution.finished': 'on' });
    expect(both.status).toBe(400);
    expect((await both.text()).replace(/&quot;/g, '"')).toContain('give "runbook" or "team", not both');
    const bad = await root.post('/admin/notifications', { url: 'ftp://x', 'event:execution.finished': 'on' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('value="ftp://x"');
    expect(await h.notificationsList()).toEqual([]);
  });

  it('refuses every notification and webhook post without the CSRF token', async () => {
    const root = await h.login('root', 'root-password');
    expect((await root.post('/admin/notifications', { url: 'https://hooks.example/h', 'event:execution.finished': 'on' }, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{}}' }, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/notifications/ntf-abc/rotate', {}, { csrf: null })).status).toBe(403);
    expect((await root.post('/admin/webhooks/whk-abc/remove', {}, { csrf: null })).status).toBe(403);
    expect(await h.notificationsList()).toEqual([]);
  });

  it('defines a webhook and shows its secret once; rotates (a new secret, once) and removes', async () => {
    const root = await h.login('root', 'root-password');
    const bad = await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{not json' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('Mapping: not JSON');
    const made = await root.post('/admin/webhooks', { runbook: 'portal-echo', runAs: 'nina', mapping: '{"options":{"message":{"path":"$.alert","default":"x"}}}', description: 'alerts' });
    const html = await made.text();
    expect(made.status, html.replace(/<[^>]+>/g, ' ').slice(0, 3000)).toBe(201);
    const secret = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(html)?.[1]?.trim() as string;
    expect(secret).toMatch(/^hrw_/);
    const id = /data-webhook="(whk-[0-9a-z]+)"/.exec(html)?.[1] as string;
    const list = (await root.get('/admin/webhooks')).html;
    expect(list).toContain(`data-webhook="${id}"`);
    expect(list).not.toContain(secret);
    const rotated = await (await root.post(`/admin/webhooks/${id}/rotate`, { revokePrevious: 'on' })).text();
    const next = /<textarea id="new-secret"[^>]*>([^<]+)<\/textarea>/.exec(rotated)?.[1]?.trim() as string;
    expect(next).toMatch(/^hrw_/);
    expect(next).not.toBe(secret);
    expect(rotated).toContain('the old one is refused from now');
    expect((await root.get('/admin/webhooks')).html).not.toContain(next);
    expect((await root.post(`/admin/webhooks/${id}/remove`, {})).status).toBe(303);
    expect((await root.get('/admin/webhooks')).html).not.toContain(`data-webhook="${id}"`);
  });
});

describe('admin lists as committed', () => {
  beforeEach(async () => {
    h = await teamsPortal();
  });

  it('do not show a subscription or a webhook whose transaction is open, nor after it rolls back; show them once committed', async () => {
    const root = await h.login('root', 'root-password');
    const subscriptions = new NotificationStore(h.data.db);
    const hooks = new WebhookStore(h.data.db, await SecretBox.open(join(h.dir, 'data', 'keys', 'secrets.key')));
    const write = (n: number) =>
      h.openTransaction(async (tx) => {
        await subscriptions.insertSubscription(tx, { id: `ntf-open${n}`, url: 'https://hooks.example/h', scope: { kind: 'all' }, events: ['execution.finished'], enabled: true, description: null, createdBy: 'root', createdAt: h.clock, secretRotatedAt: null }, Buffer.from('sealed'));
        await hooks.insert(tx, { id: `whk-open${n}`, runbookId: 'portal-echo', runAs: 'nina', mapping: { options: {} }, description: null, createdBy: 'root', createdAt: h.clock }, 'whs_secret');
      });
    const shown = async (): Promise<{ subscription: boolean; webhook: boolean }> => ({
      subscription: (await root.get('/admin/notifications')).html.includes('data-subscription="ntf-open'),
      webhook: (await root.get('/admin/webhooks')).html.includes('data-webhook="whk-open'),
    });
    const open = await write(1);
    expect(await shown()).toEqual({ subscription: false, webhook: false });
    await open.end('rollback');
    expect(await shown()).toEqual({ subscription: false, webhook: false });
    const later = await write(2);
    expect(await shown()).toEqual({ subscription: false, webhook: false });
    await later.end('commit');
    expect(await shown()).toEqual({ subscription: true, webhook: true });
  });
});
