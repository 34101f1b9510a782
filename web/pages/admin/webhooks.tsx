/**
 * /admin/webhooks — inbound webhooks, for admins (everyone else: 404): the list, a form to
 * define one (runbook, service user, the JSON mapping from payload to options), and per hook
 * rotate the secret (the old one accepted 24 h more unless refused now) or remove it. The same
 * service and checks as /api/v1/webhooks (web/api/webhooks.ts). A new secret is shown in the
 * response that made it and never again.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { WebhookView } from '../../../coordinator/webhooks/webhook-admin.js';
import { HandrailError, notFound } from '../../../core/errors.js';
import { DefineWebhookBody } from '../../api/webhooks.js';
import { handrailId } from '../../validation/schemas.js';
import { describeIssues } from '../../validation/issues.js';
import { CsrfField, Notice, Page, render, Time } from '../layout/layout.js';
import { ShownOnce } from '../layout/shown-once.js';
import { adminOnly, pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

const ID = handrailId('whk', 'a webhook id');

export interface HookFields {
  readonly runbook: string;
  readonly runAs: string;
  readonly mapping: string;
  readonly description: string;
}

const EXAMPLE_MAPPING = '{\n  "options": {\n    "host": { "path": "$.alerts[0].labels.instance" }\n  }\n}';
const NEW_FIELDS: HookFields = { runbook: '', runAs: '', mapping: EXAMPLE_MAPPING, description: '' };

/** The form's fields as the API's body: the mapping is JSON text. Pure. */
export function hookBodyOf(f: HookFields): { body: Record<string, unknown> } | { error: string } {
  let mapping: unknown;
  try {
    mapping = JSON.parse(f.mapping);
  } catch (e) {
    return { error: `Mapping: not JSON (${(e as Error).message.split('\n')[0]?.slice(0, 120)})` };
  }
  return { body: { runbook: f.runbook, runAs: f.runAs.trim(), mapping, ...(f.description.trim() ? { description: f.description.trim() } : {}) } };
}

interface ViewProps {
  readonly hooks: readonly WebhookView[];
  readonly runbooks: readonly string[];
  readonly csrfToken: string;
  readonly fields: HookFields;
  readonly error?: string | undefined;
  readonly notice?: string | undefined;
  readonly secret?: { readonly id: string; readonly secret: string } | undefined;
}

