/**
 * Every state the portal shows (executions, hosts of an execution, step runs), with the tone it
 * is drawn in and what it means, in one table that the server-rendered pages and the live
 * script (web/static/live-output.ts) share. Keyed by the engine's own state types, so a state
 * the engine gains and this table lacks does not compile.
 */
import type { ExecutionState } from '../../../coordinator/store/execution-queries.js';
import type { StepRunState } from '../../../coordinator/engine/step-dispatcher.js';
import type { NodeStatus } from '../../../coordinator/engine/scheduler.js';

/** How a state is drawn: ended well, ended badly, needs someone, under way, or not started. */
export type Tone = 'good' | 'bad' | 'attention' | 'active' | 'idle';

export type ShownState = ExecutionState | StepRunState | NodeStatus;

export interface StateLook {
  readonly tone: Tone;
  /** One line for the badge's title: what the state means for the person looking. */
  readonly means: string;
}

export const STATE_LOOKS: Readonly<Record<ShownState, StateLook>> = {
  queued: { tone: 'idle', means: 'waiting for its turn to start' },
  awaiting_approval: { tone: 'attention', means: 'nothing runs until the runbook\'s approvers approve it' },
  pending: { tone: 'idle', means: 'not started yet' },
  dispatched: { tone: 'active', means: 'sent to the agent, not yet started there' },
  running: { tone: 'active', means: 'under way' },
  succeeded: { tone: 'good', means: 'finished successfully' },
  failed: { tone: 'bad', means: 'finished with a failure' },
  timed_out: { tone: 'bad', means: 'stopped at its time limit' },
  canceled: { tone: 'bad', means: 'stopped: canceled or denied' },
  error: { tone: 'bad', means: 'the agent could not run it' },
  interrupted: { tone: 'attention', means: 'its agent stopped during the step (a restart or upgrade): it runs again when the agent is back' },
  rejected: { tone: 'bad', means: 'the agent refused the signed request' },
  expired: { tone: 'bad', means: 'no agent took it before its request expired' },
  lost: { tone: 'bad', means: 'the agent went silent and the step was given up' },
  skipped: { tone: 'idle', means: 'not run: too many other hosts had failed' },
};

/** The look of any state; one the table does not know (an agent's online/offline) is plain. */
export function stateLook(state: string): StateLook | undefined {
  return Object.prototype.hasOwnProperty.call(STATE_LOOKS, state) ? STATE_LOOKS[state as ShownState] : undefined;
}

/** The badge's text: the state's name as words ("awaiting approval"). */
export function stateLabel(state: string): string {
  return state.replace(/_/g, ' ');
}

/** The badge's classes: `state state-NAME tone-TONE`. */
export function stateClass(state: string): string {
  const look = stateLook(state);
  const safe = /^[a-z_]{1,32}$/.test(state) ? state : 'unknown';
  return `state state-${safe}${look ? ` tone-${look.tone}` : ''}`;
}
