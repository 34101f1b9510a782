/**
 * Bootstrap tokens: short-lived, limited-use secrets that let a new host enroll. Only the
 * SHA-256 of a token is stored. The decision whether a token admits an enrollment is pure
 * (`checkBootstrapToken`); the store calls live in token-store.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { globMatch } from '../../core/glob.js';

export { globMatch };

export const TOKEN_PREFIX = 'hrt_';

export interface BootstrapTokenRow {
  readonly id: string;
  readonly expiresAt: number;
  readonly usesAllowed: number;
  readonly uses: number;
  readonly revokedAt: number | null;
  readonly labels: Readonly<Record<string, string>>;
  /** Glob the CSR name must match; null allows any name. */
  readonly namePattern: string | null;
}

export type TokenRefusal = 'unknown' | 'expired' | 'used_up' | 'revoked' | 'name_not_allowed';

export function generateTokenSecret(random: (n: number) => Buffer = randomBytes): string {
  return TOKEN_PREFIX + random(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Cheap shape check before touching the store, so junk never reaches a query. */
export function looksLikeToken(token: string): boolean {
  return token.length === TOKEN_PREFIX.length + 43 && token.startsWith(TOKEN_PREFIX) && /^[A-Za-z0-9_-]+$/.test(token.slice(TOKEN_PREFIX.length));
}

export function checkBootstrapToken(
  row: BootstrapTokenRow | undefined,
  requestedName: string,
  nowMs: number,
): { ok: true } | { ok: false; reason: TokenRefusal; detail: string } {
  if (!row) return { ok: false, reason: 'unknown', detail: 'no such token' };
  if (row.revokedAt !== null) return { ok: false, reason: 'revoked', detail: `token ${row.id} was revoked` };
  if (nowMs >= row.expiresAt) return { ok: false, reason: 'expired', detail: `token ${row.id} expired at ${new Date(row.expiresAt).toISOString()}` };
  if (row.uses >= row.usesAllowed) return { ok: false, reason: 'used_up', detail: `token ${row.id} was already used ${row.uses} of ${row.usesAllowed} time(s)` };
  if (row.namePattern !== null && !globMatch(row.namePattern, requestedName)) {
    return { ok: false, reason: 'name_not_allowed', detail: `name "${requestedName}" is not allowed by token ${row.id} (allowed: ${row.namePattern})` };
  }
  return { ok: true };
}

/** Agent names: what a CSR's CN may hold. */
export function validAgentName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name);
}
