/** The admin pages' form fields as the API's bodies (pure): what a form sends, what the API is given. */
import { describe, expect, it } from 'vitest';
import { installBodyOf } from '../../web/pages/hosts/hosts.js';
import { subscriptionBodyOf } from '../../web/pages/admin/notifications.js';
import { hookBodyOf } from '../../web/pages/admin/webhooks.js';

describe('install form → install-command body', () => {
  it.each<[string, { labels: string; ttl: string; namePattern: string; uses: string }, unknown]>([
    ['all given', { labels: 'role=web, zone=a', ttl: ' 2h ', namePattern: 'web-*', uses: '3' }, { body: { labels: { role: 'web', zone: 'a' }, ttl: '2h', namePattern: 'web-*', uses: 3 } }],
    ['empty fields are defaults', { labels: ' ', ttl: '', namePattern: '', uses: '' }, { body: {} }],
    ['a trailing comma', { labels: 'role=web,', ttl: '1h', namePattern: '', uses: '1' }, { body: { labels: { role: 'web' }, ttl: '1h', uses: 1 } }],
    ['a label without =', { labels: 'role', ttl: '1h', namePattern: '', uses: '1' }, { error: 'Labels: label "role" must look like key=value' }],
    ['a bad label value', { labels: 'role=a b', ttl: '1h', namePattern: '', uses: '1' }, { error: expect.stringContaining('Labels: label role="a b" has an invalid value') as unknown }],
    ['uses not a number', { labels: '', ttl: '1h', namePattern: '', uses: '1e3' }, { error: 'Hosts: must be a whole number from 1 to 100000' }],
  ])('%s', (_what, fields, expected) => {
    expect(installBodyOf(fields)).toEqual(expected);
  });
});

describe('subscription form → notification body', () => {
  it.each<[string, Parameters<typeof subscriptionBodyOf>[0], Record<string, unknown>]>([
    ['every execution, switched on', { url: ' https://h.example/x ', runbook: '', team: '', events: ['execution.finished'], enabled: true, description: '' }, { url: 'https://h.example/x', events: ['execution.finished'], enabled: true }],
    ['a team, switched off, described', { url: 'https://h.example/x', runbook: '', team: 'team-a', events: [], enabled: false, description: ' pager ' }, { url: 'https://h.example/x', team: 'team-a', enabled: false, description: 'pager' }],
    ['both scopes are passed on (the API refuses them)', { url: 'u', runbook: 'r', team: 't', events: [], enabled: true, description: '' }, { url: 'u', runbook: 'r', team: 't', enabled: true }],
  ])('%s', (_what, fields, expected) => {
    expect(subscriptionBodyOf(fields)).toEqual(expected);
  });
});

describe('webhook form → webhook body', () => {
  it.each<[string, Parameters<typeof hookBodyOf>[0], unknown]>([
    ['a mapping', { runbook: 'diag', runAs: ' svc ', mapping: '{"options":{"host":{"path":"$.h"}}}', description: '' }, { body: { runbook: 'diag', runAs: 'svc', mapping: { options: { host: { path: '$.h' } } } } }],
    ['a description', { runbook: 'diag', runAs: 'svc', mapping: '{}', description: ' alerts ' }, { body: { runbook: 'diag', runAs: 'svc', mapping: {}, description: 'alerts' } }],
    ['not JSON', { runbook: 'diag', runAs: 'svc', mapping: '{options:', description: '' }, { error: expect.stringMatching(/^Mapping: not JSON \(/) as unknown }],
  ])('%s', (_what, fields, expected) => {
    expect(hookBodyOf(fields)).toEqual(expected);
  });
});
