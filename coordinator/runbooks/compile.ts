/**
 * Turns a validated runbook into what the engine runs (engine/compiled-runbook.ts): the
 * scheduling plan and per-host rendering of each step. Every option also reaches agent steps
 * as HANDRAIL_OPT_<NAME>; secrets are named so records can mask them.
 */
import type { CompiledRunbook, RenderContext, RenderedAgentStep, RenderedHttpStep, StepInfo } from '../engine/compiled-runbook.js';
import type { Plan, PlanStep } from '../engine/scheduler.js';
import type { Runbook, Step } from './model.js';
import { resolveOptions } from './options.js';
import { optionEnvName, optionRefs, parseTemplate, render, type TemplateContext, type TemplatePart } from './template.js';

function parts(text: string): TemplatePart[] {
  const t = parseTemplate(text);
  if ('error' in t) throw new Error(t.error); // validated documents never get here
  return t.parts;
}

function planStep(s: Step): PlanStep {
  return { name: s.name, retries: s.retries, retryBackoffMs: s.retryBackoffMs, continueOnError: s.continueOnError, gate: s.kind === 'approval' };
}

export function compileRunbook(runbook: Runbook, source: string, digest: string): CompiledRunbook {
  const spec = runbook.spec;
  const plan: Plan = {
    strategy: spec.strategy,
    concurrency: spec.concurrency,
    maxErrors: spec.maxErrors,
    steps: spec.steps.map(planStep),
    onFailure: spec.onFailure.map(planStep),
  };
  const secretNames = new Set(spec.options.filter((o) => o.type === 'secret').map((o) => o.name));
  const stepOf = (handler: boolean, index: number): Step => {
    const s = (handler ? spec.onFailure : spec.steps)[index];
    if (!s) throw new Error(`runbook ${runbook.metadata.id} has no ${handler ? 'onFailure ' : ''}step ${index}`);
    return s;
  };
  const tctx = (ctx: RenderContext): TemplateContext => ({ options: ctx.options, host: ctx.host, executionId: ctx.executionId });

  return {
    id: runbook.metadata.id,
    title: runbook.metadata.title,
    owner: runbook.metadata.owner,
    tags: runbook.metadata.tags,
    digest,
    source,
    selector: spec.selector,
    selectorText: spec.selectorText,
    plan,
    approval: spec.approval,
    resolveOptions: (provided) => resolveOptions(spec.options, provided),
    step(handler: boolean, index: number): StepInfo {
      const s = stepOf(handler, index);
      const kind = s.kind;
      return {
        name: s.name,
        kind,
        ...(s.kind === 'sleep' ? { sleepMs: s.durationMs } : {}),
        ...(s.kind === 'approval' ? { approval: { required: s.required, from: s.from, message: s.message } } : {}),
      };
    },
    renderAgent(handler: boolean, index: number, ctx: RenderContext): RenderedAgentStep {
      const s = stepOf(handler, index);
      if (s.kind !== 'agent') throw new Error(`step "${s.name}" does not run on an agent`);
      const t = tctx(ctx);
      const env: Record<string, string> = {};
      const secretEnv: string[] = [];
      for (const [name, value] of Object.entries(ctx.options)) {
        env[optionEnvName(name)] = value;
        if (secretNames.has(name)) secretEnv.push(optionEnvName(name));
      }
      for (const [k, v] of Object.entries(s.env)) {
        const p = parts(v);
        env[k] = render(p, t);
        if (optionRefs(p).some((r) => secretNames.has(r))) secretEnv.push(k);
      }
      const argvParts = (s.run ?? []).map(parts);
      return {
        argv: argvParts.map((p) => render(p, t)),
        // Records show "********" for any argument drawn from a secret option.
        argvForRecords: argvParts.map((p) => (optionRefs(p).some((r) => secretNames.has(r)) ? '********' : render(p, t))),
        script: s.script ? { interpreter: s.script.interpreter, body: s.script.body } : undefined,
        env,
        secretEnv,
        workingDir: s.workingDir ? render(parts(s.workingDir), t) : '',
        timeoutMs: s.timeoutMs,
        maxOutputBytes: s.maxOutputBytes,
      };
    },
    renderHttp(handler: boolean, index: number, ctx: RenderContext): RenderedHttpStep {
      const s = stepOf(handler, index);
      if (s.kind !== 'http') throw new Error(`step "${s.name}" is not an http step`);
      const t = tctx(ctx);
      const headers: Record<string, string> = {};
      const secretHeaders: string[] = [];
      for (const [k, v] of Object.entries(s.headers)) {
        const p = parts(v);
        headers[k] = render(p, t);
        if (optionRefs(p).some((r) => secretNames.has(r))) secretHeaders.push(k);
      }
      return {
        method: s.method,
        // Values substituted into a URL are percent-encoded: they cannot change its host or path shape.
        url: render(parts(s.url), t, encodeURIComponent),
        headers,
        body: s.body === undefined ? undefined : render(parts(s.body), t),
        expectStatus: s.expectStatus,
        timeoutMs: s.timeoutMs,
        secretHeaders,
      };
    },
  };
}
