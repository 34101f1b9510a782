/**
 * The notification tables' SQL (migration 4): subscriptions, the delivery outbox and each
 * attempt. Writes take the caller's transaction, so a delivery is queued in the same commit as
 * the state change it announces; reads for the sender and the admin API use the database.
 */
import type { Database, Tx } from './database.js';

export const NOTIFICATION_EVENTS = ['execution.started', 'execution.waiting_approval', 'execution.finished'] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

export type SubscriptionScope = { readonly kind: 'all' } | { readonly kind: 'runbook'; readonly runbookId: string } | { readonly kind: 'team'; readonly team: string };

export interface SubscriptionRecord {
  readonly id: string;
  readonly url: string;
  readonly scope: SubscriptionScope;
  readonly events: readonly NotificationEvent[];
  readonly enabled: boolean;
  readonly description: string | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly secretRotatedAt: number | null;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'canceled';

export interface DeliveryRecord {
  readonly id: string;
  readonly subscriptionId: string;
  readonly event: NotificationEvent;
  readonly executionId: string;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly createdAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly finishedAt: number | null;
}

export interface AttemptRecord {
  readonly attempt: number;
  readonly startedAt: number;
  readonly durationMs: number;
  readonly status: number | null;
  readonly error: string | null;
  readonly outcome: 'delivered' | 'retry' | 'failed';
}

/** What the sender needs to make one attempt. */
export interface DueDelivery {
  readonly id: string;
  readonly subscriptionId: string;
  readonly event: NotificationEvent;
  readonly executionId: string;
  readonly payloadJson: string;
  readonly attempts: number;
  readonly createdAt: number;
  readonly url: string;
  readonly secretSealed: Buffer;
}

/** An execution as a notification describes it, read inside the triggering transaction. */
export interface ExecutionSnapshotRow {
  readonly id: string;
  readonly kind: 'runbook' | 'adhoc';
  readonly runbook_id: string | null;
  readonly runbook_digest: string | null;
  readonly owner: string | null;
  readonly requested_by: string;
  readonly state: string;
  readonly reason: string | null;
  readonly state_reason: string | null;
  readonly options_json: string;
  readonly targets: string;
  readonly created_at: number;
  readonly started_at: number | null;
  readonly finished_at: number | null;
  readonly nodes: ReadonlyArray<{ readonly state: string; readonly n: number }>;
}

interface SubscriptionRow {
  id: string;
  url: string;
  scope_kind: 'all' | 'runbook' | 'team';
  scope_value: string | null;
  events_json: string;
  enabled: number;
  description: string | null;
  created_by: string;
  created_at: number;
  secret_rotated_at: number | null;
}

const SUBSCRIPTION_COLUMNS = 'id, url, scope_kind, scope_value, events_json, enabled, description, created_by, created_at, secret_rotated_at';

function subscription(r: SubscriptionRow): SubscriptionRecord {
  const scope: SubscriptionScope = r.scope_kind === 'runbook' ? { kind: 'runbook', runbookId: r.scope_value ?? '' } : r.scope_kind === 'team' ? { kind: 'team', team: r.scope_value ?? '' } : { kind: 'all' };
  return {
    id: r.id,
    url: r.url,
    scope,
    events: JSON.parse(r.events_json) as NotificationEvent[],
    enabled: r.enabled === 1,
    description: r.description,
    createdBy: r.created_by,
    createdAt: r.created_at,
    secretRotatedAt: r.secret_rotated_at,
  };
}

interface DeliveryRow {
  id: string;
  subscription_id: string;
  event: NotificationEvent;
  execution_id: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  last_status: number | null;
  last_error: string | null;
  finished_at: number | null;
}

/**
 * Per database: which events any enabled subscription listens to, so a state change with no
 * subscriber for its event costs no statement. Subscriptions are written only through this
 * module (the admin API of the one coordinator on a data dir); each write drops the cache, and
 * drops it again when its transaction commits or rolls back.
 */
interface ListenedEvents {
  version: number;
  events: Promise<ReadonlySet<string>> | undefined;
}
const listened = new WeakMap<Database, ListenedEvents>();

export class NotificationStore {
  constructor(private readonly db: Database) {}

  private listenedState(): ListenedEvents {
    let l = listened.get(this.db);
    if (!l) listened.set(this.db, (l = { version: 0, events: undefined }));
    return l;
  }

  private subscriptionsChanging(tx: Tx): void {
    const l = this.listenedState();
    const drop = (): void => {
      l.version++;
      l.events = undefined;
    };
    drop();
    tx.afterCommit(drop);
    tx.afterRollback(drop);
  }

