/**
 * Validates a runbook document given as a plain value (parsed YAML). Pure: returns the typed
 * runbook or issues with paths into the value (the loader turns paths into file:line:col).
 */
import { parseDuration } from '../../core/duration.js';
import { parseSelector, formatSelector, SelectorSyntaxError, EVERYTHING, type Selector } from '../../core/selector.js';
import type { Path, ValidationIssue } from '../../core/validation.js';
import {
  DEFAULT_INTERPRETER,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_RETRY_BACKOFF_MS,
  DEFAULT_STEP_TIMEOUT_MS,
  type OptionDef,
  type OptionType,
  type Runbook,
  type Step,
} from './model.js';
import { bool, int, Issues, isObj, mapping, nearest, str, strList, type Obj } from '../../core/document-schema.js';
import { optionEnvName, optionRefs, parseTemplate, type TemplatePart } from './template.js';
import { checkOptionValue } from './options.js';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const OPTION_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
const SUBJECT = /^(\*|user:[a-z0-9][a-z0-9._-]*|group:[a-z0-9][a-z0-9._-]*)$/;
const OPTION_TYPES: readonly OptionType[] = ['string', 'integer', 'boolean', 'enum', 'secret'];
/** Timers (and the wire's uint32 timeout) hold at most about 24.8 days. */
export const MAX_DURATION_MS = 24 * 86_400_000;
const STEP_COMMON = ['name', 'timeout', 'retries', 'retryBackoff', 'continueOnError'];
const STEP_KINDS = ['run', 'script', 'http', 'sleep', 'approval'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Keys that would not survive as plain-object properties (they set the prototype instead). */
const UNSAFE_KEYS = new Set(['__proto__']);
/** Template namespaces: `${option.x}` and friends inside a script body are mistakes, never shell. */
const SCRIPT_TEMPLATE = /\$\{\s*((?:option|host|execution)\.[^}]*?)\s*\}/g;

/** A string that must be present and not blank. */
function text(o: Obj, key: string, path: Path, issues: Issues, opts: { required?: boolean; max?: number; hint?: string } = {}): string | undefined {
  const v = str(o, key, path, issues, opts);
  if (v !== undefined && v.trim() === '') {
    issues.add([...path, key], `"${key}" cannot be empty${opts.hint ? ` (${opts.hint})` : ''}`);
    return undefined;
  }
  return v;
}

/** What a script body should use instead of a template (scripts are never templated). */
function scriptTemplateHint(ref: string): string {
  const option = /^option\.(.+)$/.exec(ref);
  if (option) return `use the environment variable $${optionEnvName(option[1] as string)} instead of \${${ref}} (quote it: "$${optionEnvName(option[1] as string)}")`;
  if (ref === 'host.name') return 'use the environment variable $HANDRAIL_HOST_NAME instead of ${host.name}';
  if (ref === 'host.id') return 'use the environment variable $HANDRAIL_AGENT_ID instead of ${host.id}';
  if (ref === 'execution.id') return 'use the environment variable $HANDRAIL_EXECUTION_ID instead of ${execution.id}';
  return `pass it through env (e.g. env: { VALUE: "\${${ref}}" }) and use "$VALUE" instead of \${${ref}}`;
}

