/**
 * How a webhook payload becomes a run request: each runbook option comes from a JSON path in
 * the payload (with an optional default) or is a fixed value, and the targets may be narrowed
 * to `label=<value at a path>`. Pure. `checkMapping` judges a mapping against the runbook's
 * declared options when a hook is defined (and again at each delivery, since the runbook may
 * have changed); `mapPayload` applies it. Mapped values are only ever data: scalars turned into
 * strings that the runbook's own option validation judges next, and a target value that must fit
 * the label charset (so it cannot add selector syntax).
 *
 *   { "options": { "host": { "path": "$.alerts[0].labels.instance" },
 *                  "reason": { "value": "alertmanager" },
 *                  "severity": { "path": "$.commonLabels.severity", "default": "warning" } },
 *     "target": { "label": "host", "path": "$.alerts[0].labels.host" } }
 */
import { labelProblems } from '../../core/labels.js';
import { echo, kindOf, shown, some } from '../../core/echo.js';
import { parsePath, resolvePath, type JsonPath } from './json-path.js';

/** What the mapping needs to know of a runbook option. */
export interface MappableOption {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly default: string | undefined;
}

export type OptionSource = { readonly path: JsonPath; readonly default: string | undefined } | { readonly value: string };

export interface PayloadMapping {
  readonly options: Readonly<Record<string, OptionSource>>;
  readonly target: { readonly label: string; readonly path: JsonPath } | null;
}

export const MAX_MAPPED_OPTIONS = 64;
const MAX_FIXED_CHARS = 4096;

export type MappingCheck = { readonly ok: true; readonly mapping: PayloadMapping } | { readonly ok: false; readonly problems: readonly string[] };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): unknown => Object.getOwnPropertyDescriptor(o, k)?.value;

