/**
 * Policy (security model point 7): `kind: Policy` documents whose rules allow or deny actions
 * (run, view, approve, cancel, admin) on runbooks (id globs, tags, owner teams) for subjects
 * (users, groups), limited to target selectors. Default deny; deny wins; every decision names
 * the rule that made it, and `handrail policy explain` shows why before anyone runs anything.
 *
 * Everything here is pure: validation and decisions take plain values and return plain
 * values. The runbook catalog loads the documents; AccessControl adapts decisions for the
 * engine and the web layer.
 *
 *   model.ts            the types: policies, requests, decisions
 *   validate-policy.ts  documents → Policy, or issues with paths into the document
 *   rule-match.ts       one rule's action / subject / runbook against a request
 *   evaluate.ts         decide, visibleRunbooks, allowedActions
 *   agent-targets.ts    … per concrete target agent
 *   selector-targets.ts … for targets known only as a selector
 *   outcome.ts          what those hand back to decide
 *   explain.ts          lines and JSON for `policy explain`
 *   visibility.ts       what a user may see: executions, the history's scope, agents
 *   access-control.ts   the engine's and web layer's view of decide
 */
export * from './model.js';
export { validatePolicy, subjectProblem } from './validate-policy.js';
export { effectiveGroups } from './rule-match.js';
export { decide, visibleRunbooks, allowedActions } from './evaluate.js';
export { explain, explainJson, type ExplainJson, type ExplainedRule } from './explain.js';
export { canViewExecution, executionScope, visibleAgents, type ExecutionRef, type ExecutionScope, type TargetableRunbook } from './visibility.js';