export function validateRunbook(value: unknown): { runbook?: Runbook; issues: ValidationIssue[] } {
  const issues = new Issues();
  const doc = mapping(value, [], issues, ['apiVersion', 'kind', 'metadata', 'spec'], 'a runbook');
  if (!doc) return { issues: issues.list };
  if (doc['apiVersion'] !== 'handrail/v1') issues.add(['apiVersion'], `apiVersion must be "handrail/v1"${doc['apiVersion'] === undefined ? '' : `, not ${JSON.stringify(doc['apiVersion'])}`}`);
  if (doc['kind'] !== 'Runbook') issues.add(['kind'], 'kind must be "Runbook"');

  const meta = mapping(doc['metadata'], ['metadata'], issues, ['id', 'title', 'description', 'owner', 'tags', 'manualMinutes'], 'metadata');
  const id = meta ? str(meta, 'id', ['metadata'], issues, { required: true, pattern: ID, hint: 'use lower-case letters, digits and -, e.g. restart-web' }) : undefined;
  const title = meta ? text(meta, 'title', ['metadata'], issues, { required: true, max: 200, hint: 'what the runbook does, as support staff would say it' }) : undefined;
  const description = meta ? str(meta, 'description', ['metadata'], issues, { max: 5000 }) : undefined;
  const owner = meta ? str(meta, 'owner', ['metadata'], issues, { required: true, pattern: /^[a-z0-9][a-z0-9._-]{0,62}$/, hint: 'a team name such as team-web' }) : undefined;
  const tags = meta ? (strList(meta, 'tags', ['metadata'], issues, { pattern: /^[a-z0-9][a-z0-9._-]{0,62}$/, hint: 'tags are lower-case words' }) ?? []) : [];
  const manualMinutes = meta ? int(meta, 'manualMinutes', ['metadata'], issues, { min: 0, max: 100_000 }) : undefined;

  const spec = mapping(doc['spec'], ['spec'], issues, ['options', 'targets', 'strategy', 'concurrency', 'maxErrors', 'approval', 'steps', 'onFailure'], 'spec');
  if (!spec) return { issues: issues.list };

  const options = validateOptions(spec['options'], issues);
  const optionNames = new Set(options.map((o) => o.name));
  const secretNames = new Set(options.filter((o) => o.type === 'secret').map((o) => o.name));

  let selector: Selector = EVERYTHING;
  let selectorText = '*';
  const targets = spec['targets'] === undefined ? undefined : mapping(spec['targets'], ['spec', 'targets'], issues, ['selector'], 'targets');
  if (spec['targets'] === undefined) issues.add(['spec'], '"targets" is required: give a selector, e.g. targets: { selector: role=web } (use "*" for every agent)');
  if (targets) {
    const text = str(targets, 'selector', ['spec', 'targets'], issues, { required: true, hint: 'e.g. role=web,env in (prod,staging)' });
    if (text !== undefined) {
      try {
        selector = parseSelector(text);
        selectorText = formatSelector(selector);
      } catch (e) {
        if (e instanceof SelectorSyntaxError) issues.add(['spec', 'targets', 'selector'], `invalid selector: ${e.message} (column ${e.column})`);
        else throw e;
      }
    }
  }

  let strategy: 'rolling' | 'parallel' = 'rolling';
  if (spec['strategy'] !== undefined) {
    if (spec['strategy'] === 'rolling' || spec['strategy'] === 'parallel') strategy = spec['strategy'];
    else issues.add(['spec', 'strategy'], `strategy must be "rolling" or "parallel", not ${JSON.stringify(spec['strategy'])}`);
  }
  let concurrency: { count: number } | { percent: number } = { count: 1 };
  const c = spec['concurrency'];
  if (c !== undefined) {
    if (typeof c === 'number' && Number.isInteger(c) && c >= 1) concurrency = { count: c };
    else if (typeof c === 'string' && /^\d{1,3}%$/.test(c) && Number(c.slice(0, -1)) >= 1 && Number(c.slice(0, -1)) <= 100) concurrency = { percent: Number(c.slice(0, -1)) };
    else issues.add(['spec', 'concurrency'], 'concurrency must be a whole number ≥ 1 or a percentage like 25%');
  }
  const maxErrors = int(spec, 'maxErrors', ['spec'], issues, { min: 0 }) ?? 0;

  let approval: { required: number; from: string[] } | null = null;
  if (spec['approval'] !== undefined && spec['approval'] !== null) {
    const a = mapping(spec['approval'], ['spec', 'approval'], issues, ['required', 'from'], 'approval');
    if (a) {
      const required = int(a, 'required', ['spec', 'approval'], issues, { min: 0, max: 10 }) ?? 1;
      const from = strList(a, 'from', ['spec', 'approval'], issues, { pattern: SUBJECT, hint: 'use user:NAME, group:NAME or *' }) ?? [];
      approval = { required, from };
    }
  }

  const ctx: StepContext = { issues, optionNames, secretNames };
  const steps = validateSteps(spec['steps'], ['spec', 'steps'], ctx, true);
  const onFailure = validateSteps(spec['onFailure'], ['spec', 'onFailure'], ctx, false);
  const names = new Map<string, Path>();
  [...steps.map((s, i) => [s, ['spec', 'steps', i]] as const), ...onFailure.map((s, i) => [s, ['spec', 'onFailure', i]] as const)].forEach(([s, path]) => {
    if (names.has(s.name)) issues.add([...path, 'name'], `duplicate step name "${s.name}": step names must be unique within a runbook`);
    else names.set(s.name, path);
  });
  onFailure.forEach((s, i) => {
    if (s.kind === 'approval') issues.add(['spec', 'onFailure', i], 'onFailure handlers cannot wait for approval');
  });

  if (issues.list.length > 0 || !id || !title || !owner) {
    // Never "invalid" without a reason: the loader would drop a document silently.
    if (issues.list.length === 0) issues.add(['metadata'], 'metadata needs id, title and owner');
    return { issues: issues.list };
  }
  return {
    runbook: {
      apiVersion: 'handrail/v1',
      kind: 'Runbook',
      metadata: { id, title, description, owner, tags, manualMinutes },
      spec: { options, selector, selectorText, strategy, concurrency, maxErrors, approval, steps, onFailure },
    },
    issues: [],
  };
}

