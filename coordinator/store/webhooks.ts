/**
 * The store's webhook tables: hooks (their secrets sealed with the coordinator's secret box,
 * bound to the hook id as associated data, so a sealed blob copied to another hook does not
 * open) and the delivery ids seen recently (replay detection). All webhook SQL is here.
 */
import type { Database, Tx } from './database.js';
import type { SecretBox } from '../pki/secret-box.js';

export interface WebhookRecord {
  readonly id: string;
  readonly runbookId: string;
  readonly runAs: string;
  /** The mapping as the admin gave it (JSON); checked against the runbook when used. */
  readonly mapping: unknown;
  readonly description: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly rotatedAt: number | null;
  /** Until when the secret before the last rotation is still accepted (null: there is none). */
  readonly previousUntil: number | null;
}

export interface WebhookSecretPair {
  readonly current: string;
  readonly previous: string | null;
}

interface Row {
  id: string;
  runbook_id: string;
  run_as: string;
  mapping_json: string;
  description: string | null;
  secrets_sealed: Buffer;
  previous_until: number | null;
  created_by: string;
  created_at: number;
  rotated_at: number | null;
}

const COLUMNS = 'id, runbook_id, run_as, mapping_json, description, secrets_sealed, previous_until, created_by, created_at, rotated_at';
const aad = (id: string): string => `webhook:${id}`;

function toRecord(r: Row): WebhookRecord {
  return {
    id: r.id,
    runbookId: r.runbook_id,
    runAs: r.run_as,
    mapping: JSON.parse(r.mapping_json) as unknown,
    description: r.description,
    createdBy: r.created_by,
    createdAt: r.created_at,
    rotatedAt: r.rotated_at,
    previousUntil: r.previous_until,
  };
}

export class WebhookStore {
  constructor(
    readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async list(): Promise<WebhookRecord[]> {
    return (await this.db.all<Row>(`SELECT ${COLUMNS} FROM webhooks ORDER BY created_at, id`)).map(toRecord);
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const r = await this.db.get<Row>(`SELECT ${COLUMNS} FROM webhooks WHERE id = ?`, [id]);
    return r ? toRecord(r) : undefined;
  }

  /** The hook with its secrets opened (only the delivery check needs them). */
  async getWithSecrets(id: string): Promise<{ hook: WebhookRecord; secrets: WebhookSecretPair } | undefined> {
    const r = await this.db.get<Row>(`SELECT ${COLUMNS} FROM webhooks WHERE id = ?`, [id]);
    if (!r) return undefined;
    const opened = this.box.open(r.secrets_sealed, aad(r.id));
    return { hook: toRecord(r), secrets: { current: opened['current'] ?? '', previous: opened['previous'] ?? null } };
  }

  async insert(tx: Tx, h: Omit<WebhookRecord, 'rotatedAt' | 'previousUntil'>, secret: string): Promise<void> {
    await tx.run(`INSERT INTO webhooks (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL)`, [
      h.id,
      h.runbookId,
      h.runAs,
      JSON.stringify(h.mapping),
      h.description,
      this.box.seal({ current: secret }, aad(h.id)),
      h.createdBy,
      h.createdAt,
    ]);
  }

  /** Makes `secret` current and keeps the one it replaces until `previousUntil`; false if there is no such hook. */
  async rotate(tx: Tx, id: string, secret: string, now: number, previousUntil: number): Promise<boolean> {
    const r = await tx.get<{ secrets_sealed: Buffer }>('SELECT secrets_sealed FROM webhooks WHERE id = ?', [id]);
    if (!r) return false;
    const old = this.box.open(r.secrets_sealed, aad(id))['current'] ?? '';
    await tx.run('UPDATE webhooks SET secrets_sealed = ?, previous_until = ?, rotated_at = ? WHERE id = ?', [this.box.seal({ current: secret, previous: old }, aad(id)), previousUntil, now, id]);
    return true;
  }

  /** Removes a hook and what is remembered of its deliveries; its record, or undefined if there was none. */
  async remove(tx: Tx, id: string): Promise<WebhookRecord | undefined> {
    const r = await tx.get<Row>(`SELECT ${COLUMNS} FROM webhooks WHERE id = ?`, [id]);
    if (!r) return undefined;
    await tx.run('DELETE FROM webhook_deliveries WHERE hook_id = ?', [id]);
    await tx.run('DELETE FROM webhooks WHERE id = ?', [id]);
    return toRecord(r);
  }

  async seenDelivery(hookId: string, deliveryId: string): Promise<boolean> {
    return (await this.db.get<{ n: number }>('SELECT 1 AS n FROM webhook_deliveries WHERE hook_id = ? AND delivery_id = ?', [hookId, deliveryId])) !== undefined;
  }

  /**
   * Records a delivery id (in the transaction that starts its execution) and forgets those
   * received before `forgetBefore`; false when the id was already there (a replay).
   */
  async recordDelivery(tx: Tx, hookId: string, deliveryId: string, executionId: string, now: number, forgetBefore: number): Promise<boolean> {
    await tx.run('DELETE FROM webhook_deliveries WHERE received_at < ?', [forgetBefore]);
    const r = await tx.run('INSERT OR IGNORE INTO webhook_deliveries (hook_id, delivery_id, received_at, execution_id) VALUES (?, ?, ?, ?)', [hookId, deliveryId, now, executionId]);
    return r.changes === 1;
  }

  /** How many delivery ids are remembered (for tests and diagnostics). */
  async deliveryCount(): Promise<number> {
    return (await this.db.get<{ n: number }>('SELECT count(*) AS n FROM webhook_deliveries'))?.n ?? 0;
  }
}