export function checkMapping(raw: unknown, options: readonly MappableOption[]): MappingCheck {
  const problems: string[] = [];
  if (!isObject(raw)) return { ok: false, problems: [`mapping must be an object, got ${kindOf(raw)}`] };
  for (const k of Object.keys(raw)) if (k !== 'options' && k !== 'target') problems.push(`mapping has unknown field ${echo(k, 40)} (it takes: options, target)`);
  const rawOptions = own(raw, 'options') ?? {};
  const out: Record<string, OptionSource> = {};
  if (!isObject(rawOptions)) problems.push(`mapping.options must be an object, got ${kindOf(rawOptions)}`);
  else {
    const names = Object.keys(rawOptions);
    if (names.length > MAX_MAPPED_OPTIONS) problems.push(`mapping.options has ${names.length} entries; at most ${MAX_MAPPED_OPTIONS}`);
    for (const name of names.slice(0, MAX_MAPPED_OPTIONS)) {
      const at = `mapping.options.${name.length > 40 ? echo(name, 40) : name}`;
      const def = options.find((o) => o.name === name);
      if (!def) {
        problems.push(`${at}: the runbook declares no option ${echo(name, 40)} (it declares: ${options.map((o) => o.name).join(', ') || 'none'})`);
        continue;
      }
      if (def.type === 'secret') {
        problems.push(`${at}: option "${name}" is a secret; a secret never comes from a webhook payload`);
        continue;
      }
      const src = own(rawOptions, name);
      const parsed = optionSource(src, at);
      if (typeof parsed === 'string') problems.push(parsed);
      // `name` is a declared option, and runbook validation refuses __proto__ and the like as names.
      else out[name] = parsed;
    }
  }
  for (const o of options) {
    if (o.required && o.default === undefined && o.type !== 'secret' && !Object.prototype.hasOwnProperty.call(out, o.name) && !(isObject(rawOptions) && Object.prototype.hasOwnProperty.call(rawOptions, o.name))) {
      problems.push(`mapping.options: required option "${o.name}" is not mapped (give it a path or a value)`);
    }
    if (o.required && o.default === undefined && o.type === 'secret') problems.push(`the runbook's required option "${o.name}" is a secret: a webhook cannot run it`);
  }
  let target: PayloadMapping['target'] = null;
  const rawTarget = own(raw, 'target');
  if (rawTarget !== undefined) {
    if (!isObject(rawTarget)) problems.push(`mapping.target must be an object {label, path}, got ${kindOf(rawTarget)}`);
    else {
      for (const k of Object.keys(rawTarget)) if (k !== 'label' && k !== 'path') problems.push(`mapping.target has unknown field ${echo(k, 40)} (it takes: label, path)`);
      const label = own(rawTarget, 'label');
      const path = own(rawTarget, 'path');
      if (typeof label !== 'string' || labelProblems({ [label]: '' }).length > 0) problems.push(`mapping.target.label ${shown(label)} is not a label key (letters, digits, . _ / -, at most 63 characters)`);
      const p = typeof path === 'string' ? parsePath(path) : null;
      if (!p || !p.ok) problems.push(`mapping.target.path ${shown(path)} ${p && !p.ok ? p.error : 'must be a JSON path string'}`);
      if (typeof label === 'string' && p?.ok && problems.length === 0) target = { label, path: p.path };
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, mapping: { options: out, target } };
}

function optionSource(src: unknown, at: string): OptionSource | string {
  if (!isObject(src)) return `${at} must be {path, default?} or {value}, got ${kindOf(src)}`;
  const keys = Object.keys(src);
  const bad = keys.filter((k) => k !== 'path' && k !== 'default' && k !== 'value');
  if (bad.length > 0) return `${at} has unknown field ${some(bad.map((k) => echo(k, 40)))} (it takes: path, default, or value)`;
  const value = own(src, 'value');
  if (value !== undefined) {
    if (keys.length !== 1) return `${at}: a fixed value takes no path or default`;
    if (typeof value !== 'string' || value.length > MAX_FIXED_CHARS) return `${at}.value must be a string of at most ${MAX_FIXED_CHARS} characters`;
    return { value };
  }
  const path = own(src, 'path');
  if (typeof path !== 'string') return `${at} needs a path (a JSON path string) or a value`;
  const p = parsePath(path);
  if (!p.ok) return `${at}.path ${echo(path)} ${p.error}`;
  const dflt = own(src, 'default');
  if (dflt !== undefined && (typeof dflt !== 'string' || dflt.length > MAX_FIXED_CHARS)) return `${at}.default must be a string of at most ${MAX_FIXED_CHARS} characters`;
  return { path: p.path, default: dflt as string | undefined };
}

export type MappedPayload =
  | { readonly ok: true; readonly options: Readonly<Record<string, string>>; readonly targets: string | undefined }
  | { readonly ok: false; readonly field: string; readonly message: string };

/** Applies a checked mapping to a parsed JSON payload. */
export function mapPayload(mapping: PayloadMapping, payload: unknown): MappedPayload {
  const options: Record<string, string> = {};
  for (const [name, src] of Object.entries(mapping.options)) {
    if ('value' in src) {
      options[name] = src.value;
      continue;
    }
    const r = resolvePath(payload, src.path);
    if (!r.found) {
      if (src.default !== undefined) {
        options[name] = src.default;
        continue;
      }
      return { ok: false, field: src.path.text, message: `the payload has no ${src.path.text} (nothing at ${r.missing}), which option "${name}" is mapped from` };
    }
    const s = scalar(r.value);
    if (s === null) return { ok: false, field: src.path.text, message: `${src.path.text} is ${kindOf(r.value)}; option "${name}" takes a string, a number or a boolean` };
    options[name] = s;
  }
  let targets: string | undefined;
  if (mapping.target) {
    const { label, path } = mapping.target;
    const r = resolvePath(payload, path);
    if (!r.found) return { ok: false, field: path.text, message: `the payload has no ${path.text} (nothing at ${r.missing}), which the target label "${label}" is mapped from` };
    const s = typeof r.value === 'string' || typeof r.value === 'number' ? scalar(r.value) : null;
    if (s === null || s === '' || labelProblems({ [label]: s }).length > 0) {
      return { ok: false, field: path.text, message: `${path.text} is ${typeof r.value === 'string' ? echo(r.value) : kindOf(r.value)}, not a label value (letters, digits, . _ : @ / -, 1 to 63 characters)` };
    }
    targets = `${label}=${s}`;
  }
  return { ok: true, options, targets };
}

function scalar(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return null;
}
