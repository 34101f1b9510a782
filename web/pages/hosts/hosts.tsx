/**
 * GET /hosts — the fleet as this user may act on it: admins see every agent; everyone else
 * sees the hosts that a runbook they may run would touch and that policy lets them run it on.
 * Each with its online state, labels, version, last contact and certificate expiry.
 */
import { Hono } from 'hono';
import type { AgentRecord } from '../../../coordinator/registry/agent-registry.js';
import type { User } from '../../../coordinator/auth/user-store.js';
import { hostLabels } from '../../../coordinator/engine/engine.js';
import { matches } from '../../../core/selector.js';
import { Page, render, StateBadge, Time } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
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

function HostsPage(p: { hosts: ReadonlyArray<{ agent: AgentRecord; state: string }>; all: boolean }) {
  return (
    <>
      <h1>Hosts</h1>
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
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function hostRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page } = pageMiddleware(d);
  app.get('/hosts', page, async (c) => {
    const user = c.get('user');
    const all = d.authz.decide(user, 'admin').allowed;
    const hosts = visibleHosts(d, user, await d.registry.list())
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((a) => ({ agent: a, state: a.revokedAt !== null ? 'revoked' : d.isOnline(a.id) ? 'online' : 'offline' }));
    return render(
      c,
      <Page title="Hosts" viewer={viewerOf(c.var)} section="hosts">
        <HostsPage hosts={hosts} all={all} />
      </Page>,
    );
  });
  return app;
}
