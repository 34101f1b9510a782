/**
 * The users aggregate's SQL: users, their API tokens and their portal sessions. Callers
 * (coordinator/auth/) pass domain values and a Queryable — the database for a read, or the
 * transaction a change commits in together with its audit record.
 */
import type { Queryable, RunResult } from './database.js';

export interface UserRow {
  name: string;
  groups_json: string;
  password_hash: string | null;
  created_at: number;
  disabled_at: number | null;
}

export interface ApiTokenRow {
  id: string;
  user_name: string;
  description: string | null;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export type UserWithTokenRow = UserRow & { token_id: string; expires_at: number; revoked_at: number | null; last_used_at: number | null };

export interface SessionRow {
  id: string;
  user_name: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  idle_timeout_ms: number;
  remote: string;
  user_agent: string;
  ended_at: number | null;
}

// ---- users

export function findUser(q: Queryable, name: string): Promise<UserRow | undefined> {
  return q.get<UserRow>('SELECT * FROM users WHERE name = ?', [name]);
}

export function listUsers(q: Queryable): Promise<UserRow[]> {
  return q.all<UserRow>('SELECT * FROM users ORDER BY name');
}

export function insertUser(q: Queryable, name: string, groupsJson: string, createdAt: number): Promise<RunResult> {
  return q.run('INSERT INTO users (name, groups_json, created_at) VALUES (?, ?, ?)', [name, groupsJson, createdAt]);
}

export function setUserGroups(q: Queryable, name: string, groupsJson: string): Promise<RunResult> {
  return q.run('UPDATE users SET groups_json = ? WHERE name = ?', [groupsJson, name]);
}

export function setUserPasswordHash(q: Queryable, name: string, hash: string): Promise<RunResult> {
  return q.run('UPDATE users SET password_hash = ? WHERE name = ?', [hash, name]);
}

export function setUserDisabledAt(q: Queryable, name: string, disabledAt: number | null): Promise<RunResult> {
  return q.run('UPDATE users SET disabled_at = ? WHERE name = ?', [disabledAt, name]);
}

// ---- API tokens

export function insertApiToken(q: Queryable, t: { id: string; userName: string; tokenHash: string; description: string | null; createdAt: number; expiresAt: number }): Promise<RunResult> {
  return q.run('INSERT INTO api_tokens (id, user_name, token_hash, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [t.id, t.userName, t.tokenHash, t.description, t.createdAt, t.expiresAt]);
}

export function revokeApiToken(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id]);
}

/** A user's tokens, or everyone's, oldest first. */
export function listApiTokens(q: Queryable, userName?: string): Promise<ApiTokenRow[]> {
  return userName !== undefined ? q.all<ApiTokenRow>('SELECT * FROM api_tokens WHERE user_name = ? ORDER BY created_at', [userName]) : q.all<ApiTokenRow>('SELECT * FROM api_tokens ORDER BY created_at');
}

export function findUserByTokenHash(q: Queryable, tokenHash: string): Promise<UserWithTokenRow | undefined> {
  return q.get<UserWithTokenRow>('SELECT u.*, t.id AS token_id, t.expires_at, t.revoked_at, t.last_used_at FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?', [tokenHash]);
}

/**
 * SQLite's data version for this connection: it changes when another connection (another
 * process on the data dir) commits, never for this connection's own writes.
 */
export async function dataVersion(q: Queryable): Promise<number> {
  return (await q.get<{ data_version: number }>('PRAGMA data_version'))?.data_version ?? 0;
}

export function touchApiToken(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', [at, id]);
}

// ---- portal sessions

export function deleteSessionsEndedBefore(q: Queryable, before: number): Promise<RunResult> {
  return q.run('DELETE FROM web_sessions WHERE expires_at < ? OR ended_at < ?', [before, before]);
}

export function insertSession(
  q: Queryable,
  s: { id: string; secretSha256: string; userName: string; createdAt: number; expiresAt: number; idleTimeoutMs: number; remote: string; userAgent: string },
): Promise<RunResult> {
  return q.run(
    'INSERT INTO web_sessions (id, secret_sha256, user_name, created_at, last_seen_at, expires_at, idle_timeout_ms, remote, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [s.id, s.secretSha256, s.userName, s.createdAt, s.createdAt, s.expiresAt, s.idleTimeoutMs, s.remote, s.userAgent],
  );
}

export function findSessionBySecretHash(q: Queryable, secretSha256: string): Promise<SessionRow | undefined> {
  return q.get<SessionRow>('SELECT * FROM web_sessions WHERE secret_sha256 = ?', [secretSha256]);
}

export function findSession(q: Queryable, id: string): Promise<SessionRow | undefined> {
  return q.get<SessionRow>('SELECT * FROM web_sessions WHERE id = ?', [id]);
}

export function touchSession(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run('UPDATE web_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?', [at, id, at]);
}

export function endSession(q: Queryable, id: string, at: number, reason: string): Promise<RunResult> {
  return q.run('UPDATE web_sessions SET ended_at = ?, end_reason = ? WHERE id = ?', [at, reason, id]);
}

/** Sessions not ended and not past their absolute expiry, newest first; of one user or everyone. */
export function openSessions(q: Queryable, now: number, userName?: string): Promise<SessionRow[]> {
  return userName === undefined
    ? q.all<SessionRow>('SELECT * FROM web_sessions WHERE ended_at IS NULL AND expires_at > ? ORDER BY created_at DESC', [now])
    : q.all<SessionRow>('SELECT * FROM web_sessions WHERE ended_at IS NULL AND expires_at > ? AND user_name = ? ORDER BY created_at DESC', [now, userName]);
}
