/** parseArgs errors become one line naming the option and what to do (real node:util errors). */
import { parseArgs } from 'node:util';
import { describe, expect, it } from 'vitest';
import { describeParseError, type OptionShape } from '../../cli/parse-error.js';

const OPTIONS: Record<string, OptionShape> = { 'data-dir': { type: 'string', placeholder: 'DIR' }, opt: { type: 'string', placeholder: 'NAME=VALUE' }, json: { type: 'boolean' } };

function errorOf(args: string[], allowPositionals = true): Error & { code?: string } {
  const parseOptions = Object.fromEntries(Object.entries(OPTIONS).map(([k, v]) => [k, { type: v.type }]));
  try {
    parseArgs({ args, options: parseOptions, strict: true, allowPositionals });
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error(`parseArgs accepted ${args.join(' ')}`);
}

describe('describeParseError', () => {
  it.each([
    { args: ['--data-dirr', 'x'], out: 'unknown option --data-dirr; did you mean --data-dir?' },
    { args: ['--frobnicate'], out: 'unknown option --frobnicate' },
    { args: ['--jsn'], out: 'unknown option --jsn; did you mean --json?' },
    { args: ['-z'], out: 'unknown option -z' },
    { args: ['--opt'], out: '--opt needs a value: --opt NAME=VALUE' },
    { args: ['--json=yes'], out: '--json is a switch and takes no value: write --json alone' },
  ])('$args → $out', ({ args, out }) => {
    const message = describeParseError(errorOf(args), OPTIONS);
    expect(message).toBe(out);
    expect(message).not.toMatch(/\n|positional|TypeError/);
  });

  it('names an unexpected argument', () => {
    expect(describeParseError(errorOf(['extra'], false), OPTIONS)).toBe('unexpected argument "extra"');
  });

  it('keeps only the first sentence of an error it does not know', () => {
    expect(describeParseError({ code: 'ERR_OTHER', message: 'TypeError [ERR_OTHER]: Something odd. Long explanation.' }, OPTIONS)).toBe('Something odd');
  });
});
