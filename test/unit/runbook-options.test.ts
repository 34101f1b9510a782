import { describe, expect, it } from 'vitest';
import { checkOptionValue, maskedOptions, resolveOptions } from '../../coordinator/runbooks/options.js';
import { validateRunbook } from '../../coordinator/runbooks/validate-runbook.js';
import type { OptionDef } from '../../coordinator/runbooks/model.js';
import { optionEnvName, parseTemplate, render, type TemplatePart } from '../../coordinator/runbooks/template.js';

const opt = (o: Partial<OptionDef> & { name: string; type: OptionDef['type'] }): OptionDef => ({
  required: false, default: undefined, pattern: undefined, values: undefined, min: undefined, max: undefined, label: undefined, description: undefined, ...o,
});

describe('option values', () => {
  it.each<[OptionDef, string, string | undefined]>([
    [opt({ name: 'n', type: 'integer', min: 1, max: 5 }), '3', undefined],
    [opt({ name: 'n', type: 'integer', min: 1, max: 5 }), '0', '0 is below the minimum 1'],
    [opt({ name: 'n', type: 'integer', min: 1, max: 5 }), '6', '6 is above the maximum 5'],
    [opt({ name: 'n', type: 'integer' }), '3.5', '"3.5" is not a whole number'],
    [opt({ name: 'n', type: 'integer' }), '1e3', '"1e3" is not a whole number'],
    [opt({ name: 'b', type: 'boolean' }), 'true', undefined],
    [opt({ name: 'b', type: 'boolean' }), 'yes', '"yes" is not true or false'],
    [opt({ name: 'e', type: 'enum', values: ['a', 'b'] }), 'b', undefined],
    [opt({ name: 'e', type: 'enum', values: ['a', 'b'] }), 'c', '"c" is not one of a, b'],
    [opt({ name: 's', type: 'string', pattern: '^[a-z]+$' }), 'abc', undefined],
    [opt({ name: 's', type: 'string', pattern: '^[a-z]+$' }), 'ab1', '"ab1" does not match the pattern ^[a-z]+$'],
    [opt({ name: 's', type: 'string' }), 'x'.repeat(4097), 'is 4097 characters long; at most 4096 are allowed'],
    [opt({ name: 's', type: 'string', max: 100_000 }), 'x'.repeat(100_000), undefined],
    [opt({ name: 's', type: 'string' }), 'a\u0000b', 'contains a NUL byte'],
    [opt({ name: 'p', type: 'secret', pattern: '^.{8,}$' }), 'short', 'the value does not match the pattern ^.{8,}$'],
  ])('%# %j with %j', (def, value, problem) => {
    expect(checkOptionValue(def, value)).toBe(problem);
  });

  it('gives every problem by option too, worded to stand beside its field', () => {
    const defs = [opt({ name: 'reason', type: 'string', required: true }), opt({ name: 'days', type: 'integer', max: 30 }), opt({ name: 'token', type: 'secret', pattern: '^x+$' })];
    const r = resolveOptions(defs, { days: '31', token: 'hunter2', bogus: 'y' });
    expect(r.problems).toEqual([
      { option: 'bogus', declared: false, message: 'is not an option of this runbook (this runbook takes: reason, days, token)' },
      { option: 'reason', declared: true, message: 'is required' },
      { option: 'days', declared: true, message: '31 is above the maximum 30' },
      { option: 'token', declared: true, message: 'the value does not match the pattern ^x+$' },
    ]);
    expect(r.issues).toHaveLength(4);
    expect(r.issues[2]).toBe('option "days" 31 is above the maximum 30');
    expect(resolveOptions(defs, { reason: 'ok' }).problems).toEqual([]);
  });

  it('never echoes a secret value in a problem', () => {
    const p = checkOptionValue(opt({ name: 'p', type: 'secret', pattern: '^x$' }), 'hunter2-secret');
    expect(p).not.toContain('hunter2');
  });

  it('applies defaults, flags unknown and missing options, masks secrets for display', () => {
    const defs = [opt({ name: 'reason', type: 'string', required: true }), opt({ name: 'days', type: 'integer', default: '7' }), opt({ name: 'token', type: 'secret' })];
    const ok = resolveOptions(defs, { reason: 'deploy', token: 'abc' });
    expect(ok.issues).toEqual([]);
    expect(ok.values).toEqual({ reason: 'deploy', days: '7', token: 'abc' });
    expect(ok.display).toEqual({ reason: 'deploy', days: '7', token: '********' });
    expect(ok.secretNames).toEqual(['token']);
    const bad = resolveOptions(defs, { extra: '1' });
    expect(bad.issues).toEqual(['unknown option "extra" (this runbook takes: reason, days, token)', 'option "reason" is required']);
  });

  it.each(['; rm -rf /', '$(id)', '`uname`', 'a\nb', '${option.x}', "' OR 1=1 --"])('keeps hostile value %j intact', (v) => {
    const r = resolveOptions([opt({ name: 'm', type: 'string' })], { m: v });
    expect(r.values['m']).toBe(v);
  });
});

