/**
 * Password logins for the portal: throttle, check the scrypt hash, start a session; every
 * failure is audited (`login.failed`) with the name that was tried and the client's address.
 * Refusals from the throttle are not checked against the password at all, and are audited at
 * most once per name and address per minute so that a guesser cannot flood the log.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { Counters } from '../metrics/counters.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import type { User, UserStore } from './user-store.js';
import type { SessionLimits, SessionStore, WebSession } from './session-store.js';
import { LoginThrottle } from './login-throttle.js';

export interface LoginClient {
  /** The client's address as the web layer determined it (proxy-aware when configured). */
  readonly remote: string;
  readonly userAgent: string;
}

export type LoginResult =
  | { readonly ok: true; readonly user: User; readonly secret: string; readonly session: WebSession }
  | { readonly ok: false; readonly reason: 'invalid' }
  | { readonly ok: false; readonly reason: 'throttled'; readonly retryAfterMs: number };

export const LOGIN_FAILED_REASON = 'wrong user name or password';

export interface PasswordLoginDeps {
  readonly db: Database;
  readonly audit: AuditLog;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly limits: SessionLimits;
  readonly log: Logger;
  readonly counters?: Counters;
  readonly throttle?: LoginThrottle;
}

export class PasswordLogin {
  private readonly throttle: LoginThrottle;
  private readonly throttledAudit = new RateLimiter(1, 1 / 60);

  constructor(private readonly d: PasswordLoginDeps) {
    this.throttle = d.throttle ?? new LoginThrottle();
  }

  async attempt(userName: string, password: string, client: LoginClient, now: number): Promise<LoginResult> {
    const name = userName.trim().slice(0, 64);
    const verdict = this.throttle.check(name, client.remote, now);
    if (!verdict.allowed) {
      this.d.counters?.inc('login_failures_total', { reason: 'throttled' });
      this.d.log.warn({ event: 'login.throttled', user: name, remote: client.remote, by: verdict.by, retryAfterMs: verdict.retryAfterMs }, 'login refused: too many failed attempts');
      if (this.throttledAudit.take(`${name}\u0000${client.remote}`, now)) await this.auditFailure(name, client.remote, 'throttled');
      return { ok: false, reason: 'throttled', retryAfterMs: verdict.retryAfterMs };
    }
    const user = name === '' ? undefined : await this.d.users.checkPassword(name, password);
    if (!user) {
      this.throttle.recordFailure(name, client.remote, now);
      this.d.counters?.inc('login_failures_total', { reason: 'invalid' });
      this.d.log.warn({ event: 'login.failed', user: name, remote: client.remote }, 'login failed');
      await this.auditFailure(name, client.remote, LOGIN_FAILED_REASON);
      return { ok: false, reason: 'invalid' };
    }
    this.throttle.recordSuccess(name);
    const { secret, session } = await this.d.sessions.start(user.name, client, this.d.limits, now);
    this.d.log.info({ event: 'login.succeeded', user: user.name, remote: client.remote, sessionId: session.id }, 'logged in');
    return { ok: true, user, secret, session };
  }

  /** Ends the session (its user logging out). */
  async logout(session: WebSession, now: number): Promise<void> {
    await this.d.sessions.end(session.id, 'logout', { kind: 'user', id: session.userName }, now);
    this.d.log.info({ event: 'session.ended', user: session.userName, sessionId: session.id, reason: 'logout' }, 'logged out');
  }

  private async auditFailure(name: string, remote: string, reason: string): Promise<void> {
    await this.d.db.batch((tx) => this.d.audit.append(tx, { type: AuditEvents.loginFailed, actor: { kind: 'user', id: 'unknown' }, data: { user: name === '' ? 'unknown' : name, remote, reason } }));
  }
}
