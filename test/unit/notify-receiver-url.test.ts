import { describe, expect, it } from 'vitest';
import { checkReceiverUrl, MAX_URL_LENGTH, receiverTarget } from '../../coordinator/notify/receiver-url.js';
import { executionUrl } from '../../coordinator/notify/payload.js';

describe('receiver URLs', () => {
  it.each([
    ['https://hooks.example.com/handrail', 'https://hooks.example.com/handrail'],
    ['http://127.0.0.1:9000/x?team=web', 'http://127.0.0.1:9000/x?team=web'],
    ['HTTPS://Hooks.Example.COM', 'https://hooks.example.com/'],
    ['http://[::1]:8080/h', 'http://[::1]:8080/h'],
  ])('takes %s', (input, expected) => {
    expect(checkReceiverUrl(input)).toBe(expected);
  });

  it.each([
    ['hooks.example.com/x', 'is not a URL'],
    ['ftp://hooks.example.com/x', 'must be http:// or https://, not "ftp:"'],
    ['file:///etc/passwd', 'must be http:// or https://'],
    ['javascript:alert(1)', 'must be http:// or https://'],
    ['https://user:pass@hooks.example.com/x', 'must not carry a user name or password'],
    ['https://token@hooks.example.com/x', 'must not carry a user name or password'],
    ['https://hooks.example.com/x#frag', 'must not have a #fragment'],
    [`https://hooks.example.com/${'a'.repeat(MAX_URL_LENGTH)}`, `longer than ${MAX_URL_LENGTH} characters`],
  ])('refuses %s', (input, message) => {
    expect(() => checkReceiverUrl(input)).toThrow(message);
  });

  it('names a receiver by its origin only: paths and queries may be credentials', () => {
    expect(receiverTarget('https://chat.example.com/services/T0/B0/s3cr3t?token=x')).toBe('https://chat.example.com');
    expect(receiverTarget('http://127.0.0.1:9000/x')).toBe('http://127.0.0.1:9000');
    expect(receiverTarget('not a url')).toBe('invalid-url');
  });

  it('links to the portal execution page under the public URL', () => {
    expect(executionUrl('https://handrail.example.com/', 'exe-1')).toBe('https://handrail.example.com/executions/exe-1');
    expect(executionUrl('https://example.com/handrail', 'exe-1')).toBe('https://example.com/handrail/executions/exe-1');
  });
});
