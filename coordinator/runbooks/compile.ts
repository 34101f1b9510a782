/**
 * Turns a validated runbook into what the engine runs (engine/compiled-runbook.ts): the
 * scheduling plan and per-host rendering of each step. Every option also reaches agent steps
 * as HANDRAIL_OPT_<NAME>; secrets are named so records can mask them.
 */
import type { CompiledRunbook, RenderContext, RenderedAgentStep, RenderedHttpStep, StepInfo } from '../engine/compiled-runbook.js';
import type { Plan, PlanStep } from '../engine/scheduler.js';
import type { Runbook, Step } from './model.js';
import { resolveOptions } from './options.js';
import { renderAgentStep, renderHttpStep, secretOptionNames, type TemplateContext } from './template.js';

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
  const secretNames = secretOptionNames(runbook);
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
      return renderAgentStep(s, tctx(ctx), secretNames);
    },
    renderHttp(handler: boolean, index: number, ctx: RenderContext): RenderedHttpStep {
      const s = stepOf(handler, index);
      if (s.kind !== 'http') throw new Error(`step "${s.name}" is not an http step`);
      return renderHttpStep(s, tctx(ctx), secretNames);
    },
  };
}
