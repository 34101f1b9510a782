/**
 * Receiving one inbound webhook delivery: verify (signature, then time window), refuse a
 * delivery id already accepted, parse, map the payload onto the runbook's options, then ask the
 * engine's normal request path to run the runbook as the hook's service user — policy, option
 * validation and approvals apply as to anyone. The delivery id is recorded in the transaction
 * that records the execution, so a replay can never start a second run.
 *
 * Every outcome is counted (webhook_deliveries_total{outcome}) and logged with the hook and
 * delivery ids; refusals are audited, at most one record per hook and reason per minute with a
 * count of those it stands for. Neither the secret nor the payload reaches a log line or record.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { Counters } from '../metrics/counters.js';
import type { RunRequest } from '../engine/engine.js';
import type { WebhookStore } from '../store/webhooks.js';
import type { User } from '../auth/user-store.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import { HandrailError } from '../../core/errors.js';
import { echo } from '../../core/echo.js';
import { checkDelivery, DEFAULT_WINDOW_MS, type DeliveryHeaders, type DeliveryRefusal } from './delivery-check.js';
import { checkMapping, mapPayload } from './payload-mapping.js';
import type { HookRunbooks } from './webhook-admin.js';

export type RefusalReason = 'unknown_hook' | 'too_large' | DeliveryRefusal | 'replay' | 'not_json' | 'unmapped' | 'hook_broken' | 'denied' | 'invalid';

export type ReceiveResult =
  | { readonly ok: true; readonly executionId: string; readonly state: string }
  | { readonly ok: false; readonly reason: RefusalReason; readonly message: string };

export interface InboundDelivery {
  readonly hookId: string;
  readonly headers: DeliveryHeaders;
  /** The raw body, or null when it was larger than the limit (not read). */
  readonly body: Uint8Array | null;
  readonly remote: string;
  readonly requestId: string;
}

export interface WebhookServiceDeps {
  readonly store: WebhookStore;
  readonly audit: AuditLog;
  readonly runbooks: HookRunbooks;
  readonly user: (name: string) => Promise<User | undefined>;
  /** The engine's request path. */
  readonly start: (req: RunRequest) => Promise<{ executionId: string; state: string }>;
  readonly counters: Counters;
  readonly log: Logger;
  readonly now: () => number;
  readonly windowMs?: number;
}

/** What a delivery refused by the engine was refused for. */
const ENGINE_REFUSALS: Partial<Record<HandrailError['kind'], RefusalReason>> = {
  permission_denied: 'denied',
  invalid_argument: 'invalid',
  not_found: 'hook_broken',
  already_exists: 'replay',
};

export class WebhookService {
  private readonly limiter = new RateLimiter(1, 1 / 60);
  /** Refusals not audited since the last record, per hook and reason. */
  private readonly suppressed = new Map<string, number>();
  private readonly windowMs: number;

  constructor(private readonly d: WebhookServiceDeps) {
    this.windowMs = d.windowMs ?? DEFAULT_WINDOW_MS;
  }

