/**
 * Command-line options with one precedence rule for every setting:
 * flag > environment variable > config file key > default.
 * This folder is the only place that reads process.env and config files.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { parse as ParseYaml } from 'yaml';
import { describeParseError } from './parse-error.js';
import { HandrailError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { loadYamlParse } from '../core/yaml-parser.js';
import { suggest } from './suggest.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
  /** Environment variable that sets it when the flag is absent. */
  readonly env?: string;
  /** Key in the YAML config file. */
  readonly configKey?: string;
  readonly default?: string | boolean;
  readonly description: string;
  readonly placeholder?: string;
  /**
   * The values a string option may take: anything else (from the flag, the environment or the
   * config file) is a usage error, "expected one of …". Listed in --help.
   */
  readonly choices?: readonly string[];
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: OptionSpecs;
  readonly allowPositionals?: boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export class UsageError extends HandrailError {
  constructor(message: string, hint?: string) {
    super('invalid_argument', message, hint === undefined ? undefined : { hint });
    this.name = 'UsageError';
  }
}

export const COMMON_OPTIONS: OptionSpecs = {
  config: { type: 'string', env: 'HANDRAIL_CONFIG', description: 'YAML config file (keys as listed in the README)', placeholder: 'FILE' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** Loaded by loadConfigParser: the yaml package costs ~50 ms of CPU to load, on every CLI start. */
let parseYaml: typeof ParseYaml | undefined;

/**
 * Loads the YAML parser that config files need. Entry points call it before parseCommand when a
 * config file may be read (mayReadConfigFile), so `handrail run` without one never loads yaml.
 * A dynamic import of a literal (core/yaml-parser.ts), so the bundled agent still carries yaml
 * inside it.
 */
export async function loadConfigParser(): Promise<void> {
  parseYaml ??= await loadYamlParse();
}

/** Whether parseCommand may read a config file for these arguments (--config or HANDRAIL_CONFIG). */
export function mayReadConfigFile(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  return Boolean(env['HANDRAIL_CONFIG']) || argv.some((a) => a === '--config' || a.startsWith('--config='));
}

export interface ParsedCommand {
  readonly values: OptionValues;
  readonly positionals: string[];
}

export function parseCommand(spec: CommandSpec, argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const all: OptionSpecs = { ...COMMON_OPTIONS, ...spec.options };
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, o] of Object.entries(all)) {
    parseOptions[name] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(describeParseError(e as Error & { code?: string }, all), `see \`handrail ${spec.name} --help\``);
  }
  if (!spec.allowPositionals && parsed.positionals.length > 0 && parsed.values['help'] !== true) {
    throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`, `see \`handrail ${spec.name} --help\``);
  }
  const configFile = (parsed.values['config'] as string | undefined) ?? env['HANDRAIL_CONFIG'];
  const fileValues = configFile ? readConfigFile(configFile) : {};
  const values: OptionValues = {};
  /** Where each value came from, for messages: `--flag`, `ENV_VAR` or `file: key`. */
  const where: Record<string, string> = {};
  for (const [name, o] of Object.entries(all)) {
    const flag = parsed.values[name];
    if (flag !== undefined) {
      values[name] = flag as string | boolean | string[];
      where[name] = `--${name}`;
      continue;
    }
    const fromEnv = o.env ? env[o.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') {
      values[name] = o.type === 'boolean' ? parseBool(fromEnv, o.env as string) : o.multiple ? fromEnv.split(',').map((s) => s.trim()) : fromEnv;
      where[name] = o.env as string;
      continue;
    }
    const fromFile = o.configKey ? fileValues[o.configKey] : undefined;
    if (fromFile !== undefined && fromFile !== null) {
      values[name] = coerceFileValue(fromFile, o, o.configKey as string, configFile as string);
      where[name] = `${configFile as string}: ${o.configKey as string}`;
      continue;
    }
    values[name] = o.default;
    where[name] = `--${name} (default)`;
  }
  if (parsed.values['help'] !== true) {
    for (const [name, o] of Object.entries(all)) checkChoice(o, values[name], where[name] as string, spec);
  }
  return { values, positionals: parsed.positionals };
}

