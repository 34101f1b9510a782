/** The runbook model (kind: Runbook, apiVersion handrail/v1) after validation. */
import type { Selector } from '../../core/selector.js';

export type OptionType = 'string' | 'integer' | 'boolean' | 'enum' | 'secret';

export interface OptionDef {
  readonly name: string;
  readonly type: OptionType;
  readonly required: boolean;
  /** As a string (the form every value takes once resolved). */
  readonly default: string | undefined;
  readonly pattern: string | undefined;
  readonly values: readonly string[] | undefined;
  /** Integers: value bounds. Strings and secrets: length bounds. */
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly label: string | undefined;
  readonly description: string | undefined;
}

interface StepCommon {
  readonly name: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryBackoffMs: number;
  readonly continueOnError: boolean;
}

export interface AgentStep extends StepCommon {
  readonly kind: 'agent';
  /** argv elements with templates (each stays one element). */
  readonly run: readonly string[] | undefined;
  readonly script: { readonly body: string; readonly interpreter: readonly string[] } | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir: string | undefined;
  readonly maxOutputBytes: number;
}

export interface HttpStep extends StepCommon {
  readonly kind: 'http';
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly expectStatus: readonly number[];
}

export interface SleepStep extends StepCommon {
  readonly kind: 'sleep';
  readonly durationMs: number;
}

export interface ApprovalStep extends StepCommon {
  readonly kind: 'approval';
  readonly required: number;
  readonly from: readonly string[];
  readonly message: string;
}

export type Step = AgentStep | HttpStep | SleepStep | ApprovalStep;

export interface Runbook {
  readonly apiVersion: 'handrail/v1';
  readonly kind: 'Runbook';
  readonly metadata: {
    readonly id: string;
    readonly title: string;
    readonly description: string | undefined;
    readonly owner: string;
    readonly tags: readonly string[];
    readonly manualMinutes: number | undefined;
  };
  readonly spec: {
    readonly options: readonly OptionDef[];
    readonly selector: Selector;
    readonly selectorText: string;
    readonly strategy: 'rolling' | 'parallel';
    readonly concurrency: { readonly count: number } | { readonly percent: number };
    readonly maxErrors: number;
    readonly approval: { readonly required: number; readonly from: readonly string[] } | null;
    readonly steps: readonly Step[];
    readonly onFailure: readonly Step[];
  };
}

export const DEFAULT_STEP_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_RETRY_BACKOFF_MS = 5_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
export const DEFAULT_INTERPRETER: readonly string[] = ['/bin/sh', '-eu'];
/** Longest value an option may take unless its `max` says otherwise. */
export const DEFAULT_OPTION_MAX_LENGTH = 4096;