  async receive(inb: InboundDelivery): Promise<ReceiveResult> {
    const { d } = this;
    const found = await d.store.getWithSecrets(inb.hookId);
    if (!found) return this.refuse(inb, null, null, 'unknown_hook', `no webhook ${echo(inb.hookId, 64)}`);
    const { hook, secrets } = found;
    if (inb.body === null) return this.refuse(inb, hook.id, null, 'too_large', 'the request body is larger than the limit');
    const now = d.now();
    const check = checkDelivery({
      headers: inb.headers,
      body: inb.body,
      secrets: { current: secrets.current, previous: secrets.previous !== null && hook.previousUntil !== null ? { secret: secrets.previous, until: hook.previousUntil } : null },
      nowMs: now,
      windowMs: this.windowMs,
    });
    if (!check.ok) return this.refuse(inb, hook.id, check.deliveryId, check.reason, check.message);
    const deliveryId = check.deliveryId;
    const replay = `delivery ${deliveryId} was already accepted`;
    if (await d.store.seenDelivery(hook.id, deliveryId)) return this.refuse(inb, hook.id, deliveryId, 'replay', replay);

    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(inb.body).toString('utf8'));
    } catch {
      return this.refuse(inb, hook.id, deliveryId, 'not_json', 'the request body is not JSON');
    }
    const options = d.runbooks(hook.runbookId);
    const mapping = options ? checkMapping(hook.mapping, options) : undefined;
    if (!mapping || !mapping.ok) {
      const why = !mapping ? `runbook ${hook.runbookId} is not loaded` : `its mapping no longer fits runbook ${hook.runbookId}: ${mapping.problems[0] ?? ''}`;
      return this.refuse(inb, hook.id, deliveryId, 'hook_broken', `webhook ${hook.id} cannot run: ${why}; an admin must fix the runbook or define the hook again`);
    }
    const mapped = mapPayload(mapping.mapping, payload);
    if (!mapped.ok) return this.refuse(inb, hook.id, deliveryId, 'unmapped', mapped.message);
    const user = await d.user(hook.runAs);
    if (!user || user.disabled) return this.refuse(inb, hook.id, deliveryId, 'denied', `webhook ${hook.id} runs as ${hook.runAs}, who is ${user ? 'disabled' : 'no longer a user'}`);

    try {
      const started = await d.start({
        runbookId: hook.runbookId,
        options: mapped.options,
        targets: mapped.targets,
        user,
        reason: `webhook ${hook.id} delivery ${deliveryId}`,
        requestId: inb.requestId,
        within: async (tx, executionId) => {
          if (!(await d.store.recordDelivery(tx, hook.id, deliveryId, executionId, now, now - 2 * this.windowMs))) throw new HandrailError('already_exists', replay);
          await d.audit.append(tx, { type: AuditEvents.webhookAccepted, actor: { kind: 'user', id: user.name }, data: { hookId: hook.id, deliveryId, executionId, runbookId: hook.runbookId, runAs: user.name } });
        },
      });
      d.counters.inc('webhook_deliveries_total', { outcome: 'accepted' });
      d.log.info({ event: 'webhook.accepted', hookId: hook.id, deliveryId, executionId: started.executionId, runbookId: hook.runbookId, runAs: user.name, requestId: inb.requestId }, 'webhook delivery accepted');
      return { ok: true, executionId: started.executionId, state: started.state };
    } catch (e) {
      const reason = e instanceof HandrailError ? ENGINE_REFUSALS[e.kind] : undefined;
      if (!reason || !(e instanceof HandrailError)) throw e;
      return this.refuse(inb, hook.id, deliveryId, reason, e.message);
    }
  }

  private refuse(inb: InboundDelivery, hookId: string | null, deliveryId: string | null, reason: RefusalReason, message: string): ReceiveResult {
    const { d } = this;
    d.counters.inc('webhook_deliveries_total', { outcome: reason });
    const line = { event: 'webhook.refused', hookId: hookId ?? inb.hookId.slice(0, 64), deliveryId, reason, remote: inb.remote, requestId: inb.requestId };
    // Unknown hook ids are the caller's choice: they share one key, so they cannot flood the log.
    const key = `${hookId ?? '-'}:${reason}`;
    const count = (this.suppressed.get(key) ?? 0) + 1;
    if (!this.limiter.take(key, d.now())) {
      // A flood of forged deliveries is counted (metric, next record's count), not logged line by line.
      this.suppressed.set(key, count);
      d.log.debug(line, `webhook delivery refused: ${reason}`);
      return { ok: false, reason, message };
    }
    this.suppressed.delete(key);
    d.log.warn({ ...line, count }, `webhook delivery refused: ${reason}`);
    d.store.db
      .batch((tx) => d.audit.append(tx, { type: AuditEvents.webhookRefused, actor: { kind: 'system', id: 'webhooks' }, data: { hookId, deliveryId, reason, detail: message.slice(0, 300), remote: inb.remote, count } }))
      .catch((e: unknown) => d.log.error({ event: 'audit.append_failed', err: e }, 'auditing a refused webhook delivery failed'));
    return { ok: false, reason, message };
  }
}