/** A value outside an option's `choices` is bad usage: say what it may be, and the nearest one. */
function checkChoice(o: OptionSpec, value: OptionValues[string], where: string, spec: CommandSpec): void {
  if (!o.choices || value === undefined || typeof value === 'boolean') return;
  for (const v of Array.isArray(value) ? value : [value]) {
    if (o.choices.includes(v)) continue;
    const near = suggest(v, o.choices)[0];
    throw new UsageError(
      `${where} "${v}" is not valid: expected one of ${o.choices.join(', ')}${near ? ` (did you mean "${near}"?)` : ''}`,
      `see \`handrail ${spec.name} --help\``,
    );
  }
}

function parseBool(text: string, where: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new UsageError(`${where}="${text}" is not a boolean (use true or false)`);
}

function coerceFileValue(v: unknown, o: OptionSpec, key: string, file: string): string | boolean | string[] {
  if (o.type === 'boolean') {
    if (typeof v === 'boolean') return v;
    throw new UsageError(`${file}: "${key}" must be true or false`);
  }
  if (o.multiple) {
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.map(String);
    if (typeof v === 'string') return v.split(',').map((s) => s.trim());
    throw new UsageError(`${file}: "${key}" must be a list of strings`);
  }
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string' || typeof x === 'number')) {
    // maps (e.g. labels) are written k=v,k2=v2
    return Object.entries(v as Record<string, string | number>).map(([k, x]) => `${k}=${x}`).join(',');
  }
  throw new UsageError(`${file}: "${key}" must be a string`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read config file ${file}`);
  }
  let doc: unknown;
  try {
    if (!parseYaml) throw new Error('internal error: the YAML parser was not loaded (loadConfigParser) before a config file was read');
    doc = parseYaml(text);
  } catch (e) {
    throw new UsageError(`config file ${file} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`config file ${file} must be a YAML mapping of settings`);
  return doc as Record<string, unknown>;
}

export function helpText(spec: CommandSpec): string {
  const all: OptionSpecs = { ...spec.options, ...COMMON_OPTIONS };
  const lines = [`Usage: handrail ${spec.usage}`, '', spec.summary, '', 'Options:'];
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.placeholder ?? 'VALUE'}` : ''}`;
    const extra = [o.choices ? `one of ${o.choices.join(', ')}` : '', o.env ? `env ${o.env}` : '', o.configKey ? `config ${o.configKey}` : '', o.default !== undefined && o.default !== false ? `default ${String(o.default)}` : '']
      .filter(Boolean)
      .join('; ');
    return [flag, o.description + (extra ? ` (${extra})` : '')] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}${d}`);
  return lines.join('\n') + '\n';
}

export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(values: OptionValues, name: string, spec: CommandSpec): string {
  const v = str(values, name);
  if (v === undefined || v === '') {
    const o = spec.options[name];
    throw new UsageError(`--${name} is required${o?.env ? ` (or set ${o.env})` : ''}`, `see \`handrail ${spec.name} --help\``);
  }
  return v;
}

export function bool(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

export function list(values: OptionValues, name: string): string[] {
  const v = values[name];
  if (Array.isArray(v)) return v.flatMap((x) => x.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return [];
}

/**
 * A duration option (e.g. --ttl 1h) in milliseconds; a bad value is a usage error naming the
 * flag. `min` rejects values that would make no sense (a zero heartbeat, an expired token).
 */
export function durationSetting(p: ParsedCommand, name: string, min = 0): number {
  const v = str(p.values, name) as string;
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch (e) {
    throw new UsageError(`--${name}: ${(e as Error).message}`);
  }
  if (ms < min) throw new UsageError(`--${name} must be at least ${min} ms (got ${v})`);
  return ms;
}
