/** Policy decisions for the engine and the web layer, over whatever policies are loaded now. */
import type { EnginePolicy, PolicyDecision, Requester } from '../engine/engine.js';
import { parseSelector } from '../../core/selector.js';
import { decide, type Policy, type PolicyAction } from './policy.js';

export class AccessControl implements EnginePolicy {
  constructor(private readonly policies: () => readonly Policy[]) {}

  decide(
    user: Requester,
    action: PolicyAction,
    runbook?: { readonly id: string; readonly tags: readonly string[]; readonly owner: string },
    targets?: { readonly selector: string; readonly agents: ReadonlyArray<{ readonly id: string; readonly name: string; readonly labels: Readonly<Record<string, string>> }> },
  ): PolicyDecision {
    const d = decide(this.policies(), {
      subject: { user: user.name, groups: user.groups },
      action,
      ...(runbook ? { runbook } : {}),
      ...(targets ? { targets: { selector: parseSelector(targets.selector), agents: targets.agents } } : {}),
    });
    return { allowed: d.allowed, rule: d.rule, reason: d.reason };
  }
}
