/**
 * The JSON a notification carries, built from what the store holds (pure). The execution part
 * is fixed when the delivery is queued (the state the event announces); `sentAt` and the
 * delivery id are added per attempt, and the signature covers the exact body sent.
 */
import { SECRET_MASK } from '../audit/secrets.js';
import type { ExecutionSnapshotRow, NotificationEvent } from '../store/notifications.js';

export interface ExecutionSummary {
  readonly id: string;
  readonly kind: 'runbook' | 'adhoc';
  readonly runbook: { readonly id: string; readonly digest: string | null; readonly owner: string | null } | null;
  readonly state: string;
  /** Why it ended (or why it was requested, while it runs). */
  readonly reason: string | null;
  readonly requestedBy: string;
  /** Option values as recorded: `type: secret` values are masked. */
  readonly options: Readonly<Record<string, string>>;
  readonly targets: string;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** How many nodes are in each state, and in all. */
  readonly nodes: { readonly total: number; readonly byState: Readonly<Record<string, number>> };
}

/** Stored with the delivery: everything but the per-attempt members. */
export interface QueuedPayload {
  readonly event: NotificationEvent;
  readonly execution: ExecutionSummary;
  readonly url: string;
}

export interface NotificationBody extends QueuedPayload {
  readonly deliveryId: string;
  readonly sentAt: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Defence in depth: the recorded options are already masked; anything secret-shaped is masked again. */
function maskedOptions(json: string, secretNames: ReadonlySet<string>): Record<string, string> {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = secretNames.has(k) || v === SECRET_MASK ? SECRET_MASK : String(v);
  return out;
}

/** `base` is the portal's public URL (no trailing slash needed). */
export function executionUrl(base: string, executionId: string): string {
  return `${base.replace(/\/+$/, '')}/executions/${encodeURIComponent(executionId)}`;
}

export function queuedPayload(event: NotificationEvent, row: ExecutionSnapshotRow, publicUrl: string, secretNames: ReadonlySet<string> = new Set()): QueuedPayload {
  const byState: Record<string, number> = {};
  let total = 0;
  for (const n of row.nodes) {
    byState[n.state] = n.n;
    total += n.n;
  }
  const ended = row.finished_at !== null;
  return {
    event,
    execution: {
      id: row.id,
      kind: row.kind,
      runbook: row.runbook_id === null ? null : { id: row.runbook_id, digest: row.runbook_digest, owner: row.owner },
      state: row.state,
      reason: ended ? row.state_reason : row.reason,
      requestedBy: row.requested_by,
      options: maskedOptions(row.options_json, secretNames),
      targets: row.targets,
      createdAt: new Date(row.created_at).toISOString(),
      startedAt: iso(row.started_at),
      finishedAt: iso(row.finished_at),
      nodes: { total, byState },
    },
    url: executionUrl(publicUrl, row.id),
  };
}

/** The exact body of one attempt (member order fixed: event, deliveryId, sentAt, execution, url). */
export function notificationBody(queued: QueuedPayload, deliveryId: string, sentAt: number): string {
  const body: NotificationBody = { event: queued.event, deliveryId, sentAt: new Date(sentAt).toISOString(), execution: queued.execution, url: queued.url };
  return JSON.stringify(body);
}
