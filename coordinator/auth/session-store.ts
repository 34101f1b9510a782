/**
 * Portal sessions (web logins). The browser holds a random secret (`hrs_…`) in a cookie; the
 * store keeps only its SHA-256, so neither a copy of the database nor an audit export lets
 * anyone act as a logged-in user. A session ends at its absolute expiry, after its idle timeout
 * without a request, or when it is ended (logout, revocation); starting and ending one is
 * audited, expiry is not (it is a property of the row).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../store/database.js';
import * as q from '../store/user-queries.js';
import type { SessionRow } from '../store/user-queries.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents, type Actor } from '../audit/events.js';
import { newId } from '../../core/ids.js';

export const SESSION_SECRET_PREFIX = 'hrs_';

export interface SessionLimits {
  /** A session ends this long after its last request. */
  readonly idleMs: number;
  /** … and this long after it started, however busy. */
  readonly absoluteMs: number;
}

export interface WebSession {
  /** Public id (`ses-…`): audit records and revocation name it; it opens nothing. */
  readonly id: string;
  readonly userName: string;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  readonly expiresAt: number;
  readonly idleTimeoutMs: number;
  readonly remote: string;
  readonly userAgent: string;
}

export type SessionEndReason = 'logout' | 'revoked';


/** How often a session's last use is written: idle expiry is exact to within this. */
const TOUCH_EVERY_MS = 30_000;
/** Rows of sessions that ended this long ago are deleted when a new session starts. */
const KEEP_ENDED_MS = 7 * 86_400_000;

const toSession = (r: SessionRow): WebSession => ({
  id: r.id,
  userName: r.user_name,
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  expiresAt: r.expires_at,
  idleTimeoutMs: r.idle_timeout_ms,
  remote: r.remote,
  userAgent: r.user_agent,
});

export function hashSessionSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Whether a stored session is still usable at `now` (pure). */
export function sessionLive(s: Pick<WebSession, 'expiresAt' | 'lastSeenAt' | 'idleTimeoutMs'> & { readonly endedAt: number | null }, now: number): boolean {
  return s.endedAt === null && now < s.expiresAt && now < s.lastSeenAt + s.idleTimeoutMs;
}

export class SessionStore {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
  ) {}

  /** Starts a session for a user who just proved who they are; returns the cookie secret (shown once). */
  async start(userName: string, client: { readonly remote: string; readonly userAgent: string }, limits: SessionLimits, now: number): Promise<{ secret: string; session: WebSession }> {
    const secret = SESSION_SECRET_PREFIX + randomBytes(32).toString('base64url');
    const session: WebSession = {
      id: newId('ses'),
      userName,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + limits.absoluteMs,
      idleTimeoutMs: limits.idleMs,
      remote: client.remote.slice(0, 100),
      userAgent: client.userAgent.slice(0, 300),
    };
    await this.db.write(async (tx) => {
      await q.deleteSessionsEndedBefore(tx, now - KEEP_ENDED_MS);
      await q.insertSession(tx, { id: session.id, secretSha256: hashSessionSecret(secret), userName, createdAt: now, expiresAt: session.expiresAt, idleTimeoutMs: limits.idleMs, remote: session.remote, userAgent: session.userAgent });
      await this.audit.append(tx, {
        type: AuditEvents.loginSucceeded,
        actor: { kind: 'user', id: userName },
        data: { user: userName, remote: session.remote, sessionId: session.id, expiresAt: new Date(session.expiresAt).toISOString() },
      });
    });
    return { secret, session };
  }

  /**
   * The live session a cookie secret names, or undefined (unknown, ended, expired, idle too
   * long). Records the use, so that an active session does not go idle.
   */
  async resolve(secret: string, now: number): Promise<WebSession | undefined> {
    if (!secret.startsWith(SESSION_SECRET_PREFIX) || secret.length > 100) return undefined;
    const r = await q.findSessionBySecretHash(this.db, hashSessionSecret(secret));
    if (!r || !sessionLive({ expiresAt: r.expires_at, lastSeenAt: r.last_seen_at, idleTimeoutMs: r.idle_timeout_ms, endedAt: r.ended_at }, now)) return undefined;
    if (now - r.last_seen_at >= TOUCH_EVERY_MS) {
      await this.db.batch((tx) => q.touchSession(tx, r.id, now));
      return toSession({ ...r, last_seen_at: now });
    }
    return toSession(r);
  }

  /** Ends one session now (logout, revocation); false if it had already ended. */
  async end(sessionId: string, reason: SessionEndReason, actor: Actor, now: number): Promise<boolean> {
    return this.db.write(async (tx) => {
      const r = await q.findSession(tx, sessionId);
      if (!r || r.ended_at !== null) return false;
      await q.endSession(tx, sessionId, now, reason);
      await this.audit.append(tx, { type: AuditEvents.sessionEnded, actor, data: { user: r.user_name, sessionId, reason } });
      return true;
    });
  }

  /** Ends every live session of a user (a password change, a disabled account); returns how many. */
  async endAll(userName: string, reason: SessionEndReason, actor: Actor, now: number): Promise<number> {
    const live = await this.active(userName, now);
    let n = 0;
    for (const s of live) if (await this.end(s.id, reason, actor, now)) n++;
    return n;
  }

  /** Live sessions, newest first; of one user, or of everyone. */
  async active(userName: string | undefined, now: number): Promise<WebSession[]> {
    const rows = await q.openSessions(this.db, now, userName);
    return rows.filter((r) => sessionLive({ expiresAt: r.expires_at, lastSeenAt: r.last_seen_at, idleTimeoutMs: r.idle_timeout_ms, endedAt: r.ended_at }, now)).map(toSession);
  }
}
