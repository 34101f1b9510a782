/**
 * The agents aggregate's SQL: enrolled agents, the certificates issued to them, and the
 * bootstrap tokens they enroll with. Callers (coordinator/registry/) pass domain values and a
 * Queryable: the database, or the transaction a change commits in with its audit record.
 */
import type { Queryable, RunResult, Tx } from './database.js';

export interface AgentRow {
  id: string;
  name: string;
  labels_json: string;
  pinned_labels_json: string;
  facts_json: string;
  enrolled_at: number;
  cert_serial: string;
  cert_not_after: number;
  connected: number;
  last_seen_at: number | null;
  heartbeat_interval_ms: number | null;
  last_address: string | null;
  version: string | null;
  revoked_at: number | null;
  revoke_reason: string | null;
}

export interface CertificateRow {
  serial: string;
  agent_id: string;
  fingerprint256: string;
  certificate_pem: string;
  not_after: number;
  revoked_at: number | null;
}

export interface CertificateToStore {
  readonly serial: string;
  readonly fingerprint256: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly pem: string;
}

export interface BootstrapTokenDbRow {
  id: string;
  expires_at: number;
  uses_allowed: number;
  uses: number;
  revoked_at: number | null;
  labels_json: string;
  name_pattern: string | null;
  created_at: number;
  description: string | null;
  created_by: string;
}

// ---- agents

export function listAgents(q: Queryable): Promise<AgentRow[]> {
  return q.all<AgentRow>('SELECT * FROM agents ORDER BY name, id');
}

/** Several agents in one statement, whatever the number of ids. */
export function agentsByIds(q: Queryable, ids: readonly string[]): Promise<AgentRow[]> {
  return q.all<AgentRow>('SELECT * FROM agents WHERE id IN (SELECT value FROM json_each(?))', [JSON.stringify(ids)]);
}

export function findAgent(q: Queryable, id: string): Promise<AgentRow | undefined> {
  return q.get<AgentRow>('SELECT * FROM agents WHERE id = ?', [id]);
}

