/**
 * GET /hosts — the fleet as this user may act on it: admins see every agent; everyone else
 * sees the hosts that a runbook they may run would touch and that policy lets them run it on.
 * Each with its online state, labels, version, last contact and certificate expiry.
 *
 * For admins only (everyone else gets 404 for these):
 *  - GET /hosts/:id/revoke asks for confirmation; POST /hosts/:id/revoke revokes, as
 *    `handrail agents revoke` and POST /api/v1/agents/{id}/revoke do (web/api/agents.ts);
 *  - POST /hosts/install mints a one-time token and shows the one-line installer once
 *    (web/api/install-command.ts, the API's own logic); without HTTPS or an agent bundle the
 *    page says why instead of offering the form.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { findAgentRecord, listAgentRecords, type AgentRecord } from '../../../coordinator/registry/agent-registry.js';
import type { User } from '../../../coordinator/auth/user-store.js';
import { hostLabels } from '../../../coordinator/engine/engine.js';
import { matches } from '../../../core/selector.js';
import { parseLabelList } from '../../../core/labels.js';
import { HandrailError, notFound } from '../../../core/errors.js';
import { revokeAgent, AgentIdParam, RevokeBody } from '../../api/agents.js';
import { InstallCommandBody, installUnavailable, mintInstallCommand, type InstallCommand } from '../../api/install-command.js';
import { describeIssues } from '../../validation/issues.js';
import { CsrfField, Notice, Page, render, StateBadge, Time } from '../layout/layout.js';
import { ShownOnce } from '../layout/shown-once.js';
import { adminOnly, pageMiddleware } from '../page-middleware.js';
import { runnableRunbooks } from '../catalog/catalog.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The agents `user` may see on this page. */
export function visibleHosts(d: Pick<PortalDeps, 'catalog' | 'authz'>, user: User, agents: readonly AgentRecord[]): AgentRecord[] {
  if (d.authz.decide(user, 'admin').allowed) return [...agents];
  const runbooks = runnableRunbooks(d.catalog.list(), user, d.authz);
  return agents.filter((a) =>
    runbooks.some((l) => {
      const m = l.runbook.metadata;
      if (!matches(l.runbook.spec.selector, hostLabels(a))) return false;
      return d.authz.decide(user, 'run', { id: m.id, tags: m.tags, owner: m.owner }, { selector: l.runbook.spec.selectorText, agents: [{ id: a.id, name: a.name, labels: a.labels }] }).allowed;
    }),
  );
}

/** The install form's fields as typed (kept when the form comes back with an error). */
export interface InstallFields {
  readonly labels: string;
  readonly ttl: string;
  readonly namePattern: string;
  readonly uses: string;
}

const NO_FIELDS: InstallFields = { labels: '', ttl: '1h', namePattern: '', uses: '1' };

/** The admin's part of the page: the form, the line just made, or why there is none. */
interface InstallPart {
  readonly unavailable: string | undefined;
  readonly fields: InstallFields;
  readonly error: string | undefined;
  readonly made: InstallCommand | undefined;
}

function InstallSection(p: { install: InstallPart; csrfToken: string }) {
  const i = p.install;
  const f = i.fields;
  return (
    <section aria-labelledby="install-heading">
      <h2 id="install-heading">Install an agent</h2>
      {i.made ? (
        <ShownOnce id="install-line" label="Install command" value={i.made.line} rows={4}>
          Paste it in a root shell on the host. It enrolls up to {String(i.made.uses)} host{i.made.uses === 1 ? '' : 's'} until <Time iso={i.made.expiresAt} /> (token <code>{i.made.tokenId}</code>).
        </ShownOnce>
      ) : null}
      {i.unavailable !== undefined ? (
        <p class="notice" data-testid="install-unavailable">
          No install command from this coordinator: {i.unavailable}
        </p>
      ) : (
        <form method="post" action="/hosts/install" aria-describedby={i.error ? 'install-error' : undefined}>
          <CsrfField token={p.csrfToken} />
          {i.error ? (
            <p class="alert" role="alert" id="install-error">
              {i.error}
            </p>
          ) : null}
          <div class="field">
            <label for="install-labels">Labels</label>
            <p class="hint" id="install-labels-hint">
              key=value pairs, comma-separated, pinned on the agent (they override its own), e.g. role=web, zone=a
            </p>
            <input id="install-labels" name="labels" value={f.labels} aria-describedby="install-labels-hint" />
          </div>
          <div class="field">
            <label for="install-ttl">Valid for</label>
            <input id="install-ttl" name="ttl" value={f.ttl} aria-describedby="install-ttl-hint" />
            <p class="hint" id="install-ttl-hint">
              a duration such as 30m, 1h or 2d (at most 7d)
            </p>
          </div>
          <div class="field">
            <label for="install-name">Host name pattern</label>
            <input id="install-name" name="namePattern" value={f.namePattern} aria-describedby="install-name-hint" />
            <p class="hint" id="install-name-hint">
              optional: a glob the agent's name must match, e.g. web-*
            </p>
          </div>
          <div class="field">
            <label for="install-uses">Hosts</label>
            <input id="install-uses" name="uses" value={f.uses} inputmode="numeric" aria-describedby="install-uses-hint" />
            <p class="hint" id="install-uses-hint">
              how many hosts may enroll with the line
            </p>
          </div>
          <button type="submit">Make the install command</button>
        </form>
      )}
    </section>
  );
}

