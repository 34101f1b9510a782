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
  loginSucceeded: 'login.succeeded',
  sessionEnded: 'session.ended',
  notificationSubscribed: 'notification.subscription_created',
  notificationUnsubscribed: 'notification.subscription_removed',
  notificationSecretRotated: 'notification.secret_rotated',
  notificationGaveUp: 'notification.delivery_failed',
  notificationSwitched: 'notification.subscription_changed',
  webhookDefined: 'webhook.defined',
  webhookRemoved: 'webhook.removed',
  webhookSecretRotated: 'webhook.secret_rotated',
  webhookAccepted: 'webhook.accepted',
  webhookRefused: 'webhook.refused',
  dispatchKeyPublished: 'dispatch_key.published',
  dispatchKeyActivated: 'dispatch_key.activated',
  dispatchKeyRetired: 'dispatch_key.retired',
  storeBackupTaken: 'store.backup_taken',
  storeRestored: 'store.restored',
  caRotationPlanned: 'ca.rotation_planned',
  requestRefused: 'request.refused',
  auditVerified: 'audit.verified',
  caSwitched: 'ca.switched',
  caRetired: 'ca.retired',
  caProbeIssued: 'ca.probe_certificate_issued',
  agentVersionRefused: 'agent.version_refused',
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
  'login.succeeded': 'HR5006',
  'session.ended': 'HR5007',
  'notification.subscription_created': 'HR7101',
  'notification.subscription_removed': 'HR7102',
  'notification.secret_rotated': 'HR7103',
  'notification.delivery_failed': 'HR7104',
  'notification.subscription_changed': 'HR7105',
  'webhook.defined': 'HR7001',
  'webhook.removed': 'HR7002',
  'webhook.secret_rotated': 'HR7003',
  'webhook.accepted': 'HR7004',
  'webhook.refused': 'HR7005',
  'dispatch_key.published': 'HR6002',
  'dispatch_key.activated': 'HR6003',
  'dispatch_key.retired': 'HR6004',
  'store.backup_taken': 'HR6005',
  'store.restored': 'HR6006',
  'ca.rotation_planned': 'HR6007',
  'request.refused': 'HR2005',
  'audit.verified': 'HR6010',
  'ca.switched': 'HR6020',
  'ca.retired': 'HR6021',
  'ca.probe_certificate_issued': 'HR6022',
  'agent.version_refused': 'HR1106',
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
  /**
   * `user`: the name that was tried (cut to 64 characters; it may name no user), or `unknown`
   * when none was given (an API token that did not authenticate).
   */
  'login.failed': { user: string; remote: string; reason: string };
  'key.rotated': { purpose: string; previousKeyId: string | null; keyId: string };
  /**
   * An agent's stream refused at the gateway (no certificate, another CA, expired, revoked,
   * unknown). `agentId`/`certificateSerial` are what the presented certificate claims, if any.
   * Emit at most one per remote address and reason per minute: refusals must not flood the log.
   */
  'agent.connection_refused': { agentId: string | null; certificateSerial: string | null; remote: string; reason: string; count: number };
  /** A portal login with a password: `sessionId` is the session's public id (never its cookie secret). */
  'login.succeeded': { user: string; remote: string; sessionId: string; expiresAt: string };
  /** A portal session ended before it expired: `reason` is `logout` or `revoked`. */
  'session.ended': { user: string; sessionId: string; reason: string };
  /**
   * Outbound notifications. `target` is the receiver's origin (scheme://host:port) only: a
   * webhook URL's path and query often carry a credential of their own (chat webhooks), so the
   * full URL stays in the store, shown to admins only. Secrets are never recorded.
   */
  'notification.subscription_created': { subscriptionId: string; target: string; scope: string; events: readonly string[]; enabled: boolean };
  'notification.subscription_removed': { subscriptionId: string; target: string; canceledDeliveries: number };
  'notification.secret_rotated': { subscriptionId: string; target: string };
  /** A delivery given up: after its last attempt, or at a permanent refusal (e.g. HTTP 400). */
  'notification.delivery_failed': { deliveryId: string; subscriptionId: string; executionId: string; event: string; target: string; attempts: number; reason: string };
  /** Switched on or off: while off, events queue no deliveries for it (those already queued still go out). */
  'notification.subscription_changed': { subscriptionId: string; target: string; enabled: boolean };
  /** An inbound webhook bound to a runbook, run as `runAs` (its secret is never recorded). */
  'webhook.defined': { hookId: string; runbookId: string; runAs: string; mapping: Json; description: string | null };
  'webhook.removed': { hookId: string; runbookId: string };
  /** `previousValidUntil`: until when the replaced secret is still accepted. */
  'webhook.secret_rotated': { hookId: string; previousValidUntil: string };
  'webhook.accepted': { hookId: string; deliveryId: string; executionId: string; runbookId: string; runAs: string };
  /**
   * A delivery refused (bad signature, replay, oversized, unmapped, policy…). `hookId` is null
   * for a hook that does not exist. At most one per hook and reason per minute: `count` is how
   * many this record stands for (the ones suppressed since the last record, plus itself).
   */
  'webhook.refused': { hookId: string | null; deliveryId: string | null; reason: string; detail: string; remote: string; count: number };
  /** A new dispatch key sent to agents (`keys rotate dispatch`); it signs nothing until activated. */
  'dispatch_key.published': { keyId: string; version: number; onlineAgents: number };
  /** Signing switched to the published key: every online agent acknowledged it, or an admin forced it (`agentsLacking` then names who did not). */
  'dispatch_key.activated': { keyId: string; previousKeyId: string; version: number; forced: boolean; agentsLacking: readonly string[] };
  /** Keys agents stop trusting (`keys retire dispatch`); `agentsLacking`: agents that had not yet taken the active key (forced). */
  'dispatch_key.retired': { keyIds: readonly string[]; version: number; forced: boolean; agentsLacking: readonly string[] };
  /** `handrail backup`: the audit head inside the copy and the SHA-256 of the copied store file (the file holds keys: it is sealed). */
  'store.backup_taken': { file: string; auditSeq: number; auditHash: string; storeSha256: string; storeBytes: number; keyFiles: number };
  /** `handrail restore`: written into the restored store, after the records the backup held. */
  'store.restored': { takenAt: string; auditSeq: number; auditHash: string; storeSha256: string; forced: boolean };
  /**
   * `handrail ca rotate`: the next CA, trusted beside the current one; `bundleVersion`: the CA
   * bundle (both CAs) the running coordinator sends every agent (absent in records of releases
   * that did not send one).
   */
  'ca.rotation_planned': { currentFingerprint256: string; nextFingerprint256: string; nextSubject: string; nextNotAfter: string; bundleVersion?: number };
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
  /**
   * A verification of the whole live log (the portal's Audit trail page, POST
   * /api/v1/audit/verifications): the chain, every signature, agent certificates and outputs, as
   * `handrail audit verify --data-dir` checks them. `verificationId`: its row in
   * audit_verifications; `records`/`lastSeq`: what was checked (this record comes after them);
   * `firstBadSeq`/`reason`: the first bad record (seq null: a problem of the log as a whole), null when ok.
   */
  'audit.verified': { verificationId: number; ok: boolean; records: number; firstSeq: number | null; lastSeq: number | null; firstBadSeq: number | null; reason: string | null; source: string };
  /**
   * `handrail ca switch`: the next CA now issues (server certificate, enrollments, renewals); the
   * previous one stays trusted. `agentsLacking`: agents that did not hold the CA bundle (forced).
   */
  'ca.switched': { currentFingerprint256: string; previousFingerprint256: string; bundleVersion: number; serverNames: readonly string[]; forced: boolean; agentsLacking: readonly string[] };
  /**
   * `handrail ca retire`: the previous CA is trusted no more (its key deleted); agents get a
   * bundle naming the current CA alone. `agentsLeftBehind`: agents whose certificate the retired
   * CA issued (forced): they must enroll again.
   */
  'ca.retired': { retiredFingerprint256: string; currentFingerprint256: string; bundleVersion: number; forced: boolean; agentsLeftBehind: readonly string[] };
  /** `handrail ca issue-probe`: a client certificate for health and reflection only (never an agent stream). */
  'ca.probe_certificate_issued': { name: string; certificateSerial: string; certificateFingerprint256: string; notAfter: string };
  /**
   * An agent refused for its version (at enrollment or on its stream): `upgrade` names the side
   * to upgrade. At most a few per remote address a minute: `suppressed` counts the refusals not
   * recorded since the previous record of that address.
   */
  'agent.version_refused': { agentId: string | null; name: string | null; agentVersion: string; coordinatorVersion: string; upgrade: string; stage: string; remote: string; suppressed: number };
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