const HOSTILE = ['; rm -rf /', '$(id)', '`id`', 'a\nb\r\nc', "'; DROP TABLE x; --", '${option.x}', '&& reboot', '| nc evil 1', '-rf', '--help', ' leading and trailing ', '\u202Eevil', '*', '~root', '$HOME', '\\'];

describe('resolving options', () => {
  const defs = [
    opt({ name: 'msg', type: 'string' }),
    opt({ name: 'days', type: 'integer', default: '7', min: 1, max: 365 }),
    opt({ name: 'dry_run', type: 'boolean', default: 'true' }),
    opt({ name: 'cache', type: 'enum', values: ['sessions', 'all'], default: 'all' }),
    opt({ name: 'token', type: 'secret' }),
  ];

  it('types the values it resolves and keeps their string form for steps', () => {
    const r = resolveOptions(defs, { msg: 'hi', days: '30', dry_run: 'false', token: 't0k' });
    expect(r.issues).toEqual([]);
    expect(r.values).toEqual({ msg: 'hi', days: '30', dry_run: 'false', cache: 'all', token: 't0k' });
    expect(r.typed).toEqual({ msg: 'hi', days: 30, dry_run: false, cache: 'all', token: 't0k' });
    expect(r.display).toEqual({ msg: 'hi', days: '30', dry_run: 'false', cache: 'all', token: '********' });
  });

  it('treats an empty integer, boolean or enum as not given (a form\'s untouched field): the default applies', () => {
    const r = resolveOptions(defs, { msg: '', days: '', dry_run: '', cache: '' });
    expect(r.issues).toEqual([]);
    expect(r.values).toEqual({ msg: '', days: '7', dry_run: 'true', cache: 'all' });
  });

  it('takes the runbook itself as well as its option list', () => {
    const rb = validateRunbook({ apiVersion: 'handrail/v1', kind: 'Runbook', metadata: { id: 'x', title: 'X', owner: 'o' }, spec: { options: [{ name: 'n', type: 'integer', default: 2 }], targets: { selector: '*' }, steps: [{ name: 's', run: ['true'] }] } }).runbook;
    expect(rb).toBeDefined();
    expect(resolveOptions(rb!, {}).typed).toEqual({ n: 2 });
  });

  it.each<[Record<string, string>, string[]]>([
    [{ days: '0' }, ['option "days" 0 is below the minimum 1']],
    [{ days: '366' }, ['option "days" 366 is above the maximum 365']],
    [{ days: '7; rm -rf /' }, ['option "days" "7; rm -rf /" is not a whole number']],
    [{ days: '0x10' }, ['option "days" "0x10" is not a whole number']],
    [{ days: ' 7' }, ['option "days" " 7" is not a whole number']],
    [{ dry_run: 'yes' }, ['option "dry_run" "yes" is not true or false']],
    [{ cache: 'all; reboot' }, ['option "cache" "all; reboot" is not one of sessions, all']],
    [{ msg: 'x'.repeat(100_000) }, ['option "msg" is 100000 characters long; at most 4096 are allowed']],
    [{ msg: 'a\u0000b' }, ['option "msg" contains a NUL byte']],
    [{ cache: 'all\u0000' }, ['option "cache" contains a NUL byte']],
    [{ token: 'x'.repeat(5000) }, ['option "token" is 5000 characters long; at most 4096 are allowed']],
    [{ ['x'.repeat(200)]: '1' }, [`unknown option "${'x'.repeat(60)}…" (200 characters) (this runbook takes: msg, days, dry_run, cache, token)`]],
    [{ __proto__x: '1', constructor: '1' }, ['unknown option "__proto__x" (this runbook takes: msg, days, dry_run, cache, token)', 'unknown option "constructor" (this runbook takes: msg, days, dry_run, cache, token)']],
  ])('%# refuses %j', (provided, issues) => {
    expect(resolveOptions(defs, provided).issues).toEqual(issues);
  });

  it('refuses a key named __proto__ given as data (JSON) instead of ignoring it', () => {
    const provided = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    expect(resolveOptions(defs, provided).issues).toEqual(['unknown option "__proto__" (this runbook takes: msg, days, dry_run, cache, token)']);
  });

  it.each(HOSTILE)('keeps hostile value %j byte for byte', (v) => {
    const r = resolveOptions(defs, { msg: v });
    expect(r.issues).toEqual([]);
    expect(r.values['msg']).toBe(v);
  });

  it('never shows a secret in a problem or in the masked form', () => {
    const r = resolveOptions(defs, { token: 'hunter2\u0000' });
    expect(r.issues.join()).not.toContain('hunter2');
    expect(maskedOptions(defs, { msg: 'a', token: 'hunter2', days: 3 })).toEqual({ msg: 'a', token: '********', days: 3 });
  });
});

