/**
 * What the three ways of deciding targets (none, concrete agents, selector only) hand back to
 * decide(), and the wording they share.
 */
import type { DecisionRequest, PolicyRule, TargetDecision } from './model.js';

export interface Outcome {
  readonly allowed: boolean;
  readonly rule: PolicyRule | undefined;
  readonly reason: string;
  readonly perTarget?: TargetDecision[];
}

export interface Context {
  readonly req: DecisionRequest;
  readonly groups: readonly string[];
  /** "run restart-web", "perform admin operations" … */
  readonly what: string;
}

export function defaultDeny(ctx: Context): string {
  return `no rule allows ${ctx.req.subject.user} (groups: ${ctx.groups.join(', ') || 'none'}) to ${ctx.what}; default deny`;
}
