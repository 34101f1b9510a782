/**
 * /admin/notifications — outbound notification subscriptions, for admins (everyone else: 404):
 * the list, a form to add one, and per subscription switch on/off, rotate the secret, remove.
 * Each goes through the same service and checks as /api/v1/notifications
 * (web/api/notifications.ts), so the audit records are the API's. A new secret is in the one
 * response that made it (after adding or rotating) and never again: the list cannot show it.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { DEFAULT_EVENTS } from '../../../coordinator/notify/subscriptions.js';
import { NOTIFICATION_EVENTS } from '../../../coordinator/store/notifications.js';
import { HandrailError, invalidArgument, notFound } from '../../../core/errors.js';
import { CreateSubscriptionBody, scopeCatalogOf, subscribe, subscriptionView, type SubscriptionView } from '../../api/notifications.js';
import { handrailId } from '../../validation/schemas.js';
import { describeIssues } from '../../validation/issues.js';
import { CsrfField, Notice, Page, render, Time } from '../layout/layout.js';
import { ShownOnce } from '../layout/shown-once.js';
import { adminOnly, pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

const ID = handrailId('ntf', 'a notification subscription id');

export interface SubscriptionFields {
  readonly url: string;
  readonly runbook: string;
  readonly team: string;
  readonly events: readonly string[];
  readonly enabled: boolean;
  readonly description: string;
}

const NEW_FIELDS: SubscriptionFields = { url: '', runbook: '', team: '', events: DEFAULT_EVENTS, enabled: true, description: '' };

/** The add form's fields (all strings, repeated checkboxes) as the API's body. Pure. */
export function subscriptionBodyOf(f: SubscriptionFields): Record<string, unknown> {
  return {
    url: f.url.trim(),
    ...(f.runbook ? { runbook: f.runbook } : {}),
    ...(f.team ? { team: f.team } : {}),
    ...(f.events.length > 0 ? { events: [...f.events] } : {}),
    enabled: f.enabled,
    ...(f.description.trim() ? { description: f.description.trim() } : {}),
  };
}

const scopeText = (s: SubscriptionView): string => (s.scope === 'runbook' ? `runbook ${s.runbook ?? ''}` : s.scope === 'team' ? `team ${s.team ?? ''}` : 'every execution');

interface ViewProps {
  readonly subs: readonly SubscriptionView[];
  readonly runbooks: readonly string[];
  readonly teams: readonly string[];
  readonly csrfToken: string;
  readonly fields: SubscriptionFields;
  readonly error?: string | undefined;
  readonly notice?: string | undefined;
  readonly secret?: { readonly id: string; readonly secret: string } | undefined;
}

