/**
 * Users, their groups, and API tokens (stored as SHA-256, expiring, revocable). Passwords,
 * when set, are scrypt hashes. Every change is audited.
 *
 * A running coordinator remembers the tokens it resolved (`cacheTokens`), so that an API
 * request does not read the store twice before its own work. What could make a remembered
 * token wrong is a write to users or tokens: one made here drops the cache when it commits;
 * one made by another process on the data dir (the CLI's `user token revoke`, `user disable`)
 * is noticed by polling the store's data version (SQLite's count of other connections'
 * commits), as agent revocations are (coordinator/registry/agent-registry.ts). Expiry, revoked
 * and disabled are judged on every request, from what was read.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, createHash } from 'node:crypto';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import * as q from '../store/user-queries.js';
import type { UserRow } from '../store/user-queries.js';
import { newId } from '../../core/ids.js';
import { HandrailError, invalidArgument, notFound } from '../../core/errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export const API_TOKEN_PREFIX = 'hru_';

/** A new random portal password (144 bits, URL-safe): what `user password --generate` and the demo hand out. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export interface User {
  readonly name: string;
  readonly groups: readonly string[];
  readonly createdAt: number;
  readonly disabled: boolean;
  readonly hasPassword: boolean;
}

export interface ApiTokenInfo {
  readonly id: string;
  readonly userName: string;
  readonly description: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const GROUP_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function toUser(r: UserRow): User {
  return { name: r.name, groups: JSON.parse(r.groups_json) as string[], createdAt: r.created_at, disabled: r.disabled_at !== null, hasPassword: r.password_hash !== null };
}

export type Actor = { kind: 'cli' | 'user' | 'system'; id: string };

/** At most this many tokens are remembered (past it the cache starts again empty). */
const MAX_CACHED_TOKENS = 10_000;