describe('templates', () => {
  const ctx = { options: { msg: '$(rm -rf /) ; `x`\nnext', n: '3' }, host: { id: 'agt-1', name: 'web-1', labels: { zone: 'a b' } }, executionId: 'exe-9' };
  const r = (t: string, encode?: (s: string) => string): string => {
    const p = parseTemplate(t);
    if ('error' in p) throw new Error(p.error);
    return render(p.parts as TemplatePart[], ctx, encode);
  };

  it.each([
    ['${option.msg}', '$(rm -rf /) ; `x`\nnext'],
    ['--count=${option.n}', '--count=3'],
    ['${host.name}/${host.id}/${host.labels.zone}/${execution.id}', 'web-1/agt-1/a b/exe-9'],
    ['$${option.msg}', '${option.msg}'],
    ['${host.labels.missing}', ''],
    ['plain', 'plain'],
  ])('%s renders as one element: %j', (t, out) => {
    expect(r(t)).toBe(out);
  });

  it('percent-encodes values substituted into URLs', () => {
    expect(r('https://lb.example/pools/web/${host.name}?why=${option.msg}', encodeURIComponent)).toBe('https://lb.example/pools/web/web-1?why=%24(rm%20-rf%20%2F)%20%3B%20%60x%60%0Anext');
  });

  it.each(['${option}', '${host.ip}', '${env.PATH}', '${ option.x.y }'])('rejects %s', (t) => {
    expect('error' in parseTemplate(t)).toBe(true);
  });

  it.each([
    ['reason', 'HANDRAIL_OPT_REASON'],
    ['dry_run', 'HANDRAIL_OPT_DRY_RUN'],
    ['max-age', 'HANDRAIL_OPT_MAX_AGE'],
  ])('option %s reaches steps as %s', (n, env) => {
    expect(optionEnvName(n)).toBe(env);
  });
});