function NotificationsPage(p: ViewProps) {
  const f = p.fields;
  return (
    <>
      <h1>Notifications</h1>
      <p class="muted">Receivers that get an HMAC-signed JSON POST when an execution starts, waits for approval or ends.</p>
      <Notice text={p.notice} />
      {p.secret ? (
        <ShownOnce id="new-secret" label={`Signing secret of ${p.secret.id}`} value={p.secret.secret} rows={2}>
          The receiver checks the <code>x-handrail-signature</code> header with it.
        </ShownOnce>
      ) : null}
      {p.subs.length === 0 ? (
        <p>No subscriptions yet.</p>
      ) : (
        <table class="wide" data-testid="subscriptions">
          <thead>
            <tr>
              <th scope="col">Receiver</th>
              <th scope="col">For</th>
              <th scope="col">Events</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {p.subs.map((s) => (
              <tr data-subscription={s.id}>
                <td>
                  <code>{s.url}</code>
                  <br />
                  <code class="muted">{s.id}</code>
                  {s.description ? (
                    <>
                      <br />
                      {s.description}
                    </>
                  ) : null}
                </td>
                <td>{scopeText(s)}</td>
                <td>{s.events.join(', ')}</td>
                <td>{s.enabled ? 'on' : 'off'}</td>
                <td>
                  <Time iso={s.createdAt} /> by {s.createdBy}
                  {s.secretRotatedAt ? (
                    <>
                      <br />
                      secret rotated <Time iso={s.secretRotatedAt} />
                    </>
                  ) : null}
                </td>
                <td class="actions">
                  <form class="inline" method="post" action={`/admin/notifications/${encodeURIComponent(s.id)}/enabled`}>
                    <CsrfField token={p.csrfToken} />
                    <input type="hidden" name="enabled" value={s.enabled ? 'false' : 'true'} />
                    <button type="submit" class="secondary" aria-label={`${s.enabled ? 'Switch off' : 'Switch on'} ${s.url}`}>
                      {s.enabled ? 'Switch off' : 'Switch on'}
                    </button>
                  </form>
                  <form class="inline" method="post" action={`/admin/notifications/${encodeURIComponent(s.id)}/rotate`}>
                    <CsrfField token={p.csrfToken} />
                    <button type="submit" class="secondary" aria-label={`Rotate the secret of ${s.url}`}>
                      Rotate secret
                    </button>
                  </form>
                  <form class="inline" method="post" action={`/admin/notifications/${encodeURIComponent(s.id)}/remove`}>
                    <CsrfField token={p.csrfToken} />
                    <button type="submit" class="danger" aria-label={`Remove ${s.url}`}>
                      Remove
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="hint">A rotated secret replaces the old one at once: update the receiver right after. Removing a subscription cancels its pending deliveries.</p>
      <h2 id="add-heading">Add a subscription</h2>
      <form method="post" action="/admin/notifications" aria-labelledby="add-heading">
        <CsrfField token={p.csrfToken} />
        {p.error ? (
          <p class="alert" role="alert">
            {p.error}
          </p>
        ) : null}
        <div class="field">
          <label for="ntf-url">Receiver URL</label>
          <input id="ntf-url" name="url" value={f.url} required placeholder="https://hooks.example.com/handrail" />
        </div>
        <div class="field">
          <label for="ntf-runbook">Only this runbook</label>
          <select id="ntf-runbook" name="runbook">
            <option value="">any runbook</option>
            {p.runbooks.map((r) => (
              <option value={r} selected={f.runbook === r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="ntf-team">Or only this team's runbooks</label>
          <select id="ntf-team" name="team">
            <option value="">any team</option>
            {p.teams.map((t) => (
              <option value={t} selected={f.team === t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <fieldset>
          <legend>Events</legend>
          {NOTIFICATION_EVENTS.map((e) => (
            <label class="check">
              <input type="checkbox" name={`event:${e}`} value="on" checked={f.events.includes(e)} /> {e}
            </label>
          ))}
        </fieldset>
        <div class="field">
          <label class="check">
            <input type="checkbox" name="enabled" value="true" checked={f.enabled} /> Switched on
          </label>
        </div>
        <div class="field">
          <label for="ntf-description">Description</label>
          <input id="ntf-description" name="description" value={f.description} maxlength={200} />
        </div>
        <button type="submit">Add</button>
      </form>
    </>
  );
}

const NOTICES: Readonly<Record<string, string>> = { on: 'Switched on.', off: 'Switched off: events queue no deliveries for it.', removed: 'Removed; its pending deliveries are canceled.' };

export function notificationPageRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);
  const idOf = (c: Context<PortalEnv>): string => {
    const p = ID.safeParse(c.req.param('id'));
    if (!p.success) throw notFound('no such subscription');
    return p.data;
  };
  const catalog = scopeCatalogOf(d.catalog);
  const show = async (c: Context<PortalEnv>, extra: Partial<ViewProps> = {}, status: 200 | 201 | 400 = 200): Promise<Response> => {
    const subs = (await d.notifications.list()).map(subscriptionView);
    return render(
      c,
      <Page title="Notifications" viewer={viewerOf(c.var)} section="notifications">
        <NotificationsPage
          subs={subs}
          runbooks={[...catalog.runbookIds()].sort()}
          teams={[...catalog.teams()].sort()}
          csrfToken={c.get('csrfToken')}
          fields={NEW_FIELDS}
          notice={NOTICES[c.req.query('notice') ?? '']}
          {...extra}
        />
      </Page>,
      status,
    );
  };
  app.get('/admin/notifications', page, adminOnly, (c) => {
    return show(c);
  });
  app.post('/admin/notifications', post, adminOnly, async (c) => {
    const form = c.get('form');
    // One checkbox per event, each its own field (a repeated field would keep only its last value).
    const events = NOTIFICATION_EVENTS.filter((e) => form[`event:${e}`] === 'on');
    const fields: SubscriptionFields = { url: form['url'] ?? '', runbook: form['runbook'] ?? '', team: form['team'] ?? '', events, enabled: form['enabled'] === 'true', description: form['description'] ?? '' };
    const body = subscriptionBodyOf(fields);
    const parsed = CreateSubscriptionBody.safeParse(body);
    if (!parsed.success) return show(c, { fields, error: describeIssues('form', parsed.error.issues, body).message }, 400);
    try {
      const made = await subscribe(d.notifications, catalog, c.get('user'), parsed.data);
      return await show(c, { secret: { id: made.subscription.id, secret: made.secret }, notice: `Added ${made.subscription.id}.` }, 201);
    } catch (e) {
      if (e instanceof HandrailError && e.kind === 'invalid_argument') return show(c, { fields, error: e.message }, 400);
      throw e;
    }
  });
  app.post('/admin/notifications/:id/enabled', post, adminOnly, async (c) => {
    const id = idOf(c);
    const v = c.get('form')['enabled'];
    if (v !== 'true' && v !== 'false') throw invalidArgument('enabled must be true or false');
    await d.notifications.setEnabled(id, v === 'true', { kind: 'user', id: c.get('user').name });
    return c.redirect(`/admin/notifications?notice=${v === 'true' ? 'on' : 'off'}`, 303);
  });
  app.post('/admin/notifications/:id/rotate', post, adminOnly, async (c) => {
    const r = await d.notifications.rotate(idOf(c), { kind: 'user', id: c.get('user').name });
    return show(c, { secret: { id: r.subscription.id, secret: r.secret }, notice: `New secret for ${r.subscription.id}; the old one no longer signs.` });
  });
  app.post('/admin/notifications/:id/remove', post, adminOnly, async (c) => {
    await d.notifications.remove(idOf(c), { kind: 'user', id: c.get('user').name });
    return c.redirect('/admin/notifications?notice=removed', 303);
  });
  return app;
}
