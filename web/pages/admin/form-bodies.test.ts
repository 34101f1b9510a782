/** The admin pages' form fields as the API's bodies (pure): what a form sends, what the API is given. */
import { describe, expect, it } from 'vitest';
import { subscriptionBodyOf } from './notifications.js';
import { hookBodyOf } from './webhooks.js';

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
