/**
 * GET /executions — the history: executions this user may see, newest first, filterable by
 * runbook, requester and state through the query string, paginated by keyset (`before`, the
 * cursor of the last row shown), so a page costs the same however long the history is.
 *
 * Only what the user may see is queried (coordinator/engine/execution-access.ts, the API's rule),
 * so every page is full and "Older" continues right after the last row shown.
 */
import { Hono } from 'hono';
import { EXECUTION_STATES, listExecutions, type ExecutionListQuery, type ExecutionSummary } from '../../../coordinator/store/execution-queries.js';
import { HandrailError } from '../../../core/errors.js';
import { ListQuery } from '../../api/execution-schemas.js';
import { describeIssues } from '../../validation/issues.js';
import { Page, render, StateBadge, Time } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

export const HISTORY_PAGE_SIZE = 50;


interface HistoryFilters {
  readonly runbook: string;
  readonly user: string;
  readonly state: string;
}

function query(f: HistoryFilters, before?: string): string {
  const p = new URLSearchParams();
  if (f.runbook) p.set('runbook', f.runbook);
  if (f.user) p.set('user', f.user);
  if (f.state) p.set('state', f.state);
  if (before) p.set('before', before);
  const s = p.toString();
  return s ? `?${s}` : '';
}

function HistoryPage(p: { rows: readonly ExecutionSummary[]; titles: ReadonlyMap<string, string>; filters: HistoryFilters; next: string | null; paged: boolean }) {
  const f = p.filters;
  return (
    <>
      <h1>History</h1>
      <form class="filters" method="get" action="/executions" role="search">
        <div class="field">
          <label for="runbook">Runbook id</label>
          <input id="runbook" name="runbook" value={f.runbook} />
        </div>
        <div class="field">
          <label for="user">Requested by</label>
          <input id="user" name="user" value={f.user} />
        </div>
        <div class="field">
          <label for="state">State</label>
          <select id="state" name="state">
            <option value="">any</option>
            {EXECUTION_STATES.map((s) => (
              <option value={s} selected={f.state === s}>
                {s.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Filter</button>
      </form>
      {p.rows.length === 0 ? (
        <p>No executions {f.runbook || f.user || f.state ? 'match these filters' : 'you may see yet'}.</p>
      ) : (
        <table class="wide" data-testid="history">
          <thead>
            <tr>
              <th scope="col">Execution</th>
              <th scope="col">Runbook</th>
              <th scope="col">Requested by</th>
              <th scope="col">State</th>
              <th scope="col">Requested</th>
            </tr>
          </thead>
          <tbody>
            {p.rows.map((e) => (
              <tr data-execution={e.id}>
                <td>
                  <a href={`/executions/${encodeURIComponent(e.id)}`}>
                    <code>{e.id}</code>
                  </a>
                </td>
                <td>{e.runbookId === null ? 'ad-hoc' : (p.titles.get(e.runbookId) ?? e.runbookId)}</td>
                <td>{e.requestedBy}</td>
                <td>
                  <StateBadge state={e.state} />
                </td>
                <td>
                  <Time iso={e.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav aria-label="Pages">
        {p.paged ? <a href={`/executions${query(f)}`}>Newest</a> : null}
        {p.paged && p.next ? ' · ' : null}
        {p.next ? <a href={`/executions${query(f, p.next)}`}>Older</a> : null}
      </nav>
    </>
  );
}

export function historyRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page } = pageMiddleware(d);
  app.get('/executions', page, async (c) => {
    // The API's own query schema (web/api/execution-schemas.ts): the same names, limits and messages.
    // A filter form sends its untouched fields empty: those are not filters.
    const given = Object.fromEntries(Object.entries(c.req.queries()).filter(([, v]) => !(v.length === 1 && v[0] === '')).map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
    const parsed = ListQuery.safeParse(given);
    if (!parsed.success) throw new HandrailError('invalid_argument', describeIssues('query', parsed.error.issues, given).message);
    const p = parsed.data;
    const filters: HistoryFilters = { runbook: p.runbook ?? '', user: p.user ?? '', state: p.state ?? '' };
    const before = p.before;
    const q: ExecutionListQuery = {
      limit: p.limit ?? HISTORY_PAGE_SIZE,
      ...(p.runbook ? { runbookId: p.runbook } : {}),
      ...(p.user ? { requestedBy: p.user } : {}),
      ...(p.state ? { state: p.state } : {}),
      ...(before ? { before } : {}),
    };
    const user = c.get('user');
    const result = await listExecutions(d.db, q, await d.access.scope(user));
    const rows = result.executions;
    const titles = new Map(d.catalog.list().map((l) => [l.runbook.metadata.id, l.runbook.metadata.title] as const));
    return render(
      c,
      <Page title="History" viewer={viewerOf(c.var)} section="executions">
        <HistoryPage rows={rows} titles={titles} filters={filters} next={result.next} paged={before !== undefined} />
      </Page>,
    );
  });
  return app;
}