function validateOptions(v: unknown, issues: Issues): OptionDef[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    issues.add(['spec', 'options'], 'options must be a list');
    return [];
  }
  const out: OptionDef[] = [];
  const seen = new Set<string>();
  const envNames = new Map<string, string>();
  v.forEach((raw, i) => {
    const path: Path = ['spec', 'options', i];
    const o = mapping(raw, path, issues, ['name', 'type', 'required', 'default', 'pattern', 'values', 'min', 'max', 'label', 'description'], 'an option');
    if (!o) return;
    const name = str(o, 'name', path, issues, { required: true, pattern: OPTION_NAME, hint: 'letters, digits, _ and -, starting with a letter' });
    const type = (o['type'] ?? 'string') as OptionType;
    if (!OPTION_TYPES.includes(type)) issues.add([...path, 'type'], `type must be one of ${OPTION_TYPES.join(', ')}`);
    if (name && UNSAFE_KEYS.has(name)) issues.add([...path, 'name'], `"${name}" cannot be an option name: choose another`);
    if (name && seen.has(name)) issues.add([...path, 'name'], `duplicate option "${name}"`);
    else if (name && envNames.has(optionEnvName(name))) issues.add([...path, 'name'], `option "${name}" and option "${envNames.get(optionEnvName(name)) ?? ''}" would both reach steps as $${optionEnvName(name)}: rename one`);
    if (name) {
      seen.add(name);
      if (!envNames.has(optionEnvName(name))) envNames.set(optionEnvName(name), name);
    }
    const required = bool(o, 'required', path, issues) ?? false;
    let pattern = str(o, 'pattern', path, issues, { max: 1000 });
    if (pattern !== undefined) {
      try {
        new RegExp(pattern, 'u');
      } catch (e) {
        issues.add([...path, 'pattern'], `pattern is not a valid regular expression: ${(e as Error).message}`);
        pattern = undefined;
      }
      if (type !== 'string' && type !== 'secret') issues.add([...path, 'pattern'], `pattern applies to string and secret options, not ${type}`);
    }
    const values = strList(o, 'values', path, issues);
    if (type === 'enum' && (!values || values.length === 0)) issues.add([...path], 'an enum option needs "values": the allowed choices');
    if (type !== 'enum' && values) issues.add([...path, 'values'], '"values" is only for enum options');
    const min = int(o, 'min', path, issues);
    const max = int(o, 'max', path, issues);
    if (min !== undefined && max !== undefined && min > max) issues.add([...path, 'min'], 'min is greater than max');
    if ((type === 'boolean' || type === 'enum') && (min !== undefined || max !== undefined)) issues.add([...path], `min/max do not apply to ${type} options`);
    let def: string | undefined;
    const d = o['default'];
    if (d !== undefined && d !== null) {
      if (typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean') def = String(d);
      else issues.add([...path, 'default'], 'default must be a string, number or boolean');
      if (type === 'secret') issues.add([...path, 'default'], 'a secret option cannot have a default (it would sit in the runbook repository)');
    }
    const label = str(o, 'label', path, issues, { max: 200 });
    const description = str(o, 'description', path, issues, { max: 2000 });
    if (!name || UNSAFE_KEYS.has(name) || !OPTION_TYPES.includes(type)) return;
    const def_: OptionDef = { name, type, required, default: def, pattern, values: values ?? undefined, min, max, label, description };
    if (def !== undefined) {
      const problem = checkOptionValue(def_, def);
      if (problem) issues.add([...path, 'default'], `the default does not satisfy the option itself: ${problem}`);
    }
    out.push(def_);
  });
  return out;
}

