/**
 * Notification subscriptions as admins manage them (the REST API and `handrail notify` call
 * this): create, list, remove, rotate a secret, recent deliveries. A secret is generated here,
 * returned once (at creation and at rotation) and stored sealed; it is never logged or recorded.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents, type Actor } from '../audit/events.js';
import type { SecretBox } from '../pki/secret-box.js';
import { NOTIFICATION_EVENTS, type AttemptRecord, type DeliveryRecord, type NotificationEvent, type NotificationStore, type SubscriptionRecord, type SubscriptionScope } from '../store/notifications.js';
import { checkReceiverUrl, receiverTarget } from './receiver-url.js';
import { invalidArgument, notFound } from '../../core/errors.js';
import { newId } from '../../core/ids.js';

export interface NewSubscription {
  readonly url: string;
  readonly scope: SubscriptionScope;
  readonly events: readonly NotificationEvent[];
  readonly enabled: boolean;
  readonly description: string | null;
}

export interface WithSecret {
  readonly subscription: SubscriptionRecord;
  /** Shown once: the receiver verifies signatures with it. */
  readonly secret: string;
}

export const DEFAULT_EVENTS: readonly NotificationEvent[] = ['execution.finished', 'execution.waiting_approval'];

/** `hrn_` + 256 random bits: the prefix lets secret scanners and the audit scrubber recognise one. */
export function newSecret(random: (n: number) => Buffer = randomBytes): string {
  return `hrn_${random(32).toString('base64url')}`;
}

export function scopeText(s: SubscriptionScope): string {
  return s.kind === 'all' ? 'all' : s.kind === 'runbook' ? `runbook:${s.runbookId}` : `team:${s.team}`;
}

/** Sealed with the subscription id as associated data: a sealed secret moved to another row does not open. */
const seal = (box: SecretBox, id: string, secret: string): Buffer => box.seal({ secret }, `notification:${id}`);

export function openSecret(box: SecretBox, id: string, sealed: Buffer): string {
  const v = box.open(sealed, `notification:${id}`)['secret'];
  if (typeof v !== 'string') throw new Error(`the sealed secret of ${id} holds no secret`);
  return v;
}

export class Subscriptions {
  constructor(
    private readonly db: Database,
    private readonly store: NotificationStore,
    private readonly box: SecretBox,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly now: () => number,
    /** The same store over a read-only connection, for list() and deliveries() (committed rows only). */
    private readonly reads: NotificationStore = store,
  ) {}

  list(): Promise<SubscriptionRecord[]> {
    return this.reads.listSubscriptions();
  }

  async create(input: NewSubscription, actor: Actor): Promise<WithSecret> {
    const url = checkReceiverUrl(input.url);
    const events = [...new Set(input.events)];
    if (events.length === 0) throw invalidArgument(`name at least one event: ${NOTIFICATION_EVENTS.join(', ')}`);
    const subscription: SubscriptionRecord = {
      id: newId('ntf'),
      url,
      scope: input.scope,
      events: NOTIFICATION_EVENTS.filter((e) => events.includes(e)),
      enabled: input.enabled,
      description: input.description,
      createdBy: actor.id,
      createdAt: this.now(),
      secretRotatedAt: null,
    };
    const secret = newSecret();
    const target = receiverTarget(url);
    await this.db.write(async (tx) => {
      await this.store.insertSubscription(tx, subscription, seal(this.box, subscription.id, secret));
      await this.audit.append(tx, {
        type: AuditEvents.notificationSubscribed,
        actor,
        data: { subscriptionId: subscription.id, target, scope: scopeText(subscription.scope), events: subscription.events, enabled: subscription.enabled },
      });
    });
    this.log.info({ event: 'notification.subscription_created', subscriptionId: subscription.id, target, scope: scopeText(subscription.scope), events: subscription.events, by: actor.id }, 'notification subscription created');
    return { subscription, secret };
  }

  async remove(id: string, actor: Actor): Promise<{ canceledDeliveries: number }> {
    const removed = await this.db.write(async (tx) => {
      const s = await this.store.getSubscription(id, tx);
      if (!s) return null;
      const canceled = (await this.store.removeSubscription(tx, id, this.now())) ?? 0;
      await this.audit.append(tx, { type: AuditEvents.notificationUnsubscribed, actor, data: { subscriptionId: id, target: receiverTarget(s.url), canceledDeliveries: canceled } });
      return canceled;
    });
    if (removed === null) throw notFound(`no notification subscription ${id} (see \`handrail notify ls\`)`);
    this.log.info({ event: 'notification.subscription_removed', subscriptionId: id, canceledDeliveries: removed, by: actor.id }, 'notification subscription removed');
    return { canceledDeliveries: removed };
  }

  /** Switched off, events queue no deliveries for it; deliveries already queued still go out. */
  async setEnabled(id: string, enabled: boolean, actor: Actor): Promise<SubscriptionRecord> {
    const s = await this.db.write(async (tx) => {
      const found = await this.store.getSubscription(id, tx);
      if (!found) return undefined;
      if (found.enabled === enabled) return found;
      await this.store.setEnabled(tx, id, enabled);
      await this.audit.append(tx, { type: AuditEvents.notificationSwitched, actor, data: { subscriptionId: id, target: receiverTarget(found.url), enabled } });
      return { ...found, enabled };
    });
    if (!s) throw notFound(`no notification subscription ${id} (see \`handrail notify ls\`)`);
    this.log.info({ event: 'notification.subscription_changed', subscriptionId: id, enabled, by: actor.id }, `notification subscription ${enabled ? 'enabled' : 'disabled'}`);
    return s;
  }

  /** A new secret at once: deliveries still pending are signed with it from their next attempt. */
  async rotate(id: string, actor: Actor): Promise<WithSecret> {
    const secret = newSecret();
    const now = this.now();
    const s = await this.db.write(async (tx) => {
      const found = await this.store.getSubscription(id, tx);
      if (!found) return undefined;
      await this.store.replaceSecret(tx, id, seal(this.box, id, secret), now);
      await this.audit.append(tx, { type: AuditEvents.notificationSecretRotated, actor, data: { subscriptionId: id, target: receiverTarget(found.url) } });
      return { ...found, secretRotatedAt: now };
    });
    if (!s) throw notFound(`no notification subscription ${id} (see \`handrail notify ls\`)`);
    this.log.info({ event: 'notification.secret_rotated', subscriptionId: id, by: actor.id }, 'notification secret rotated');
    return { subscription: s, secret };
  }

  async deliveries(id: string, limit: number): Promise<Array<DeliveryRecord & { readonly attemptLog: AttemptRecord[] }>> {
    if (!(await this.reads.getSubscription(id))) throw notFound(`no notification subscription ${id} (see \`handrail notify ls\`)`);
    return this.reads.deliveriesOf(id, limit);
  }
}
