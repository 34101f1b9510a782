/**
 * Templates in runbook steps: `${option.NAME}`, `${host.name}`, `${host.id}`,
 * `${host.labels.KEY}`, `${execution.id}`; `$${` is a literal `${`. A template is expanded
 * inside ONE argv element or env value: whatever a value contains (spaces, `;`, `$(…)`,
 * backticks, newlines) it stays that one element, and no shell ever parses it. Script bodies
 * take no templates (options reach them as $HANDRAIL_OPT_NAME environment variables).
 *
 * Also here: rendering a whole step for one host (what is dispatched) and for display (the
 * same with every secret shown as ********), so a preview can never drift from a dispatch.
 */
import type { RenderedAgentStep, RenderedHttpStep } from '../engine/compiled-runbook.js';
import type { AgentStep, HttpStep, Runbook, Step } from './model.js';
import { MASK } from './options.js';

export type TemplateRef =
  | { readonly kind: 'option'; readonly name: string }
  | { readonly kind: 'host'; readonly field: 'name' | 'id' }
  | { readonly kind: 'label'; readonly key: string }
  | { readonly kind: 'execution' };

export type TemplatePart = string | TemplateRef;

export interface TemplateContext {
  readonly options: Readonly<Record<string, string>>;
  readonly host: { readonly id: string; readonly name: string; readonly labels: Readonly<Record<string, string>> };
  readonly executionId: string;
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;

export function parseTemplate(text: string): { parts: TemplatePart[] } | { error: string } {
  const parts: TemplatePart[] = [];
  let last = 0;
  let literal = '';
  for (const m of text.matchAll(REF)) {
    literal += text.slice(last, m.index);
    last = (m.index as number) + m[0].length;
    if (m[0] === '$${') {
      literal += '${';
      continue;
    }
    const ref = parseRef((m[1] as string).trim());
    if ('error' in ref) return ref;
    if (literal) parts.push(literal);
    literal = '';
    parts.push(ref.ref);
  }
  literal += text.slice(last);
  if (literal) parts.push(literal);
  return { parts };
}

function parseRef(body: string): { ref: TemplateRef } | { error: string } {
  let m: RegExpExecArray | null;
  if ((m = /^option\.([A-Za-z_][A-Za-z0-9_-]*)$/.exec(body))) return { ref: { kind: 'option', name: m[1] as string } };
  if (body === 'host.name') return { ref: { kind: 'host', field: 'name' } };
  if (body === 'host.id') return { ref: { kind: 'host', field: 'id' } };
  if ((m = /^host\.labels\.([A-Za-z0-9][A-Za-z0-9._/-]*)$/.exec(body))) return { ref: { kind: 'label', key: m[1] as string } };
  if (body === 'execution.id') return { ref: { kind: 'execution' } };
  return { error: `unknown template variable "\${${body.slice(0, 60)}}": use \${option.NAME}, \${host.name}, \${host.id}, \${host.labels.KEY} or \${execution.id} (write $\${ for a literal \${)` };
}

/** Options a template reads. */
export function optionRefs(parts: readonly TemplatePart[]): string[] {
  return parts.filter((p): p is { kind: 'option'; name: string } => typeof p !== 'string' && p.kind === 'option').map((p) => p.name);
}

export function render(parts: readonly TemplatePart[], ctx: TemplateContext, encode: (value: string) => string = (v) => v): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    switch (p.kind) {
      case 'option':
        out += encode(ctx.options[p.name] ?? '');
        break;
      case 'host':
        out += encode(p.field === 'name' ? ctx.host.name : ctx.host.id);
        break;
      case 'label':
        out += encode(ctx.host.labels[p.key] ?? '');
        break;
      case 'execution':
        out += encode(ctx.executionId);
        break;
    }
  }
  return out;
}