  /** The events some enabled subscription listens to (cached; see ListenedEvents). */
  private listenedEvents(q: Pick<Tx, 'all'>): Promise<ReadonlySet<string>> {
    const l = this.listenedState();
    if (l.events) return l.events;
    const version = l.version;
    const loading = q.all<{ events_json: string }>('SELECT events_json FROM notification_subscriptions WHERE removed_at IS NULL AND enabled = 1').then((rows) => {
      const events = new Set<string>();
      for (const r of rows) for (const e of JSON.parse(r.events_json) as string[]) events.add(e);
      return events as ReadonlySet<string>;
    });
    l.events = loading;
    // A load that failed, or raced a subscription write, is not kept.
    loading.then(
      () => {
        if (l.version !== version && l.events === loading) l.events = undefined;
      },
      () => {
        if (l.events === loading) l.events = undefined;
      },
    );
    return loading;
  }

  // ------------------------------------------------------------- subscriptions

  async insertSubscription(tx: Tx, s: SubscriptionRecord, secretSealed: Buffer): Promise<void> {
    this.subscriptionsChanging(tx);
    await tx.run(
      `INSERT INTO notification_subscriptions (id, url, scope_kind, scope_value, events_json, secret_sealed, enabled, description, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [s.id, s.url, s.scope.kind, s.scope.kind === 'runbook' ? s.scope.runbookId : s.scope.kind === 'team' ? s.scope.team : null, JSON.stringify(s.events), secretSealed, s.enabled ? 1 : 0, s.description, s.createdBy, s.createdAt],
    );
  }

  async listSubscriptions(): Promise<SubscriptionRecord[]> {
    const rows = await this.db.all<SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM notification_subscriptions WHERE removed_at IS NULL ORDER BY created_at, id`);
    return rows.map(subscription);
  }