function HostsPage(p: { hosts: ReadonlyArray<{ agent: AgentRecord; state: string }>; all: boolean; notice?: string | undefined; install?: InstallPart | undefined; csrfToken: string }) {
  return (
    <>
      <h1>Hosts</h1>
      <Notice text={p.notice} />
      <p class="muted">{p.all ? 'Every enrolled agent.' : 'The hosts your runbooks can run on.'}</p>
      {p.hosts.length === 0 ? (
        <p>No host to show.</p>
      ) : (
        <table class="wide" data-testid="hosts">
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">State</th>
              <th scope="col">Labels</th>
              <th scope="col">Version</th>
              <th scope="col">Last seen</th>
              <th scope="col">Certificate expires</th>
              {p.all ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {p.hosts.map(({ agent: a, state }) => (
              <tr data-host={a.name}>
                <td>
                  <strong>{a.name}</strong>
                  <br />
                  <code class="muted">{a.id}</code>
                </td>
                <td>
                  <StateBadge state={state} />
                </td>
                <td>
                  {Object.entries(a.labels)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')}
                </td>
                <td>{a.version ?? '—'}</td>
                <td>
                  <Time iso={iso(a.lastSeenAt)} empty="never" />
                </td>
                <td>
                  <Time iso={iso(a.certNotAfter)} />
                </td>
                {p.all ? (
                  <td>
                    {a.revokedAt === null ? (
                      <a class="button secondary" href={`/hosts/${encodeURIComponent(a.id)}/revoke`} aria-label={`Revoke ${a.name}`}>
                        Revoke…
                      </a>
                    ) : (
                      <span class="muted">{a.revokeReason ?? 'revoked'}</span>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {p.install ? <InstallSection install={p.install} csrfToken={p.csrfToken} /> : null}
    </>
  );
}

function RevokePage(p: { agent: AgentRecord; online: boolean; csrfToken: string }) {
  const a = p.agent;
  return (
    <>
      <h1>Revoke {a.name}?</h1>
      <dl class="facts">
        <dt>Agent</dt>
        <dd>
          <code>{a.id}</code>
        </dd>
        <dt>State</dt>
        <dd>
          <StateBadge state={p.online ? 'online' : 'offline'} />
        </dd>
        <dt>Labels</dt>
        <dd>
          {Object.entries(a.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(', ')}
        </dd>
      </dl>
      <p class="notice">
        Its live connection is cut within a second and every later connection is refused: steps running on it are lost. A revoked host comes back only by enrolling again with a new
        token. This is recorded in the audit log under your name.
      </p>
      <form method="post" action={`/hosts/${encodeURIComponent(a.id)}/revoke`}>
        <CsrfField token={p.csrfToken} />
        <div class="field">
          <label for="reason">Reason</label>
          <input id="reason" name="reason" maxlength={500} placeholder="revoked by an administrator" />
        </div>
        <div class="actions">
          <button type="submit" class="danger">
            Revoke {a.name}
          </button>
          <a href="/hosts">Keep it</a>
        </div>
      </form>
    </>
  );
}

/** The install form's fields as the API's body (labels from "k=v, k=v"), or the one-line reason they are not. */
export function installBodyOf(f: InstallFields): { body: unknown } | { error: string } {
  let labels: Record<string, string>;
  try {
    labels = parseLabelList(f.labels);
  } catch (e) {
    return { error: `Labels: ${(e as Error).message}` };
  }
  const uses = f.uses.trim() === '' ? undefined : /^[0-9]{1,6}$/.test(f.uses.trim()) ? Number(f.uses.trim()) : NaN;
  if (uses !== undefined && Number.isNaN(uses)) return { error: 'Hosts: must be a whole number from 1 to 100000' };
  return {
    body: {
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(f.ttl.trim() ? { ttl: f.ttl.trim() } : {}),
      ...(f.namePattern.trim() ? { namePattern: f.namePattern.trim() } : {}),
      ...(uses !== undefined ? { uses } : {}),
    },
  };
}

const NOTICES: Readonly<Record<string, string>> = { revoked: 'Revoked: its connection is cut and it cannot connect again.', 'already-revoked': 'It was revoked already.' };

export function hostRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);
  const agentId = (c: Context<PortalEnv>): string => {
    const p = AgentIdParam.safeParse({ id: c.req.param('id') });
    if (!p.success) throw notFound('no such agent');
    return p.data.id;
  };
  const show = async (c: Context<PortalEnv>, install: Omit<InstallPart, 'unavailable'> | undefined, status: 200 | 400 = 200): Promise<Response> => {
    const user = c.get('user');
    const all = c.get('isAdmin') === true;
    const hosts = visibleHosts(d, user, await listAgentRecords(d.reader))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((a) => ({ agent: a, state: a.revokedAt !== null ? 'revoked' : d.isOnline(a.id) ? 'online' : 'offline' }));
    const part: InstallPart | undefined = all ? { unavailable: installUnavailable(d.install, c.req.url), ...(install ?? { fields: NO_FIELDS, error: undefined, made: undefined }) } : undefined;
    return render(
      c,
      <Page title="Hosts" viewer={viewerOf(c.var)} section="hosts">
        <HostsPage hosts={hosts} all={all} notice={NOTICES[c.req.query('notice') ?? '']} install={part} csrfToken={c.get('csrfToken')} />
      </Page>,
      status,
    );
  };
  app.get('/hosts', page, (c) => show(c, undefined));
  app.get('/hosts/:id/revoke', page, adminOnly, async (c) => {
    const id = agentId(c);
    const agent = await findAgentRecord(d.reader, id);
    if (!agent) throw notFound(`no agent ${id}`);
    if (agent.revokedAt !== null) return c.redirect('/hosts?notice=already-revoked', 303);
    return render(
      c,
      <Page title={`Revoke ${agent.name}`} viewer={viewerOf(c.var)} section="hosts">
        <RevokePage agent={agent} online={d.isOnline(agent.id)} csrfToken={c.get('csrfToken')} />
      </Page>,
    );
  });
  app.post('/hosts/:id/revoke', post, adminOnly, async (c) => {
    const id = agentId(c);
    const reason = (c.get('form')['reason'] ?? '').trim();
    const body = RevokeBody.safeParse(reason ? { reason } : {});
    if (!body.success) throw new HandrailError('invalid_argument', describeIssues('form', body.error.issues, { reason }).message);
    const changed = await revokeAgent(d.registry, d.authz, c.get('user'), id, body.data.reason, d.now());
    return c.redirect(`/hosts?notice=${changed ? 'revoked' : 'already-revoked'}`, 303);
  });
  app.post('/hosts/install', post, adminOnly, async (c) => {
    const form = c.get('form');
    const fields: InstallFields = { labels: form['labels'] ?? '', ttl: form['ttl'] ?? '', namePattern: form['namePattern'] ?? '', uses: form['uses'] ?? '' };
    const again = (error: string): Promise<Response> => show(c, { fields, error, made: undefined }, 400);
    const b = installBodyOf(fields);
    if ('error' in b) return again(b.error);
    const parsed = InstallCommandBody.safeParse(b.body);
    if (!parsed.success) return again(describeIssues('form', parsed.error.issues, b.body).message);
    try {
      const made = await mintInstallCommand(d.install, d.authz, c.get('user'), parsed.data, c.req.url);
      // The line holds the token's secret: in this response only, never in a log line.
      return await show(c, { fields: NO_FIELDS, error: undefined, made });
    } catch (e) {
      if (e instanceof HandrailError && e.kind === 'invalid_argument') return again(e.message);
      throw e;
    }
  });
  return app;
}
