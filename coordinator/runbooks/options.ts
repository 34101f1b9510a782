/**
 * Option values: checked against the runbook's declared type, pattern, enum and bounds before
 * anything is dispatched. Pure. Values are strings on the wire; each check says what is wrong
 * and what is expected.
 */
import { DEFAULT_OPTION_MAX_LENGTH, type OptionDef, type Runbook } from './model.js';
import { ECHO_CHARS, echo } from '../../core/echo.js';

export const MASK = '********' as const;

/** Why `value` is not acceptable for `def`, or undefined when it is. */
export function checkOptionValue(def: OptionDef, value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains a NUL byte';
  switch (def.type) {
    case 'integer': {
      if (!/^-?\d{1,15}$/.test(value)) return `${shown(def, value)} is not a whole number`;
      const n = Number(value);
      if (def.min !== undefined && n < def.min) return `${n} is below the minimum ${def.min}`;
      if (def.max !== undefined && n > def.max) return `${n} is above the maximum ${def.max}`;
      return undefined;
    }
    case 'boolean':
      return value === 'true' || value === 'false' ? undefined : `${shown(def, value)} is not true or false`;
    case 'enum':
      return def.values?.includes(value) ? undefined : `${shown(def, value)} is not one of ${(def.values ?? []).join(', ')}`;
    case 'string':
    case 'secret': {
      const max = def.max ?? DEFAULT_OPTION_MAX_LENGTH;
      if (value.length > max) return `is ${value.length} characters long; at most ${max} are allowed`;
      if (def.min !== undefined && value.length < def.min) return `is shorter than ${def.min} characters`;
      if (def.pattern !== undefined && !new RegExp(def.pattern, 'u').test(value)) return `${def.type === 'secret' ? 'the value' : shown(def, value)} does not match the pattern ${def.pattern}`;
      return undefined;
    }
  }
}

/** The value as a message may repeat it: quoted and cut short (core/echo.ts), a secret never. */
function shown(def: OptionDef, value: string): string {
  if (def.type === 'secret') return `"${MASK}"`;
  return echo(value);
}

export type OptionValue = string | number | boolean;

export interface ResolvedOptions {
  /** Every option's value as a string (how it reaches a step), defaults applied. */
  readonly values: Record<string, string>;
  /** The same values typed: integers as numbers, booleans as booleans. */
  readonly typed: Record<string, OptionValue>;
  /** The values with secrets replaced by "********": what records and pages show. */
  readonly display: Record<string, string>;
  readonly secretNames: string[];
  /** Problems, each naming the option and what is expected; empty when valid. */
  readonly issues: string[];
  /** The same problems by option, worded to stand beside the option's field ("is required"). */
  readonly problems: OptionProblem[];
}

export interface OptionProblem {
  /** The option the problem is about (for an unknown option, the name that was given). */
  readonly option: string;
  /** Whether the runbook declares the option (a form has a field for it). */
  readonly declared: boolean;
  /** What is wrong, without the option's name: "is required", "12 is above the maximum 5". */
  readonly message: string;
}

function defsOf(from: Runbook | readonly OptionDef[]): readonly OptionDef[] {
  return 'spec' in from ? from.spec.options : from;
}

function typedValue(def: OptionDef, value: string): OptionValue {
  if (def.type === 'integer') return Number(value);
  if (def.type === 'boolean') return value === 'true';
  return value;
}

/**
 * Checks what a user gave against the runbook's options and applies defaults. An empty value
 * for an integer, boolean or enum counts as not given (a form's untouched field), so its default
 * applies; for strings and secrets it is a value.
 */
export function resolveOptions(runbook: Runbook | readonly OptionDef[], provided: Readonly<Record<string, string>>): ResolvedOptions {
  const defs = defsOf(runbook);
  const problems: OptionProblem[] = [];
  const issues: string[] = [];
  const problem = (option: string, declared: boolean, message: string, issue: string): void => {
    problems.push({ option, declared, message });
    issues.push(issue);
  };
  const values: Record<string, string> = {};
  const typed: Record<string, OptionValue> = {};
  const display: Record<string, string> = {};
  const known = new Set(defs.map((d) => d.name));
  for (const name of Object.keys(provided)) {
    if (!known.has(name)) {
      const takes = known.size ? ` (this runbook takes: ${[...known].join(', ')})` : ' (this runbook takes no options)';
      problem(name.slice(0, ECHO_CHARS), false, `is not an option of this runbook${takes}`, `unknown option ${echo(name)}${takes}`);
    }
  }
  for (const def of defs) {
    const given = Object.prototype.hasOwnProperty.call(provided, def.name) ? provided[def.name] : undefined;
    if (given !== undefined && typeof given !== 'string') {
      problem(def.name, true, 'must be given as a string', `option "${def.name}" must be given as a string`);
      continue;
    }
    const textual = def.type === 'string' || def.type === 'secret';
    const value = given === undefined || (given === '' && !textual) ? def.default : given;
    if (value === undefined) {
      if (def.required) problem(def.name, true, 'is required', `option "${def.name}" is required${def.description ? ` (${def.description})` : ''}`);
      continue;
    }
    if (value === '' && def.required) {
      problem(def.name, true, 'is required and cannot be empty', `option "${def.name}" is required and cannot be empty`);
      continue;
    }
    const wrong = checkOptionValue(def, value);
    if (wrong) {
      problem(def.name, true, wrong, `option "${def.name}" ${wrong}`);
      continue;
    }
    values[def.name] = value;
    typed[def.name] = typedValue(def, value);
    display[def.name] = def.type === 'secret' ? MASK : value;
  }
  return { values, typed, display, secretNames: defs.filter((d) => d.type === 'secret').map((d) => d.name), issues, problems };
}

/** `values` with every secret option's value replaced by "********" (for logs, records, pages). */
export function maskedOptions<V extends OptionValue>(runbook: Runbook | readonly OptionDef[], values: Readonly<Record<string, V>>): Record<string, V | typeof MASK> {
  const secrets = new Set(defsOf(runbook).filter((d) => d.type === 'secret').map((d) => d.name));
  const out: Record<string, V | typeof MASK> = {};
  for (const [k, v] of Object.entries(values)) out[k] = secrets.has(k) ? MASK : v;
  return out;
}
