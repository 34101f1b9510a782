/** Authorization decisions the web layer asks for; backed by the policy engine. */
import type { User } from '../../coordinator/auth/user-store.js';

export interface AuthzDecision {
  readonly allowed: boolean;
  readonly reason: string;
  readonly rule?: string;
}

export interface Authorizer {
  adhoc(user: User): AuthzDecision;
}
