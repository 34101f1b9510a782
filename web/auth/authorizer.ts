/** Authorization decisions the web layer asks for: the same policy engine the executions use. */
export type { EnginePolicy as Authorizer, PolicyDecision as AuthzDecision } from '../../coordinator/engine/engine.js';
