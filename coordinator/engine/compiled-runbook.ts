/**
 * What the engine needs from a runbook, independent of the YAML model: the scheduling plan,
 * each step's kind and limits, and functions that render a step for one host (templates
 * expanded into whole argv elements and env values, never into shell text).
 */
import type { Selector } from '../../core/selector.js';
import type { ScriptSpec } from '../../core/step.js';
import type { Plan } from './scheduler.js';

export interface HostContext {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface RenderContext {
  readonly executionId: string;
  readonly host: HostContext;
  /** Resolved option values (defaults applied; secrets in clear: never log these). */
  readonly options: Readonly<Record<string, string>>;
}

export interface ResolvedOptions {
  /** Every option's value as a string, defaults applied. */
  readonly values: Readonly<Record<string, string>>;
  /** The same with secrets replaced by "********": what records and pages show. */
  readonly display: Readonly<Record<string, string>>;
  readonly secretNames: readonly string[];
  /** Problems, each naming the option and what to do; empty when valid. */
  readonly issues: readonly string[];
}

export interface RenderedAgentStep {
  readonly argv: readonly string[];
  /** argv with arguments drawn from secrets masked: what audit records show. */
  readonly argvForRecords: readonly string[];
  readonly script: ScriptSpec | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** Env names whose values are secret: masked in records. */
  readonly secretEnv: readonly string[];
  readonly workingDir: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
}

export interface RenderedHttpStep {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly expectStatus: readonly number[];
  readonly timeoutMs: number;
  /** Header names whose values are secret. */
  readonly secretHeaders: readonly string[];
}

export type StepKind = 'agent' | 'http' | 'sleep' | 'approval';

export interface StepInfo {
  readonly name: string;
  readonly kind: StepKind;
  /** For sleep steps. */
  readonly sleepMs?: number;
  /** For approval gates. */
  readonly approval?: { readonly required: number; readonly from: readonly string[]; readonly message: string };
}

export interface CompiledRunbook {
  readonly id: string;
  readonly title: string;
  readonly owner: string;
  readonly tags: readonly string[];
  /** SHA-256 (hex) of the runbook document's exact source. */
  readonly digest: string;
  readonly source: string;
  readonly selector: Selector;
  readonly selectorText: string;
  readonly plan: Plan;
  /** Approval needed before anything runs. */
  readonly approval: { readonly required: number; readonly from: readonly string[] } | null;
  resolveOptions(provided: Readonly<Record<string, string>>): ResolvedOptions;
  step(handler: boolean, index: number): StepInfo;
  renderAgent(handler: boolean, index: number, ctx: RenderContext): RenderedAgentStep;
  renderHttp(handler: boolean, index: number, ctx: RenderContext): RenderedHttpStep;
}