  async getSubscription(id: string, q: Pick<Tx, 'get'> = this.db): Promise<SubscriptionRecord | undefined> {
    const r = await q.get<SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM notification_subscriptions WHERE id = ? AND removed_at IS NULL`, [id]);
    return r ? subscription(r) : undefined;
  }

  /** Marks it removed and cancels its pending deliveries; returns how many were canceled, or null if there was none. */
  async removeSubscription(tx: Tx, id: string, now: number): Promise<number | null> {
    this.subscriptionsChanging(tx);
    const r = await tx.run('UPDATE notification_subscriptions SET removed_at = ?, enabled = 0 WHERE id = ? AND removed_at IS NULL', [now, id]);
    if (r.changes !== 1) return null;
    const c = await tx.run("UPDATE notification_deliveries SET state = 'canceled', last_error = 'the subscription was removed', finished_at = ? WHERE subscription_id = ? AND state = 'pending'", [now, id]);
    return c.changes;
  }

  async setEnabled(tx: Tx, id: string, enabled: boolean): Promise<boolean> {
    this.subscriptionsChanging(tx);
    const r = await tx.run('UPDATE notification_subscriptions SET enabled = ? WHERE id = ? AND removed_at IS NULL', [enabled ? 1 : 0, id]);
    return r.changes === 1;
  }

  async replaceSecret(tx: Tx, id: string, secretSealed: Buffer, now: number): Promise<boolean> {
    const r = await tx.run('UPDATE notification_subscriptions SET secret_sealed = ?, secret_rotated_at = ? WHERE id = ? AND removed_at IS NULL', [secretSealed, now, id]);
    return r.changes === 1;
  }

  // ------------------------------------------------------------- outbox

  async executionSnapshot(tx: Tx, executionId: string): Promise<ExecutionSnapshotRow | undefined> {
    const row = await tx.get<Omit<ExecutionSnapshotRow, 'nodes'>>(
      `SELECT e.id, e.kind, e.runbook_id, e.runbook_digest, r.owner, e.requested_by, e.state, e.reason, e.state_reason, e.options_json, e.targets, e.created_at, e.started_at, e.finished_at
       FROM executions e LEFT JOIN runbook_refs r ON r.id = e.runbook_id WHERE e.id = ?`,
      [executionId],
    );
    if (!row) return undefined;
    const nodes = await tx.all<{ state: string; n: number }>('SELECT state, count(*) AS n FROM execution_nodes WHERE execution_id = ? GROUP BY state ORDER BY state', [executionId]);
    return { ...row, nodes };
  }

  /**
   * Enabled subscriptions to `event` whose scope covers this execution (its runbook, its
   * runbook's owner team, or all). One statement: it runs in every state change's transaction.
   */
  async matching(tx: Tx, event: NotificationEvent, executionId: string): Promise<string[]> {
    if (!(await this.listenedEvents(tx)).has(event)) return [];
    const rows = await tx.all<{ id: string; events_json: string }>(
      `SELECT s.id, s.events_json FROM executions e LEFT JOIN runbook_refs r ON r.id = e.runbook_id
       JOIN notification_subscriptions s ON s.removed_at IS NULL AND s.enabled = 1
         AND (s.scope_kind = 'all' OR (s.scope_kind = 'runbook' AND s.scope_value = e.runbook_id) OR (s.scope_kind = 'team' AND s.scope_value = r.owner))
       WHERE e.id = ? ORDER BY s.id`,
      [executionId],
    );
    return rows.filter((r) => (JSON.parse(r.events_json) as string[]).includes(event)).map((r) => r.id);
  }

  queueDelivery(tx: Tx, d: { id: string; subscriptionId: string; event: NotificationEvent; executionId: string; payloadJson: string; now: number }): void {
    tx.queueInsert(
      'notification_deliveries',
      ['id', 'subscription_id', 'event', 'execution_id', 'payload_json', 'state', 'attempts', 'next_attempt_at', 'created_at'],
      [d.id, d.subscriptionId, d.event, d.executionId, d.payloadJson, 'pending', 0, d.now, d.now],
    );
  }

  /** Pending deliveries due by `now`, oldest first, skipping those in `busy` (being sent). */
  async due(now: number, limit: number, busy: ReadonlySet<string>): Promise<DueDelivery[]> {
    const rows = await this.db.all<{ id: string; subscription_id: string; event: NotificationEvent; execution_id: string; payload_json: string; attempts: number; created_at: number; url: string; secret_sealed: Buffer }>(
      `SELECT d.id, d.subscription_id, d.event, d.execution_id, d.payload_json, d.attempts, d.created_at, s.url, s.secret_sealed
       FROM notification_deliveries d JOIN notification_subscriptions s ON s.id = d.subscription_id
       WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?`,
      [now, limit + busy.size],
    );
    return rows
      .filter((r) => !busy.has(r.id))
      .slice(0, limit)
      .map((r) => ({ id: r.id, subscriptionId: r.subscription_id, event: r.event, executionId: r.execution_id, payloadJson: r.payload_json, attempts: r.attempts, createdAt: r.created_at, url: r.url, secretSealed: r.secret_sealed }));
  }

  async pendingCount(): Promise<number> {
    return (await this.db.get<{ n: number }>("SELECT count(*) AS n FROM notification_deliveries WHERE state = 'pending'"))?.n ?? 0;
  }

  /** When the earliest pending delivery is due; null when none is pending. */
  async nextDueAt(): Promise<number | null> {
    const r = await this.db.get<{ at: number | null }>("SELECT min(next_attempt_at) AS at FROM notification_deliveries WHERE state = 'pending'");
    return r?.at ?? null;
  }

  /**
   * Records one attempt and where the delivery stands after it. Only a pending delivery moves
   * (one removed meanwhile stays canceled); returns whether it did.
   */
  async recordAttempt(tx: Tx, deliveryId: string, a: AttemptRecord, next: { state: 'pending' | 'delivered' | 'failed'; nextAttemptAt: number; finishedAt: number | null }): Promise<boolean> {
    await tx.run('INSERT OR REPLACE INTO notification_attempts (delivery_id, attempt, started_at, duration_ms, status, error, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)', [deliveryId, a.attempt, a.startedAt, a.durationMs, a.status, a.error, a.outcome]);
    const r = await tx.run("UPDATE notification_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, finished_at = ? WHERE id = ? AND state = 'pending'", [
      next.state, a.attempt, next.nextAttemptAt, a.status, a.error, next.finishedAt, deliveryId,
    ]);
    return r.changes === 1;
  }

  async deliveriesOf(subscriptionId: string, limit: number): Promise<Array<DeliveryRecord & { readonly attemptLog: AttemptRecord[] }>> {
    const rows = await this.db.all<DeliveryRow>(
      'SELECT id, subscription_id, event, execution_id, state, attempts, next_attempt_at, created_at, last_status, last_error, finished_at FROM notification_deliveries WHERE subscription_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
      [subscriptionId, limit],
    );
    if (rows.length === 0) return [];
    const attempts = await this.db.all<{ delivery_id: string; attempt: number; started_at: number; duration_ms: number; status: number | null; error: string | null; outcome: AttemptRecord['outcome'] }>(
      `SELECT delivery_id, attempt, started_at, duration_ms, status, error, outcome FROM notification_attempts WHERE delivery_id IN (${rows.map(() => '?').join(', ')}) ORDER BY delivery_id, attempt`,
      rows.map((r) => r.id),
    );
    const byDelivery = new Map<string, AttemptRecord[]>();
    for (const a of attempts) {
      let list = byDelivery.get(a.delivery_id);
      if (!list) byDelivery.set(a.delivery_id, (list = []));
      list.push({ attempt: a.attempt, startedAt: a.started_at, durationMs: a.duration_ms, status: a.status, error: a.error, outcome: a.outcome });
    }
    return rows.map((r) => ({
      id: r.id,
      subscriptionId: r.subscription_id,
      event: r.event,
      executionId: r.execution_id,
      state: r.state,
      attempts: r.attempts,
      nextAttemptAt: r.next_attempt_at,
      createdAt: r.created_at,
      lastStatus: r.last_status,
      lastError: r.last_error,
      finishedAt: r.finished_at,
      attemptLog: byDelivery.get(r.id) ?? [],
    }));
  }
}
