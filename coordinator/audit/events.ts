/**
 * THE catalog of audit events: every type, its stable code and its payload shape, in one
 * place. Emit sites use `AuditEvents.x` (or `auditEvent(AuditEvents.x, …)`), never a string
 * literal; test/unit/audit-record.test.ts pins the signed bytes of one record of every type.
 *
 * New types go at the END of `AuditEvents` (the golden file chains records in this order) and
 * get a new code; a code is never reused or renumbered, whatever happens to its type.
 *
 * Not an event: checkpoints. A checkpoint signs the head of the log, so it cannot also be a
 * record in it (it would change the head it signs); checkpoints have their own signed format and
 * table (docs/audit-format.md) and are logged for shipping as `audit.checkpoint` log lines.
 */
import type { Json } from './secrets.js';

export const AuditEvents = {
  tokenCreated: 'token.created',
  tokenRevoked: 'token.revoked',
  agentEnrolled: 'agent.enrolled',
  agentEnrollRefused: 'agent.enroll_refused',
  agentRenewed: 'agent.renewed',
  agentRevoked: 'agent.revoked',
  executionRequested: 'execution.requested',
  policyDecided: 'policy.decided',
  approvalGranted: 'approval.granted',
  approvalDenied: 'approval.denied',
  stepDispatched: 'step.dispatched',
  stepRejected: 'step.rejected',
  stepResult: 'step.result',
  stepAbandoned: 'step.abandoned',
  stepLocalResult: 'step.local_result',
  executionCompleted: 'execution.completed',
  executionCanceled: 'execution.canceled',
  runbooksReloaded: 'runbooks.reloaded',
  policiesReloaded: 'policies.reloaded',
  userCreated: 'user.created',
  userChanged: 'user.changed',
  apiTokenCreated: 'api_token.created',
  apiTokenRevoked: 'api_token.revoked',
  loginFailed: 'login.failed',
  keyRotated: 'key.rotated',
  agentConnectionRefused: 'agent.connection_refused',
  requestRefused: 'request.refused',
} as const;

export type AuditEventType = (typeof AuditEvents)[keyof typeof AuditEvents];

/** Stable numeric codes: never reuse or renumber one. */
export const AUDIT_CODES: Readonly<Record<AuditEventType, string>> = {
  'token.created': 'HR1001',
  'token.revoked': 'HR1002',
  'agent.enrolled': 'HR1101',
  'agent.enroll_refused': 'HR1102',
  'agent.renewed': 'HR1103',
  'agent.revoked': 'HR1104',
  'execution.requested': 'HR2001',
  'policy.decided': 'HR2002',
  'approval.granted': 'HR2101',
  'approval.denied': 'HR2102',
  'step.dispatched': 'HR3001',
  'step.rejected': 'HR3002',
  'step.result': 'HR3003',
  'step.abandoned': 'HR3004',
  'step.local_result': 'HR3005',
  'execution.completed': 'HR2003',
  'execution.canceled': 'HR2004',
  'runbooks.reloaded': 'HR4001',
  'policies.reloaded': 'HR4002',
  'user.created': 'HR5001',
  'user.changed': 'HR5002',
  'api_token.created': 'HR5003',
  'api_token.revoked': 'HR5004',
  'login.failed': 'HR5005',
  'key.rotated': 'HR6001',
  'agent.connection_refused': 'HR1105',
  'request.refused': 'HR2005',
};

/** Every event type, in catalog order. */
export const AUDIT_EVENT_TYPES: readonly AuditEventType[] = Object.values(AuditEvents);

export type ActorKind = 'user' | 'agent' | 'system' | 'cli';
export interface Actor {
  readonly kind: ActorKind;
  readonly id: string;
}

type Labels = Readonly<Record<string, string>>;