function WebhooksPage(p: ViewProps) {
  const f = p.fields;
  return (
    <>
      <h1>Webhooks</h1>
      <p class="muted">
        An HMAC-signed POST to <code>/hooks/ID</code> starts the hook's runbook as its service user, under policy.
      </p>
      <Notice text={p.notice} />
      {p.secret ? (
        <ShownOnce id="new-secret" label={`Secret of ${p.secret.id}`} value={p.secret.secret} rows={2}>
          Sign deliveries to <code>/hooks/{p.secret.id}</code> with it (HMAC-SHA256).
        </ShownOnce>
      ) : null}
      {p.hooks.length === 0 ? (
        <p>No webhooks yet.</p>
      ) : (
        <table class="wide" data-testid="webhooks">
          <thead>
            <tr>
              <th scope="col">Hook</th>
              <th scope="col">Runs</th>
              <th scope="col">Mapping</th>
              <th scope="col">Secret</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {p.hooks.map((h) => (
              <tr data-webhook={h.id}>
                <td>
                  <code>/hooks/{h.id}</code>
                  {h.description ? (
                    <>
                      <br />
                      {h.description}
                    </>
                  ) : null}
                  <br />
                  <span class="muted">
                    by {h.createdBy}, <Time iso={h.createdAt} />
                  </span>
                </td>
                <td>
                  <code>{h.runbookId}</code> as <code>{h.runAs}</code>
                </td>
                <td>
                  <code>{JSON.stringify(h.mapping)}</code>
                </td>
                <td>
                  {h.rotatedAt ? (
                    <>
                      rotated <Time iso={h.rotatedAt} />
                    </>
                  ) : (
                    'as created'
                  )}
                  {h.previousSecretValidUntil ? (
                    <>
                      <br />
                      previous one valid until <Time iso={h.previousSecretValidUntil} />
                    </>
                  ) : null}
                </td>
                <td class="actions">
                  <form class="inline" method="post" action={`/admin/webhooks/${encodeURIComponent(h.id)}/rotate`}>
                    <CsrfField token={p.csrfToken} />
                    <label class="check">
                      <input type="checkbox" name="revokePrevious" value="on" /> refuse the old secret now
                    </label>
                    <button type="submit" class="secondary" aria-label={`Rotate the secret of ${h.id}`}>
                      Rotate secret
                    </button>
                  </form>
                  <form class="inline" method="post" action={`/admin/webhooks/${encodeURIComponent(h.id)}/remove`}>
                    <CsrfField token={p.csrfToken} />
                    <button type="submit" class="danger" aria-label={`Remove ${h.id}`}>
                      Remove
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2 id="add-heading">Define a webhook</h2>
      <form method="post" action="/admin/webhooks" aria-labelledby="add-heading">
        <CsrfField token={p.csrfToken} />
        {p.error ? (
          <p class="alert" role="alert">
            {p.error}
          </p>
        ) : null}
        <div class="field">
          <label for="whk-runbook">Runbook</label>
          <select id="whk-runbook" name="runbook" required>
            <option value="">choose one</option>
            {p.runbooks.map((r) => (
              <option value={r} selected={f.runbook === r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="whk-runas">Run as (a service user)</label>
          <input id="whk-runas" name="runAs" value={f.runAs} required />
        </div>
        <div class="field">
          <label for="whk-mapping">Mapping (JSON)</label>
          <p class="hint" id="whk-mapping-hint">
            options: NAME → {'{"path": "$.json.path"}'} or {'{"value": "fixed"}'}; optional target: {'{"label": "host", "path": "$…"}'}
          </p>
          <textarea id="whk-mapping" name="mapping" rows={6} class="copy" aria-describedby="whk-mapping-hint">
            {f.mapping}
          </textarea>
        </div>
        <div class="field">
          <label for="whk-description">Description</label>
          <input id="whk-description" name="description" value={f.description} maxlength={200} />
        </div>
        <button type="submit">Define</button>
      </form>
    </>
  );
}

export function webhookPageRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);
  const idOf = (c: Context<PortalEnv>): string => {
    const p = ID.safeParse(c.req.param('id'));
    if (!p.success) throw notFound('no such webhook');
    return p.data;
  };
  const show = async (c: Context<PortalEnv>, extra: Partial<ViewProps> = {}, status: 200 | 201 | 400 | 404 = 200): Promise<Response> =>
    render(
      c,
      <Page title="Webhooks" viewer={viewerOf(c.var)} section="webhooks">
        <WebhooksPage
          hooks={await d.webhooks.list()}
          runbooks={d.catalog
            .list()
            .map((l) => l.runbook.metadata.id)
            .sort()}
          csrfToken={c.get('csrfToken')}
          fields={NEW_FIELDS}
          notice={c.req.query('notice') === 'removed' ? 'Removed: deliveries to it are refused.' : undefined}
          {...extra}
        />
      </Page>,
      status,
    );
  app.get('/admin/webhooks', page, adminOnly, (c) => {
    return show(c);
  });
  app.post('/admin/webhooks', post, adminOnly, async (c) => {
    const form = c.get('form');
    const fields: HookFields = { runbook: form['runbook'] ?? '', runAs: form['runAs'] ?? '', mapping: form['mapping'] ?? '', description: form['description'] ?? '' };
    const b = hookBodyOf(fields);
    if ('error' in b) return show(c, { fields, error: b.error }, 400);
    const parsed = DefineWebhookBody.safeParse(b.body);
    if (!parsed.success) return show(c, { fields, error: describeIssues('form', parsed.error.issues, b.body).message }, 400);
    const v = parsed.data;
    try {
      const r = await d.webhooks.define({ runbookId: v.runbook, runAs: v.runAs, mapping: v.mapping, description: v.description ?? null }, c.get('user'));
      return await show(c, { secret: { id: r.hook.id, secret: r.secret }, notice: `Defined ${r.hook.id}.` }, 201);
    } catch (e) {
      // A runbook or user that does not exist, a mapping that does not fit the runbook: said above the form.
      if (e instanceof HandrailError && (e.kind === 'invalid_argument' || e.kind === 'not_found')) return show(c, { fields, error: e.message }, e.kind === 'not_found' ? 404 : 400);
      throw e;
    }
  });
  app.post('/admin/webhooks/:id/rotate', post, adminOnly, async (c) => {
    const keepPrevious = c.get('form')['revokePrevious'] !== 'on';
    const r = await d.webhooks.rotate(idOf(c), c.get('user'), keepPrevious);
    return show(c, { secret: { id: r.hook.id, secret: r.secret }, notice: keepPrevious ? `New secret for ${r.hook.id}; the old one is accepted for 24 hours more.` : `New secret for ${r.hook.id}; the old one is refused from now.` });
  });
  app.post('/admin/webhooks/:id/remove', post, adminOnly, async (c) => {
    await d.webhooks.remove(idOf(c), c.get('user'));
    return c.redirect('/admin/webhooks?notice=removed', 303);
  });
  return app;
}
