/**
 * The engine's side of notifications: inside the transaction that changes an execution's state,
 * one delivery row per matching subscription is queued (so a crash loses none and a rollback
 * sends none); after COMMIT the sender is woken. Nothing here waits on the network.
 */
import type { Tx } from '../store/database.js';
import type { NotificationEvent, NotificationStore } from '../store/notifications.js';
import { queuedPayload } from './payload.js';
import { newId } from '../../core/ids.js';

/** What the engine and the ad-hoc runner are given (coordinator.ts wires the real one). */
export interface ExecutionNotifier {
  /** Queues the deliveries `event` causes for this execution, in `tx`; returns how many. */
  queue(tx: Tx, event: NotificationEvent, executionId: string): Promise<number>;
  /** Call after the transaction that queued committed: the sender looks for work. */
  committed(): void;
}

export class Outbox implements ExecutionNotifier {
  private queuedSinceWake = false;

  constructor(
    private readonly store: NotificationStore,
    /** The portal's public base URL: payloads link to <publicUrl>/executions/<id>. */
    private readonly publicUrl: string,
    private readonly now: () => number,
    private readonly wake: () => void,
  ) {}

  async queue(tx: Tx, event: NotificationEvent, executionId: string): Promise<number> {
    const subscriptions = await this.store.matching(tx, event, executionId);
    if (subscriptions.length === 0) return 0;
    const row = await this.store.executionSnapshot(tx, executionId);
    if (!row) return 0;
    const payloadJson = JSON.stringify(queuedPayload(event, row, this.publicUrl));
    const now = this.now();
    for (const subscriptionId of subscriptions) this.store.queueDelivery(tx, { id: newId('dlv'), subscriptionId, event, executionId, payloadJson, now });
    this.queuedSinceWake = true;
    return subscriptions.length;
  }

  /**
   * Wakes the sender only when something was queued since it was last woken: every state
   * change calls this, and a wake costs the sender two queries. Deliveries due later, or
   * queued by another process, are the sender's own schedule and safety-net timer.
   */
  committed(): void {
    if (!this.queuedSinceWake) return;
    this.queuedSinceWake = false;
    this.wake();
  }
}