/** Payload of each event type. */
export interface AuditPayloads {
  'token.created': { tokenId: string; labels: Labels; expiresAt: string; uses: number; namePattern: string | null };
  'token.revoked': { tokenId: string };
  'agent.enrolled': { agentId: string; name: string; tokenId: string; labels: Labels; certificateSerial: string; certificateFingerprint256: string; notAfter: string; remote: string };
  'agent.enroll_refused': { name: string; reason: string; tokenId: string | null; remote: string };
  'agent.renewed': { agentId: string; previousSerial: string; certificateSerial: string; notAfter: string };
  'agent.revoked': { agentId: string; name: string; reason: string };
  'execution.requested': {
    executionId: string;
    kind: 'runbook' | 'adhoc';
    runbookId: string | null;
    runbookDigest: string | null;
    options: { readonly [k: string]: Json };
    targets: readonly string[] | string;
    argv?: readonly string[];
    script?: { interpreter: readonly string[] } | null;
    reason?: string;
  };
  /**
   * `requestId`: the id of the API request (its X-Request-Id), null when no request caused it;
   * `rule`: the `<policy>/<rule>` that decided, or DEFAULT_DENY_RULE when none allowed it.
   * Refusals are rate-limited like `request.refused` (per user, action and rule); `suppressed`,
   * when present, counts the refused runs of that key not recorded since the previous record.
   */
  'policy.decided': { requestId: string | null; executionId: string | null; user: string; action: string; runbookId: string | null; allowed: boolean; rule: string; reason: string; suppressed?: number };
  'approval.granted': { executionId: string; approver: string; comment: string; remaining: number };
  'approval.denied': { executionId: string; approver: string; comment: string };
  'step.dispatched': {
    executionId: string;
    stepRunId: string;
    agentId: string;
    name: string;
    argv: readonly string[];
    script: { interpreter: readonly string[]; sha256: string } | null;
    env: Labels;
    timeoutMs: number;
    notAfter: string;
    requestSha256: string;
    keyId: string;
    signature: string;
  };
  'step.rejected': { executionId: string; stepRunId: string; agentId: string; reason: string; detail: string };
  'step.result': { executionId: string; stepRunId: string; agentId: string; status: string; exitCode: number; certificateSerial: string; payloadType: string; payload: string; signature: string; late?: boolean };
  'step.abandoned': { executionId: string; stepRunId: string; agentId: string; state: string; reason: string };
  'step.local_result': { executionId: string; stepRunId: string; agentId: string; name: string; kind: string; state: string; error: string | null; method?: string; url?: string; status?: number | null; sleepMs?: number };
  'execution.completed': { executionId: string; state: string; reason?: string };
  'execution.canceled': { executionId: string };
  'runbooks.reloaded': { added: readonly { id: string; digest: string }[]; updated: readonly { id: string; digest: string }[]; removed: readonly string[]; problems: number };
  'policies.reloaded': { policies: readonly { name: string; digest: string }[]; problems: number };
  'user.created': { user: string; groups: readonly string[] };
  'user.changed': { user: string; change: string; groups?: readonly string[] };
  'api_token.created': { user: string; tokenId: string; expiresAt: string; description: string | null };
  'api_token.revoked': { tokenId: string };
  'login.failed': { user: string; remote: string; reason: string };
  'key.rotated': { purpose: string; previousKeyId: string | null; keyId: string };
  /**
   * An agent's stream refused at the gateway (no certificate, another CA, expired, revoked,
   * unknown). `agentId`/`certificateSerial` are what the presented certificate claims, if any.
   * Emit at most one per remote address and reason per minute: refusals must not flood the log.
   */
  'agent.connection_refused': { agentId: string | null; certificateSerial: string | null; remote: string; reason: string; count: number };
  /**
   * A state-changing API request refused for authorization reasons (policy, the two-person
   * rule, not an approver, or an execution the user may not see, which they were told is not
   * found). `requestId`: its X-Request-Id; `action`: approve, deny, cancel, adhoc or reload;
   * `targetId`: the execution (or the ad-hoc request's agents), null for a reload; `rule`: the
   * `<policy>/<rule>` that refused, DEFAULT_DENY_RULE, or one of REFUSAL_RULES. At most a few
   * per user, action and rule a minute (coordinator/audit/refusal-log.ts): `suppressed` counts
   * the refusals of that key not recorded since its previous record.
   */
  'request.refused': { requestId: string | null; user: string; action: string; targetId: string | null; runbookId: string | null; rule: string; reason: string; suppressed: number };
}

/**
 * The `rule` of a refusal no policy rule made: the approval checks of
 * coordinator/engine/approval-rules.ts. Like DEFAULT_DENY_RULE, none can name a policy rule.
 */
export const REFUSAL_RULES = {
  twoPersonRule: 'two-person-rule',
  alreadyDecided: 'already-decided',
  notAnApprover: 'not-an-approver',
} as const;

/** The `rule` of a decision no rule made (default deny). Rule ids are `<policy>/<rule>`, so it cannot name one. */
export const DEFAULT_DENY_RULE = 'default-deny';

export type AuditEventInput = {
  [T in AuditEventType]: { readonly type: T; readonly actor: Actor; readonly data: AuditPayloads[T] };
}[AuditEventType];

/** Builds an event with its payload type checked against the catalog. */
export function auditEvent<T extends AuditEventType>(type: T, actor: Actor, data: AuditPayloads[T]): AuditEventInput {
  return { type, actor, data } as AuditEventInput;
}

/** The event code of a type, e.g. `HR3003` for `step.result`. */
export function auditCode(type: AuditEventType): string {
  return AUDIT_CODES[type];
}
