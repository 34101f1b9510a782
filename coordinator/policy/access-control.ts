/** Policy decisions for the engine and the web layer, over whatever policies are loaded now. */
import type { EnginePolicy, PolicyDecision, Requester } from '../engine/engine.js';
import { decide } from './evaluate.js';
import type { Policy, PolicyAction, RunbookRef, TargetAgent } from './model.js';

export class AccessControl implements EnginePolicy {
  constructor(private readonly policies: () => readonly Policy[]) {}

  decide(user: Requester, action: PolicyAction, runbook?: RunbookRef, targets?: { readonly selector: string; readonly agents: readonly TargetAgent[] }): PolicyDecision {
    const d = decide(this.policies(), {
      subject: { user: user.name, groups: user.groups },
      action,
      ...(runbook ? { runbook } : {}),
      ...(targets ? { targets } : {}),
    });
    // rule null: the default deny (audit records write it as DEFAULT_DENY_RULE; its reason says so).
    return { allowed: d.allowed, rule: d.rule ?? null, reason: d.reason };
  }
}
