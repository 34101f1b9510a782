/** The log format decision and the logger's redaction, on a captured stream. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chooseLogFormat, createLogger } from '../../cli/logger.js';

describe('chooseLogFormat', () => {
  it.each([
    { format: 'auto', tty: true, out: 'pretty' },
    { format: 'auto', tty: false, out: 'json' },
    { format: 'json', tty: true, out: 'json' },
    { format: 'pretty', tty: false, out: 'pretty' },
  ] as const)('$format on a tty=$tty → $out', ({ format, tty, out }) => {
    expect(chooseLogFormat(format, tty)).toBe(out);
  });
});

describe('createLogger', () => {
  it('redacts secrets by key at any depth it knows and refuses an unknown level or format', () => {
    let text = '';
    const sink = new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) });
    const log = createLogger('info', 't', { destination: sink });
    log.info({ token: 'hru_secret1', req: { headers: { authorization: 'Bearer hru_secret2' } }, user: { password: 'pw-secret3' } }, 'hello');
    expect(text).toContain('"msg":"hello"');
    expect(text).not.toMatch(/secret[123]/);
    expect(() => createLogger('loud', 't')).toThrow(/log level "loud"/);
    expect(() => createLogger('info', 't', { format: 'xml' as 'json' })).toThrow(/log format "xml"/);
  });
});
