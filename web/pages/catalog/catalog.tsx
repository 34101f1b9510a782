/**
 * GET /runbooks — the catalog: the runbooks this user may run (policy decides, as for the
 * API), searchable (`q`) and filterable by tag and owner team through the query string, so
 * every filtered view is a link. The tag and owner choices come from those same runbooks only.
 */
import { Hono } from 'hono';
import type { LoadedRunbook } from '../../../coordinator/runbooks/catalog.js';
import type { User } from '../../../coordinator/auth/user-store.js';
import type { Authorizer } from '../../auth/authorizer.js';
import { Page, render } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

export interface CatalogQuery {
  readonly q: string;
  readonly tag: string;
  readonly owner: string;
}

const ref = (l: LoadedRunbook): { id: string; tags: readonly string[]; owner: string } => ({ id: l.runbook.metadata.id, tags: l.runbook.metadata.tags, owner: l.runbook.metadata.owner });

/** The runbooks `user` may run, in id order. */
export function runnableRunbooks(all: readonly LoadedRunbook[], user: User, authz: Authorizer): LoadedRunbook[] {
  return all.filter((l) => authz.decide(user, 'run', ref(l)).allowed);
}

/** Which of `runbooks` match the search and filters (pure). */
export function filterRunbooks(runbooks: readonly LoadedRunbook[], q: CatalogQuery): LoadedRunbook[] {
  const words = q.q.toLowerCase().split(/\s+/).filter((w) => w !== '');
  return runbooks.filter((l) => {
    const m = l.runbook.metadata;
    if (q.tag && !m.tags.includes(q.tag)) return false;
    if (q.owner && m.owner !== q.owner) return false;
    const text = [m.id, m.title, m.description ?? '', m.owner, ...m.tags].join(' ').toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

function CatalogPage(p: { runbooks: readonly LoadedRunbook[]; shown: readonly LoadedRunbook[]; query: CatalogQuery }) {
  const tags = [...new Set(p.runbooks.flatMap((l) => l.runbook.metadata.tags))].sort();
  const owners = [...new Set(p.runbooks.map((l) => l.runbook.metadata.owner))].sort();
  const filtered = p.query.q !== '' || p.query.tag !== '' || p.query.owner !== '';
  return (
    <>
      <h1>Runbooks you can run</h1>
      <form class="filters" method="get" action="/runbooks" role="search">
        <div class="field">
          <label for="q">Search</label>
          <input id="q" name="q" type="search" value={p.query.q} />
        </div>
        <div class="field">
          <label for="tag">Tag</label>
          <select id="tag" name="tag">
            <option value="">any</option>
            {tags.map((t) => (
              <option value={t} selected={t === p.query.tag}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="owner">Owner team</label>
          <select id="owner" name="owner">
            <option value="">any</option>
            {owners.map((o) => (
              <option value={o} selected={o === p.query.owner}>
                {o}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Filter</button>
        {filtered ? <a href="/runbooks">Show all</a> : null}
      </form>
      <p class="muted" role="status">
        {p.shown.length === p.runbooks.length ? `${p.runbooks.length} runbook${p.runbooks.length === 1 ? '' : 's'}` : `${p.shown.length} of ${p.runbooks.length} runbooks`}
      </p>
      {p.runbooks.length === 0 ? <p>No runbook is open to you yet. Ask the owners of the runbooks you need, or your Handrail admins, to add a policy rule.</p> : null}
      <ul class="cards" data-testid="catalog">
        {p.shown.map((l) => {
          const m = l.runbook.metadata;
          return (
            <li data-runbook={m.id}>
              <h2>
                <a href={`/runbooks/${encodeURIComponent(m.id)}`}>{m.title}</a>
              </h2>
              <p class="muted">
                <code>{m.id}</code> · owner <a href={`/runbooks?owner=${encodeURIComponent(m.owner)}`}>{m.owner}</a>
                {m.manualMinutes !== undefined ? ` · saves about ${m.manualMinutes} min of manual work per run` : ''}
                {l.runbook.spec.approval ? ' · needs approval' : ''}
              </p>
              {m.description ? <p>{m.description}</p> : null}
              {m.tags.length > 0 ? (
                <ul class="tags" aria-label="Tags">
                  {m.tags.map((t) => (
                    <li>
                      <a href={`/runbooks?tag=${encodeURIComponent(t)}`}>{t}</a>
                    </li>
                  ))}
                </ul>
              ) : null}
            </li>
          );
        })}
      </ul>
    </>
  );
}

export function catalogRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page } = pageMiddleware(d);
  app.get('/', page, (c) => c.redirect('/runbooks', 303));
  app.get('/runbooks', page, (c) => {
    const query: CatalogQuery = { q: (c.req.query('q') ?? '').slice(0, 200), tag: (c.req.query('tag') ?? '').slice(0, 64), owner: (c.req.query('owner') ?? '').slice(0, 64) };
    const runbooks = runnableRunbooks(d.catalog.list(), c.get('user'), d.authz);
    return render(
      c,
      <Page title="Runbooks" viewer={viewerOf(c.var)} section="runbooks">
        <CatalogPage runbooks={runbooks} shown={filterRunbooks(runbooks, query)} query={query} />
      </Page>,
    );
  });
  return app;
}
