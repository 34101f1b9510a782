/**
 * Defining, listing, removing and re-keying inbound webhooks (the admin side; the web layer
 * asks policy for `admin` first). A hook's secret is made here, returned once when it is made
 * (on create and on rotate) and never again: lists and audit records carry everything else.
 */
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents, type Actor } from '../audit/events.js';
import type { Json } from '../audit/secrets.js';
import type { WebhookRecord, WebhookStore } from '../store/webhooks.js';
import { HandrailError, invalidArgument, notFound } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { echo, some } from '../../core/echo.js';
import { checkMapping, type MappableOption } from './payload-mapping.js';

/** How long the secret a rotation replaces is still accepted, so senders can switch over. */
export const PREVIOUS_SECRET_GRACE_MS = 24 * 60 * 60_000;

export const WEBHOOK_SECRET_PREFIX = 'hrw_';

/** The runbooks hooks may be bound to: the options each declares (undefined: no such runbook). */
export type HookRunbooks = (runbookId: string) => readonly MappableOption[] | undefined;

export interface WebhookView {
  readonly id: string;
  readonly runbookId: string;
  readonly runAs: string;
  readonly mapping: Json;
  readonly description: string | null;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly rotatedAt: string | null;
  /** Until when the secret replaced by the last rotation is still accepted. */
  readonly previousSecretValidUntil: string | null;
}

export interface DefineWebhook {
  readonly runbookId: string;
  readonly runAs: string;
  readonly mapping: unknown;
  readonly description: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function webhookView(h: WebhookRecord, now: number): WebhookView {
  return {
    id: h.id,
    runbookId: h.runbookId,
    runAs: h.runAs,
    mapping: h.mapping as Json,
    description: h.description,
    createdBy: h.createdBy,
    createdAt: new Date(h.createdAt).toISOString(),
    rotatedAt: iso(h.rotatedAt),
    previousSecretValidUntil: h.previousUntil !== null && h.previousUntil > now ? iso(h.previousUntil) : null,
  };
}

export class WebhookAdmin {
  constructor(
    private readonly d: {
      readonly store: WebhookStore;
      /** The same store over a read-only connection, for list() (committed hooks only); default `store`. */
      readonly reads?: WebhookStore;
      readonly audit: AuditLog;
      readonly runbooks: HookRunbooks;
      readonly userExists: (name: string) => Promise<boolean>;
      readonly now: () => number;
      readonly random?: (n: number) => Buffer;
    },
  ) {}

  async define(input: DefineWebhook, actor: Actor): Promise<{ hook: WebhookView; secret: string }> {
    const { d } = this;
    const options = d.runbooks(input.runbookId);
    if (!options) throw notFound(`no runbook ${echo(input.runbookId)} to bind the hook to (see \`handrail runbooks ls\`)`);
    if (!(await d.userExists(input.runAs))) throw invalidArgument(`runAs: no user ${echo(input.runAs)}`, 'the hook runs as a named service user: create it with `handrail user add NAME --group GROUP` and let policy allow it to run the runbook');
    const check = checkMapping(input.mapping, options);
    if (!check.ok) throw new HandrailError('invalid_argument', `the mapping does not fit runbook ${input.runbookId}: ${some([...check.problems], 5, '; ')}`, { details: { problems: check.problems } });
    const id = newId('whk', d.random);
    const secret = this.newSecret();
    const now = d.now();
    const rec = { id, runbookId: input.runbookId, runAs: input.runAs, mapping: input.mapping, description: input.description, createdBy: actor.id, createdAt: now };
    await d.store.db.write(async (tx) => {
      await d.store.insert(tx, rec, secret);
      await d.audit.append(tx, { type: AuditEvents.webhookDefined, actor, data: { hookId: id, runbookId: input.runbookId, runAs: input.runAs, mapping: input.mapping as Json, description: input.description } });
    });
    return { hook: webhookView({ ...rec, rotatedAt: null, previousUntil: null }, now), secret };
  }

  async list(): Promise<WebhookView[]> {
    const now = this.d.now();
    return (await (this.d.reads ?? this.d.store).list()).map((h) => webhookView(h, now));
  }

  async remove(id: string, actor: Actor): Promise<void> {
    const { d } = this;
    const removed = await d.store.db.write(async (tx) => {
      const h = await d.store.remove(tx, id);
      if (h) await d.audit.append(tx, { type: AuditEvents.webhookRemoved, actor, data: { hookId: id, runbookId: h.runbookId } });
      return h;
    });
    if (!removed) throw notFound(`no webhook ${echo(id)}`);
  }

  /**
   * A new secret; the one it replaces is accepted for PREVIOUS_SECRET_GRACE_MS more, or not at
   * all with `keepPrevious: false` (a leaked secret).
   */
  async rotate(id: string, actor: Actor, keepPrevious = true): Promise<{ hook: WebhookView; secret: string }> {
    const { d } = this;
    const secret = this.newSecret();
    const now = d.now();
    const until = keepPrevious ? now + PREVIOUS_SECRET_GRACE_MS : now;
    const ok = await d.store.db.write(async (tx) => {
      if (!(await d.store.rotate(tx, id, secret, now, until))) return false;
      await d.audit.append(tx, { type: AuditEvents.webhookSecretRotated, actor, data: { hookId: id, previousValidUntil: new Date(until).toISOString() } });
      return true;
    });
    const hook = ok ? await d.store.get(id) : undefined;
    if (!hook) throw notFound(`no webhook ${echo(id)}`);
    return { hook: webhookView(hook, now), secret };
  }

  private newSecret(): string {
    return `${WEBHOOK_SECRET_PREFIX}${(this.d.random ?? randomBytes)(32).toString('base64url')}`;
  }
}
