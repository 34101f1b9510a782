/** The install form's fields as the install-command API's body (pure): what the form sends, what the API is given. */
import { describe, expect, it } from 'vitest';
import { installBodyOf } from './hosts.js';

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
