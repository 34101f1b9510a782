/** Bootstrap tokens in the store: create, list, revoke, and consume during enrollment. */
import type { Tx, Database } from '../store/database.js';
import * as q from '../store/agent-queries.js';
import type { BootstrapTokenDbRow } from '../store/agent-queries.js';
import { newId } from '../../core/ids.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import {
  checkBootstrapToken,
  generateTokenSecret,
  hashToken,
  looksLikeToken,
  type BootstrapTokenRow,
  type TokenRefusal,
} from './bootstrap-token.js';

export interface CreateTokenInput {
  readonly labels: Readonly<Record<string, string>>;
  readonly ttlMs: number;
  readonly uses: number;
  readonly namePattern: string | null;
  readonly description: string | null;
  readonly createdBy: string;
  /** Who `createdBy` is, for the audit record: a CLI user on the coordinator host (default) or an API user. */
  readonly actorKind?: 'cli' | 'user';
}

export interface CreatedToken {
  readonly id: string;
  /** The secret: shown once, never stored. */
  readonly token: string;
  readonly expiresAt: number;
}


function toRow(r: BootstrapTokenDbRow): BootstrapTokenRow {
  return {
    id: r.id,
    expiresAt: r.expires_at,
    usesAllowed: r.uses_allowed,
    uses: r.uses,
    revokedAt: r.revoked_at,
    labels: JSON.parse(r.labels_json) as Record<string, string>,
    namePattern: r.name_pattern,
  };
}

export class TokenStore {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
  ) {}

  async create(input: CreateTokenInput, now: number): Promise<CreatedToken> {
    const token = generateTokenSecret();
    const id = newId('tok');
    const expiresAt = now + input.ttlMs;
    await this.db.write(async (tx) => {
      await q.insertBootstrapToken(tx, {
        id, tokenHash: hashToken(token), createdAt: now, expiresAt, usesAllowed: input.uses, labelsJson: JSON.stringify(input.labels),
        namePattern: input.namePattern, description: input.description, createdBy: input.createdBy,
      });
      await this.audit.append(tx, {
        type: AuditEvents.tokenCreated,
        actor: { kind: input.actorKind ?? 'cli', id: input.createdBy },
        data: { tokenId: id, labels: input.labels, expiresAt: new Date(expiresAt).toISOString(), uses: input.uses, namePattern: input.namePattern },
      });
    });
    return { id, token, expiresAt };
  }

  async list(): Promise<Array<BootstrapTokenRow & { createdAt: number; description: string | null; createdBy: string }>> {
    const rows = await q.listBootstrapTokens(this.db);
    return rows.map((r) => ({ ...toRow(r), createdAt: r.created_at, description: r.description, createdBy: r.created_by }));
  }

  async revoke(id: string, by: string, now: number): Promise<boolean> {
    return this.db.write(async (tx) => {
      const r = await q.revokeBootstrapToken(tx, id, now);
      if (r.changes === 0) return false;
      await this.audit.append(tx, { type: AuditEvents.tokenRevoked, actor: { kind: 'cli', id: by }, data: { tokenId: id } });
      return true;
    });
  }

  /**
   * Inside an enrollment transaction: checks the token and, if it admits `name`, spends one use.
   * A refused attempt spends nothing.
   */
  async consume(
    tx: Tx,
    token: string,
    name: string,
    now: number,
  ): Promise<{ ok: true; token: BootstrapTokenRow } | { ok: false; reason: TokenRefusal; detail: string; tokenId?: string }> {
    if (!looksLikeToken(token)) return { ok: false, reason: 'unknown', detail: 'token is malformed' };
    const raw = await q.findBootstrapTokenByHash(tx, hashToken(token));
    const row = raw ? toRow(raw) : undefined;
    const verdict = checkBootstrapToken(row, name, now);
    if (!verdict.ok) return row ? { ...verdict, tokenId: row.id } : verdict;
    const r = await q.spendBootstrapTokenUse(tx, (row as BootstrapTokenRow).id);
    if (r.changes !== 1) return { ok: false, reason: 'used_up', detail: 'token was used concurrently' };
    return { ok: true, token: row as BootstrapTokenRow };
  }
}