export class UserStore {
  /** Token hash → what the store said of it; only while foreign writes are watched (cacheTokens). */
  private tokenCache: Map<string, q.UserWithTokenRow> | undefined;
  /** Bumped whenever the cache is dropped: a read that started before may not fill it after. */
  private tokenGeneration = 0;
  private dataVersion: number | undefined;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    /** For failures of background writes (a token's last use); admin commands may leave it out. */
    private readonly log?: Logger,
  ) {}

  async add(name: string, groups: readonly string[], actor: Actor, now: number): Promise<User> {
    if (!USER_NAME.test(name)) throw invalidArgument(`user name "${name.slice(0, 80)}" is invalid: use lower-case letters, digits, . _ - (at most 63)`);
    for (const g of groups) if (!GROUP_NAME.test(g)) throw invalidArgument(`group name "${g.slice(0, 80)}" is invalid: use lower-case letters, digits, . _ -`);
    return this.db.write(async (tx) => {
      const existing = await q.findUser(tx, name);
      if (existing) throw new HandrailError('already_exists', `user ${name} already exists`, { hint: 'use `handrail user groups` to change groups' });
      await q.insertUser(tx, name, JSON.stringify([...new Set(groups)]), now);
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.userCreated, actor, data: { user: name, groups: [...new Set(groups)] } });
      return { name, groups: [...new Set(groups)], createdAt: now, disabled: false, hasPassword: false };
    });
  }

  async setGroups(name: string, groups: readonly string[], actor: Actor): Promise<void> {
    for (const g of groups) if (!GROUP_NAME.test(g)) throw invalidArgument(`group name "${g.slice(0, 80)}" is invalid`);
    await this.db.write(async (tx) => {
      const r = await q.setUserGroups(tx, name, JSON.stringify([...new Set(groups)]));
      if (r.changes === 0) throw notFound(`no user ${name}`);
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.userChanged, actor, data: { user: name, change: 'groups', groups: [...new Set(groups)] } });
    });
  }

  async setPassword(name: string, password: string, actor: Actor): Promise<void> {
    if (password.length < 8) throw invalidArgument('password must have at least 8 characters');
    const salt = randomBytes(16);
    const hash = await scrypt(password, salt, 32);
    const stored = `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`;
    await this.db.write(async (tx) => {
      const r = await q.setUserPasswordHash(tx, name, stored);
      if (r.changes === 0) throw notFound(`no user ${name}`);
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.userChanged, actor, data: { user: name, change: 'password' } });
    });
  }

  async checkPassword(name: string, password: string): Promise<User | undefined> {
    const r = await q.findUser(this.db, name);
    if (!r || !r.password_hash || r.disabled_at !== null) {
      await scrypt(password, Buffer.alloc(16), 32); // same cost whether or not the user exists
      return undefined;
    }
    const [, saltB64, hashB64] = r.password_hash.split('$');
    const expected = Buffer.from(hashB64 ?? '', 'base64');
    const actual = await scrypt(password, Buffer.from(saltB64 ?? '', 'base64'), 32);
    return expected.length === actual.length && timingSafeEqual(expected, actual) ? toUser(r) : undefined;
  }

  async get(name: string): Promise<User | undefined> {
    const r = await q.findUser(this.db, name);
    return r ? toUser(r) : undefined;
  }

  async list(): Promise<User[]> {
    return (await q.listUsers(this.db)).map(toUser);
  }

  async setDisabled(name: string, disabled: boolean, actor: Actor, now: number): Promise<void> {
    await this.db.write(async (tx) => {
      const r = await q.setUserDisabledAt(tx, name, disabled ? now : null);
      if (r.changes === 0) throw notFound(`no user ${name}`);
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.userChanged, actor, data: { user: name, change: disabled ? 'disabled' : 'enabled' } });
    });
  }

  async issueToken(name: string, ttlMs: number, description: string | null, actor: Actor, now: number): Promise<{ id: string; token: string; expiresAt: number }> {
    const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = newId('tkn');
    const expiresAt = now + ttlMs;
    await this.db.write(async (tx) => {
      const u = await q.findUser(tx, name);
      if (!u) throw notFound(`no user ${name} (add one with \`handrail user add ${name} --group GROUP\`)`);
      await q.insertApiToken(tx, { id, userName: name, tokenHash: sha256hex(token), description, createdAt: now, expiresAt });
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.apiTokenCreated, actor, data: { user: name, tokenId: id, expiresAt: new Date(expiresAt).toISOString(), description } });
    });
    return { id, token, expiresAt };
  }

  async revokeToken(id: string, actor: Actor, now: number): Promise<void> {
    await this.db.write(async (tx) => {
      const r = await q.revokeApiToken(tx, id, now);
      if (r.changes === 0) throw notFound(`no active API token ${id}`);
      tx.afterCommit(() => this.forgetTokens());
      await this.audit.append(tx, { type: AuditEvents.apiTokenRevoked, actor, data: { tokenId: id } });
    });
  }

  async tokens(name?: string): Promise<ApiTokenInfo[]> {
    const rows = await q.listApiTokens(this.db, name ? name : undefined);
    return rows.map((r) => ({ id: r.id, userName: r.user_name, description: r.description, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at }));
  }

  /** The user an API token belongs to, if the token is current. */
  async authenticateToken(token: string, now: number): Promise<User | undefined> {
    if (!token.startsWith(API_TOKEN_PREFIX) || token.length > 100) return undefined;
    const hash = sha256hex(token);
    let r = this.tokenCache?.get(hash);
    if (!r) {
      const generation = this.tokenGeneration;
      r = await q.findUserByTokenHash(this.db, hash);
      if (!r) return undefined;
      if (this.tokenCache && generation === this.tokenGeneration) {
        if (this.tokenCache.size >= MAX_CACHED_TOKENS) this.tokenCache.clear();
        this.tokenCache.set(hash, r);
      }
    }
    if (r.revoked_at !== null || r.expires_at <= now || r.disabled_at !== null) return undefined;
    if (r.last_used_at === null || now - r.last_used_at > 60_000) {
      const tokenId = r.token_id;
      r.last_used_at = now;
      // Best effort and off the request's path: a failure costs only the "last used" time.
      this.db
        .batch((tx) => q.touchApiToken(tx, tokenId, now))
        .catch((e: unknown) => this.log?.warn({ event: 'api_token.touch_failed', tokenId, err: e }, "recording an API token's last use failed"));
    }
    return toUser(r);
  }

  /**
   * Remembers resolved tokens from now on, and every `pollMs` drops them if another process
   * has written to the store since the last look; the returned function stops both. Only a
   * process that serves requests calls this (the coordinator); without it every request reads
   * the store.
   */
  async cacheTokens(pollMs: number): Promise<() => void> {
    await this.noticeForeignWrites();
    this.tokenCache = new Map();
    let polling = false;
    const timer = setInterval(() => {
      if (polling) return;
      polling = true;
      this.noticeForeignWrites()
        .catch((e: unknown) => {
          // Not knowing is treated as a change.
          this.forgetTokens();
          this.log?.warn({ event: 'api_token.poll_failed', err: e }, 'checking the store for other processes\' writes failed');
        })
        .finally(() => (polling = false));
    }, pollMs);
    timer.unref();
    return () => {
      clearInterval(timer);
      this.tokenCache = undefined;
      this.forgetTokens();
    };
  }

  /** Drops the remembered tokens if another connection has committed to the store since the last call. */
  async noticeForeignWrites(): Promise<void> {
    const version = await q.dataVersion(this.db);
    if (version !== this.dataVersion) this.forgetTokens();
    this.dataVersion = version;
  }

  private forgetTokens(): void {
    this.tokenGeneration++;
    this.tokenCache?.clear();
  }
}

function sha256hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
