/**
 * The states an execution can be in. Its own module, importing nothing, so that the CLI's
 * option parsing can offer them without loading the store (and its step codec) with it.
 */

/** Every state an execution can be in; the first three are active. */
export const EXECUTION_STATES = ['queued', 'awaiting_approval', 'running', 'succeeded', 'failed', 'canceled', 'timed_out'] as const;
export type ExecutionState = (typeof EXECUTION_STATES)[number];
/** The states an execution has not ended in. */
export const ACTIVE_EXECUTION_STATES: ReadonlySet<string> = new Set<ExecutionState>(['queued', 'awaiting_approval', 'running']);