interface StepContext {
  readonly issues: Issues;
  readonly optionNames: ReadonlySet<string>;
  readonly secretNames: ReadonlySet<string>;
}

function validateSteps(v: unknown, path: Path, ctx: StepContext, required: boolean): Step[] {
  if (v === undefined || v === null) {
    if (required) ctx.issues.add(path.slice(0, -1), '"steps" is required: a runbook needs at least one step');
    return [];
  }
  if (!Array.isArray(v)) {
    ctx.issues.add(path, 'must be a list of steps');
    return [];
  }
  if (required && v.length === 0) ctx.issues.add(path, 'a runbook needs at least one step');
  const out: Step[] = [];
  v.forEach((raw, i) => {
    const s = validateStep(raw, [...path, i], ctx);
    if (s) out.push(s);
  });
  return out;
}

function validateStep(raw: unknown, path: Path, ctx: StepContext): Step | undefined {
  const { issues } = ctx;
  if (!isObj(raw)) {
    issues.add(path, 'a step must be a mapping with a name and one of run, script, http, sleep, approval');
    return undefined;
  }
  const kinds = STEP_KINDS.filter((k) => raw[k] !== undefined);
  if (kinds.length === 0) {
    // A misspelt kind ("scirpt:") is the likely cause: say so at that key.
    const misspelt = Object.keys(raw).filter((k) => !STEP_COMMON.includes(k) && nearest(k, STEP_KINDS) !== undefined);
    for (const k of misspelt) issues.add([...path, k], `unknown field "${k}" in a step; did you mean "${nearest(k, STEP_KINDS) ?? ''}"?`);
    if (misspelt.length === 0) issues.add(path, `a step needs one of ${STEP_KINDS.join(', ')}`);
    return undefined;
  }
  if (kinds.length > 1) {
    issues.add(path, `a step has exactly one of ${STEP_KINDS.join(', ')} (found ${kinds.join(' and ')})`);
    return undefined;
  }
  const kind = kinds[0] as string;
  const extra = kind === 'run' || kind === 'script' ? ['env', 'workingDir', 'maxOutputBytes', ...(kind === 'script' ? ['interpreter'] : [])] : [];
  mapping(raw, path, issues, [...STEP_COMMON, kind, ...extra], 'a step');
  const name = text(raw, 'name', path, issues, { required: true, max: 200, hint: 'every step has a name, unique within the runbook' });
  const duration = (key: string, def: number, positive: boolean): number => {
    const t = raw[key];
    if (t === undefined || t === null) return def;
    if (typeof t !== 'string') {
      issues.add([...path, key], `"${key}" must be a duration like 30s or 5m`);
      return def;
    }
    let ms: number;
    try {
      ms = parseDuration(t);
    } catch (e) {
      issues.add([...path, key], (e as Error).message);
      return def;
    }
    if (positive && ms <= 0) {
      issues.add([...path, key], `"${key}" must be longer than 0`);
      return def;
    }
    if (ms > MAX_DURATION_MS) {
      issues.add([...path, key], `"${key}" is longer than ${MAX_DURATION_MS / 86_400_000} days`);
      return def;
    }
    return ms;
  };
  const common = {
    name: name ?? '',
    timeoutMs: duration('timeout', DEFAULT_STEP_TIMEOUT_MS, true),
    retries: int(raw, 'retries', path, issues, { min: 0, max: 20 }) ?? 0,
    retryBackoffMs: duration('retryBackoff', DEFAULT_RETRY_BACKOFF_MS, false),
    continueOnError: bool(raw, 'continueOnError', path, issues) ?? false,
  };
  const template = (text: string, where: Path, opts: { allowSecrets: boolean }): TemplatePart[] | undefined => {
    const t = parseTemplate(text);
    if ('error' in t) {
      issues.add(where, t.error);
      return undefined;
    }
    for (const ref of optionRefs(t.parts)) {
      if (!ctx.optionNames.has(ref)) issues.add(where, `\${option.${ref}} refers to an option that does not exist (declare it under spec.options)`);
      else if (!opts.allowSecrets && ctx.secretNames.has(ref)) issues.add(where, `secret option "${ref}" cannot be used here: it would be recorded in clear`);
    }
    return t.parts;
  };

  switch (kind) {
    case 'run':
    case 'script': {
      let run: string[] | undefined;
      let script: { body: string; interpreter: string[] } | undefined;
      if (kind === 'run') {
        if (typeof raw['run'] === 'string') issues.add([...path, 'run'], '"run" is a list of arguments (no shell): write run: [systemctl, restart, web], or use script: for shell code');
        else run = strList(raw, 'run', path, issues, { allowEmptyStrings: true });
        if (raw['run'] === null || (run && run.length === 0)) issues.add([...path, 'run'], '"run" needs at least the command: run: [systemctl, restart, web]');
        run?.forEach((a, i) => template(a, [...path, 'run', i], { allowSecrets: true }));
        if (run && run[0] !== undefined && /\$\{/.test(run[0])) issues.add([...path, 'run', 0], 'the command itself cannot be templated: name the program literally');
      } else {
        const body = str(raw, 'script', path, issues, { required: true, max: 100_000 });
        // Option values are never pasted into shell text: a script reads them from its environment.
        const refs = new Set([...(body ?? '').matchAll(SCRIPT_TEMPLATE)].map((m) => m[1] as string));
        for (const ref of refs) issues.add([...path, 'script'], `scripts take no templates: ${scriptTemplateHint(ref)}`);
        const interpreter = strList(raw, 'interpreter', path, issues) ?? [...DEFAULT_INTERPRETER];
        if (interpreter.length === 0) issues.add([...path, 'interpreter'], 'interpreter needs at least the program, e.g. [/bin/bash, -eu]');
        interpreter.forEach((a, i) => {
          if (a.includes('${')) issues.add([...path, 'interpreter', i], 'the interpreter takes no templates: name the program and its flags literally');
        });
        script = body === undefined ? undefined : { body, interpreter };
      }
      const env: Record<string, string> = {};
      if (raw['env'] !== undefined) {
        const e = isObj(raw['env']) ? raw['env'] : undefined;
        if (!e) issues.add([...path, 'env'], 'env must be a mapping of NAME: value');
        for (const [k, val] of Object.entries(e ?? {})) {
          if (!ENV_NAME.test(k) || UNSAFE_KEYS.has(k)) issues.add([...path, 'env', k], `env name "${k}" is invalid: use letters, digits and _, not starting with a digit`);
          else if (k.startsWith('HANDRAIL_')) issues.add([...path, 'env', k], 'env names starting with HANDRAIL_ are reserved');
          else if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') issues.add([...path, 'env', k], 'env values must be strings');
          else {
            env[k] = String(val);
            template(String(val), [...path, 'env', k], { allowSecrets: true });
          }
        }
      }
      const workingDir = str(raw, 'workingDir', path, issues, { max: 1000 });
      if (workingDir !== undefined) template(workingDir, [...path, 'workingDir'], { allowSecrets: false });
      const maxOutputBytes = int(raw, 'maxOutputBytes', path, issues, { min: 0, max: 1024 * 1024 * 1024 }) ?? DEFAULT_MAX_OUTPUT_BYTES;
      if (!name) return undefined;
      return { kind: 'agent', ...common, run: kind === 'run' ? run : undefined, script, env, workingDir, maxOutputBytes };
    }
    case 'http': {
      const h = mapping(raw['http'], [...path, 'http'], issues, ['method', 'url', 'headers', 'body', 'expectStatus'], 'http');
      if (!h) return undefined;
      const method = (str(h, 'method', [...path, 'http'], issues, { pattern: /^(GET|POST|PUT|PATCH|DELETE|HEAD)$/i, hint: 'use GET, POST, PUT, PATCH, DELETE or HEAD' }) ?? 'GET').toUpperCase();
      const url = str(h, 'url', [...path, 'http'], issues, { required: true, max: 4000 });
      if (url !== undefined) {
        template(url, [...path, 'http', 'url'], { allowSecrets: false });
        if (!/^https?:\/\//.test(url)) issues.add([...path, 'http', 'url'], 'url must start with http:// or https://');
      }
      const headers: Record<string, string> = {};
      if (h['headers'] !== undefined) {
        if (!isObj(h['headers'])) issues.add([...path, 'http', 'headers'], 'headers must be a mapping');
        else
          for (const [k, val] of Object.entries(h['headers'])) {
            if (!HEADER_NAME.test(k) || UNSAFE_KEYS.has(k)) issues.add([...path, 'http', 'headers', k], `"${k}" is not a valid header name`);
            else if (typeof val !== 'string') issues.add([...path, 'http', 'headers', k], 'header values must be strings');
            else {
              headers[k] = val;
              template(val, [...path, 'http', 'headers', k], { allowSecrets: true });
            }
          }
      }
      const body = str(h, 'body', [...path, 'http'], issues, { max: 100_000 });
      if (body !== undefined) template(body, [...path, 'http', 'body'], { allowSecrets: false });
      let expectStatus: number[] = [];
      const es = h['expectStatus'];
      if (typeof es === 'number') expectStatus = [es];
      else if (Array.isArray(es) && es.every((x) => typeof x === 'number')) expectStatus = es as number[];
      else if (es !== undefined) issues.add([...path, 'http', 'expectStatus'], 'expectStatus must be a status code or a list of them');
      if (expectStatus.some((x) => !Number.isInteger(x) || x < 100 || x > 599)) issues.add([...path, 'http', 'expectStatus'], 'status codes are 100 to 599');
      if (!name || url === undefined) return undefined;
      return { kind: 'http', ...common, method, url, headers, body, expectStatus };
    }
    case 'sleep': {
      const t = raw['sleep'];
      let ms = 0;
      if (typeof t !== 'string') issues.add([...path, 'sleep'], 'sleep takes a duration like 30s');
      else
        try {
          ms = parseDuration(t);
        } catch (e) {
          issues.add([...path, 'sleep'], (e as Error).message);
        }
      if (!name) return undefined;
      return { kind: 'sleep', ...common, durationMs: ms };
    }
    default: {
      const a = raw['approval'] === null ? {} : mapping(raw['approval'], [...path, 'approval'], issues, ['required', 'from', 'message'], 'approval');
      if (!a) return undefined;
      const required = int(a as Obj, 'required', [...path, 'approval'], issues, { min: 1, max: 10 }) ?? 1;
      const from = strList(a as Obj, 'from', [...path, 'approval'], issues, { pattern: SUBJECT, hint: 'use user:NAME, group:NAME or *' }) ?? [];
      const message = str(a as Obj, 'message', [...path, 'approval'], issues, { max: 2000 }) ?? (name ?? '');
      if (!name) return undefined;
      return { kind: 'approval', ...common, required, from, message };
    }
  }
}
