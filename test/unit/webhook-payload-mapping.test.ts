import { describe, expect, it } from 'vitest';
import { checkMapping, mapPayload, type MappableOption, type PayloadMapping } from '../../coordinator/webhooks/payload-mapping.js';

const OPTIONS: MappableOption[] = [
  { name: 'alert', type: 'string', required: true, default: undefined },
  { name: 'count', type: 'integer', required: false, default: '2' },
  { name: 'verbose', type: 'boolean', required: false, default: undefined },
  { name: 'password', type: 'secret', required: false, default: undefined },
];

const ALERT = JSON.parse('{"alerts":[{"labels":{"alertname":"DiskFull","host":"web-1","count":3,"deep":{"x":1},"list":[1]}}],"flag":true,"n":null}') as unknown;

function mapping(raw: unknown): PayloadMapping {
  const c = checkMapping(raw, OPTIONS);
  if (!c.ok) throw new Error(c.problems.join('; '));
  return c.mapping;
}

describe('webhook mapping check', () => {
  it.each([
    ['a path per option', { options: { alert: { path: '$.alerts[0].labels.alertname' }, count: { path: '$.alerts[0].labels.count' } } }],
    ['a fixed value', { options: { alert: { value: 'from-hook' } } }],
    ['a path with a default', { options: { alert: { path: '$.x', default: 'none' } }, target: { label: 'host', path: '$.alerts[0].labels.host' } }],
  ])('takes %s', (_name, raw) => {
    expect(checkMapping(raw, OPTIONS).ok).toBe(true);
  });

  it.each([
    ['not an object', [], /mapping must be an object, got a list/],
    ['an unknown field', { options: { alert: { value: 'a' } }, targets: {} }, /unknown field "targets"/],
    ['an undeclared option', { options: { alert: { value: 'a' }, colour: { value: 'red' } } }, /declares no option "colour" \(it declares: alert, count, verbose, password\)/],
    ['a secret option', { options: { alert: { value: 'a' }, password: { path: '$.p' } } }, /"password" is a secret/],
    ['a required option left unmapped', { options: { count: { value: '1' } } }, /required option "alert" is not mapped/],
    ['a bad path', { options: { alert: { path: 'alerts[0]' } } }, /must start with \$/],
    ['a path that is not a string', { options: { alert: { path: 3 } } }, /needs a path/],
    ['a value and a path', { options: { alert: { value: 'a', path: '$.a' } } }, /a fixed value takes no path/],
    ['a non-string value', { options: { alert: { value: 1 } } }, /value must be a string/],
    ['an unknown source field', { options: { alert: { path: '$.a', fallback: 'x' } } }, /unknown field "fallback"/],
    ['a bad target label', { options: { alert: { value: 'a' } }, target: { label: 'bad label', path: '$.h' } }, /target.label "bad label" is not a label key/],
    ['a bad target path', { options: { alert: { value: 'a' } }, target: { label: 'host', path: 'host' } }, /target.path "host" must start with \$/],
    ['a __proto__ option', JSON.parse('{"options":{"alert":{"value":"a"},"__proto__":{"value":"x"}}}') as unknown, /declares no option "__proto__"/],
  ])('refuses %s', (_name, raw, message) => {
    const c = checkMapping(raw, OPTIONS);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.problems.join('\n')).toMatch(message);
  });

  it('refuses a runbook whose required option is a secret', () => {
    const c = checkMapping({ options: {} }, [{ name: 'key', type: 'secret', required: true, default: undefined }]);
    expect(!c.ok && c.problems.join()).toMatch(/required option "key" is a secret/);
  });
});

describe('mapping a payload', () => {
  const m = mapping({
    options: { alert: { path: '$.alerts[0].labels.alertname' }, count: { path: '$.alerts[0].labels.count' }, verbose: { path: '$.flag' } },
    target: { label: 'host', path: '$.alerts[0].labels.host' },
  });

  it('turns scalars into option strings and the target into a label requirement', () => {
    expect(mapPayload(m, ALERT)).toEqual({ ok: true, options: { alert: 'DiskFull', count: '3', verbose: 'true' }, targets: 'host=web-1' });
  });

  it('uses the default when the payload lacks the field', () => {
    expect(mapPayload(mapping({ options: { alert: { path: '$.nope', default: 'unknown' } } }), ALERT)).toEqual({ ok: true, options: { alert: 'unknown' }, targets: undefined });
  });

  it.each([
    ['a missing field', { options: { alert: { path: '$.alerts[1].labels.alertname' } } }, ALERT, '$.alerts[1].labels.alertname', /has no \$\.alerts\[1\]\.labels\.alertname \(nothing at \$\.alerts\[1\]\), which option "alert"/],
    ['an object', { options: { alert: { path: '$.alerts[0].labels.deep' } } }, ALERT, '$.alerts[0].labels.deep', /is an object; option "alert" takes a string/],
    ['a list', { options: { alert: { path: '$.alerts[0].labels.list' } } }, ALERT, '$.alerts[0].labels.list', /is a list/],
    ['null', { options: { alert: { path: '$.n' } } }, ALERT, '$.n', /is null/],
    ['a payload that is not an object', { options: { alert: { path: '$.a' } } }, 'text', '$.a', /has no \$\.a/],
    ['prototype members', { options: { alert: { path: '$.constructor' } } }, {}, '$.constructor', /has no \$\.constructor/],
  ])('refuses %s, naming the field', (_name, raw, payload, field, message) => {
    const r = mapPayload(mapping(raw), payload);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.field).toBe(field);
      expect(r.message).toMatch(message);
    }
  });

  it.each([
    ['selector syntax', 'web-1,role!=db'],
    ['a shell expansion', '$(rm -rf /)'],
    ['an empty value', ''],
    ['a long value', 'w'.repeat(64)],
    ['a newline', 'web-1\nrole=db'],
  ])('refuses a target value with %s', (_name, host) => {
    const r = mapPayload(m, { alerts: [{ labels: { alertname: 'x', count: 1, host } }], flag: false });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(/not a label value/);
  });

  it('passes hostile option values through as data (the runbook validates them)', () => {
    const hostile = '$(rm -rf /); `id` && echo pwned';
    const r = mapPayload(mapping({ options: { alert: { path: '$.a' } } }), { a: hostile });
    expect(r).toEqual({ ok: true, options: { alert: hostile }, targets: undefined });
  });
});