export function insertAgent(
  q: Queryable,
  a: { id: string; name: string; labelsJson: string; pinnedLabelsJson: string; factsJson: string; tokenId: string; enrolledAt: number; certSerial: string; certNotAfter: number; version: string },
): Promise<RunResult> {
  return q.run(
    `INSERT INTO agents (id, name, labels_json, pinned_labels_json, facts_json, token_id, enrolled_at, cert_serial, cert_not_after, version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [a.id, a.name, a.labelsJson, a.pinnedLabelsJson, a.factsJson, a.tokenId, a.enrolledAt, a.certSerial, a.certNotAfter, a.version],
  );
}

export function setCurrentCertificate(q: Queryable, agentId: string, serial: string, notAfter: number): Promise<RunResult> {
  return q.run('UPDATE agents SET cert_serial = ?, cert_not_after = ? WHERE id = ?', [serial, notAfter, agentId]);
}

export function revokeAgent(q: Queryable, agentId: string, at: number, reason: string): Promise<RunResult> {
  return q.run('UPDATE agents SET revoked_at = ?, revoke_reason = ? WHERE id = ?', [at, reason, agentId]);
}

export async function revokedAgentIds(q: Queryable): Promise<string[]> {
  return (await q.all<{ id: string }>('SELECT id FROM agents WHERE revoked_at IS NOT NULL')).map((r) => r.id);
}

export function markAgentConnected(
  q: Queryable,
  agentId: string,
  live: { at: number; heartbeatIntervalMs: number; address: string; factsJson: string; labelsJson: string; version: string },
): Promise<RunResult> {
  return q.run('UPDATE agents SET connected = 1, last_seen_at = ?, heartbeat_interval_ms = ?, last_address = ?, facts_json = ?, labels_json = ?, version = ? WHERE id = ?', [
    live.at, live.heartbeatIntervalMs, live.address, live.factsJson, live.labelsJson, live.version, agentId,
  ]);
}

export function markAgentDisconnected(q: Queryable, agentId: string, at: number): Promise<RunResult> {
  return q.run('UPDATE agents SET connected = 0, last_seen_at = ? WHERE id = ?', [at, agentId]);
}

/** Last-seen times of many agents, merged into a few statements at COMMIT. */
export function queueLastSeen(tx: Tx, seen: ReadonlyMap<string, number>): void {
  for (const [id, at] of seen) tx.queueUpdate('agents', { id }, { last_seen_at: at });
}

export function markAllDisconnected(q: Queryable): Promise<RunResult> {
  return q.run('UPDATE agents SET connected = 0 WHERE connected = 1');
}

/** Raises (never lowers) the dispatch key set version an agent holds. */
export function raiseDispatchKeysVersion(q: Queryable, agentId: string, version: number): Promise<RunResult> {
  return q.run('UPDATE agents SET dispatch_keys_version = ? WHERE id = ? AND (dispatch_keys_version IS NULL OR dispatch_keys_version < ?)', [version, agentId, version]);
}

export function dispatchKeyVersions(q: Queryable): Promise<Array<{ id: string; name: string; connected: number; dispatch_keys_version: number | null }>> {
  return q.all('SELECT id, name, connected, dispatch_keys_version FROM agents WHERE revoked_at IS NULL ORDER BY name, id');
}

// ---- certificates

/** The CA bundle version an agent acknowledged: only ever raised (CA roll-over, migration 11). */
export function raiseCaBundleVersion(q: Queryable, agentId: string, version: number): Promise<RunResult> {
  return q.run('UPDATE agents SET ca_bundle_version = ? WHERE id = ? AND (ca_bundle_version IS NULL OR ca_bundle_version < ?)', [version, agentId, version]);
}

/** Unrevoked agents with the CA bundle version each acknowledged and its current certificate. */
export function caBundleVersions(q: Queryable): Promise<Array<{ id: string; name: string; connected: number; ca_bundle_version: number | null; certificate_pem: string | null }>> {
  return q.all(
    'SELECT a.id, a.name, a.connected, a.ca_bundle_version, c.certificate_pem FROM agents a LEFT JOIN agent_certificates c ON c.serial = a.cert_serial WHERE a.revoked_at IS NULL ORDER BY a.name, a.id',
  );
}

export function insertCertificate(q: Queryable, agentId: string, cert: CertificateToStore, issuedAt: number): Promise<RunResult> {
  return q.run(
    `INSERT INTO agent_certificates (serial, agent_id, fingerprint256, not_before, not_after, certificate_pem, issued_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [cert.serial, agentId, cert.fingerprint256, cert.notBefore, cert.notAfter, cert.pem, issuedAt],
  );
}

export function findCertificate(q: Queryable, serial: string): Promise<CertificateRow | undefined> {
  return q.get<CertificateRow>('SELECT serial, agent_id, fingerprint256, certificate_pem, not_after, revoked_at FROM agent_certificates WHERE serial = ?', [serial]);
}

/** Every certificate ever issued (audit bundles carry those their results were signed under). */
export function allCertificates(q: Queryable): Promise<Array<{ serial: string; agent_id: string; certificate_pem: string }>> {
  return q.all('SELECT serial, agent_id, certificate_pem FROM agent_certificates');
}

export function revokeCertificatesOf(q: Queryable, agentId: string, at: number): Promise<RunResult> {
  return q.run('UPDATE agent_certificates SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL', [at, agentId]);
}

// ---- bootstrap tokens

export function insertBootstrapToken(
  q: Queryable,
  t: { id: string; tokenHash: string; createdAt: number; expiresAt: number; usesAllowed: number; labelsJson: string; namePattern: string | null; description: string | null; createdBy: string },
): Promise<RunResult> {
  return q.run(
    `INSERT INTO bootstrap_tokens (id, token_hash, created_at, expires_at, uses_allowed, labels_json, name_pattern, description, created_by)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [t.id, t.tokenHash, t.createdAt, t.expiresAt, t.usesAllowed, t.labelsJson, t.namePattern, t.description, t.createdBy],
  );
}

export function listBootstrapTokens(q: Queryable): Promise<BootstrapTokenDbRow[]> {
  return q.all<BootstrapTokenDbRow>('SELECT * FROM bootstrap_tokens ORDER BY created_at');
}

export function revokeBootstrapToken(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run('UPDATE bootstrap_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id]);
}

export function findBootstrapTokenByHash(q: Queryable, tokenHash: string): Promise<BootstrapTokenDbRow | undefined> {
  return q.get<BootstrapTokenDbRow>('SELECT * FROM bootstrap_tokens WHERE token_hash = ?', [tokenHash]);
}

/** Spends one use if any is left; changes is 0 when none was. */
export function spendBootstrapTokenUse(q: Queryable, id: string): Promise<RunResult> {
  return q.run('UPDATE bootstrap_tokens SET uses = uses + 1 WHERE id = ? AND uses < uses_allowed', [id]);
}
