/**
 * node:util parseArgs errors, said the way the rest of the CLI speaks: one line naming the
 * option and what to do ("unknown option --data-dirr; did you mean --data-dir?") instead of
 * Node's text about positionals after `--`. Pure; table-tested in test/unit/cli-parse-error.test.ts.
 */
import { suggest } from './suggest.js';

export interface OptionShape {
  readonly type: 'string' | 'boolean';
  readonly placeholder?: string;
}

export function describeParseError(e: { readonly code?: string; readonly message: string }, options: Readonly<Record<string, OptionShape>>): string {
  const quoted = /'(-{1,2}[^' ]+)/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      if (!quoted) break;
      const name = quoted.replace(/^-+/, '').split('=')[0] ?? '';
      const near = suggest(name, Object.keys(options)).map((n) => `--${n}`);
      return `unknown option ${quoted}${near.length ? `; did you mean ${near.join(' or ')}?` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      if (!quoted) break;
      const spec = options[quoted.replace(/^-+/, '')];
      if (/argument missing/.test(e.message)) return `${quoted} needs a value: ${quoted} ${spec?.placeholder ?? 'VALUE'}`;
      if (/does not take an argument/.test(e.message)) return `${quoted} is a switch and takes no value: write ${quoted} alone`;
      break;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const arg = /'([^']*)'/.exec(e.message)?.[1];
      return `unexpected argument${arg === undefined ? '' : ` "${arg}"`}`;
    }
    default:
      break;
  }
  return e.message.replace(/^TypeError \[[A-Z_]+\]: /, '').split('. ')[0] ?? e.message;
}