/** The environment variable an option reaches agent steps as: HANDRAIL_OPT_<NAME>. */
export function optionEnvName(name: string): string {
  return `HANDRAIL_OPT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function parts(text: string): TemplatePart[] {
  const t = parseTemplate(text);
  // Validated runbooks never get here; a template that does not parse must not render as text.
  if ('error' in t) throw new Error(t.error);
  return t.parts;
}

function readsSecret(p: readonly TemplatePart[], secretNames: ReadonlySet<string>): boolean {
  return optionRefs(p).some((r) => secretNames.has(r));
}

/** Environment variables every agent step gets besides its own `env`. */
function standardEnv(ctx: TemplateContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.options)) env[optionEnvName(name)] = value;
  // The agent adds HANDRAIL_AGENT_ID and HANDRAIL_EXECUTION_ID itself; it does not know the
  // name the coordinator knows it by, and scripts need it (e.g. to drain it from a pool).
  env['HANDRAIL_HOST_NAME'] = ctx.host.name;
  return env;
}

/** An agent step for one host: every argv element and env value stays one string. */
export function renderAgentStep(step: AgentStep, ctx: TemplateContext, secretNames: ReadonlySet<string>): RenderedAgentStep {
  const env = standardEnv(ctx);
  const secretEnv = Object.keys(ctx.options).filter((n) => secretNames.has(n)).map(optionEnvName);
  for (const [k, v] of Object.entries(step.env)) {
    const p = parts(v);
    env[k] = render(p, ctx);
    if (readsSecret(p, secretNames)) secretEnv.push(k);
  }
  const argvParts = (step.run ?? []).map(parts);
  return {
    argv: argvParts.map((p) => render(p, ctx)),
    // Records show "********" for any argument drawn from a secret option.
    argvForRecords: argvParts.map((p) => (readsSecret(p, secretNames) ? MASK : render(p, ctx))),
    script: step.script ? { interpreter: step.script.interpreter, body: step.script.body } : undefined,
    env,
    secretEnv,
    workingDir: step.workingDir ? render(parts(step.workingDir), ctx) : '',
    timeoutMs: step.timeoutMs,
    maxOutputBytes: step.maxOutputBytes,
  };
}

/** An http step for one host. Values substituted into the URL are percent-encoded. */
export function renderHttpStep(step: HttpStep, ctx: TemplateContext, secretNames: ReadonlySet<string>): RenderedHttpStep {
  const headers: Record<string, string> = {};
  const secretHeaders: string[] = [];
  for (const [k, v] of Object.entries(step.headers)) {
    const p = parts(v);
    headers[k] = render(p, ctx);
    if (readsSecret(p, secretNames)) secretHeaders.push(k);
  }
  return {
    method: step.method,
    // Percent-encoded values cannot change the URL's host or path shape.
    url: render(parts(step.url), ctx, encodeURIComponent),
    headers,
    body: step.body === undefined ? undefined : render(parts(step.body), ctx),
    expectStatus: step.expectStatus,
    timeoutMs: step.timeoutMs,
    secretHeaders,
  };
}

export function secretOptionNames(runbook: Runbook): Set<string> {
  return new Set(runbook.spec.options.filter((o) => o.type === 'secret').map((o) => o.name));
}

/** A step as a person should see it before or after it runs: secrets are "********". */
export type StepDisplay =
  | {
      readonly kind: 'agent';
      readonly name: string;
      readonly argv: readonly string[] | undefined;
      readonly script: { readonly interpreter: readonly string[]; readonly body: string } | undefined;
      readonly env: Readonly<Record<string, string>>;
      readonly workingDir: string;
      readonly timeoutMs: number;
      readonly retries: number;
    }
  | {
      readonly kind: 'http';
      readonly name: string;
      readonly method: string;
      readonly url: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: string | undefined;
      readonly expectStatus: readonly number[];
      readonly timeoutMs: number;
      readonly retries: number;
    }
  | { readonly kind: 'sleep'; readonly name: string; readonly durationMs: number }
  | { readonly kind: 'approval'; readonly name: string; readonly required: number; readonly from: readonly string[]; readonly message: string };

/**
 * Renders a step for one host as it would run, with each secret option's value replaced by
 * "********" wherever it would appear (argv, env, headers, the HANDRAIL_OPT_ variables).
 */
export function renderStepForDisplay(runbook: Runbook, step: Step, ctx: TemplateContext): StepDisplay {
  const secrets = secretOptionNames(runbook);
  const options: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.options)) options[k] = secrets.has(k) ? MASK : v;
  const masked: TemplateContext = { ...ctx, options };
  switch (step.kind) {
    case 'agent': {
      const r = renderAgentStep(step, masked, secrets);
      return { kind: 'agent', name: step.name, argv: step.run ? r.argv : undefined, script: r.script, env: r.env, workingDir: r.workingDir, timeoutMs: r.timeoutMs, retries: step.retries };
    }
    case 'http': {
      const r = renderHttpStep(step, masked, secrets);
      return { kind: 'http', name: step.name, method: r.method, url: r.url, headers: r.headers, body: r.body, expectStatus: r.expectStatus, timeoutMs: r.timeoutMs, retries: step.retries };
    }
    case 'sleep':
      return { kind: 'sleep', name: step.name, durationMs: step.durationMs };
    case 'approval':
      return { kind: 'approval', name: step.name, required: step.required, from: step.from, message: step.message };
  }
}
