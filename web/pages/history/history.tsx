/**
 * GET /executions — the history: executions this user may see, newest first, filterable by
 * runbook, requester, state, owner team (when it was requested) and a time window through the
 * query string, paginated by keyset (`before`, the cursor of the last row shown), so a page
 * costs the same however long the history is.
 *
 * Only what the user may see is queried (coordinator/engine/execution-access.ts, the API's rule),
 * so every page is full and "Older" continues right after the last row shown.
 */
import { Hono } from 'hono';
import { EXECUTION_STATES, listExecutions, recordedTeams, type ExecutionSummary } from '../../../coordinator/store/execution-queries.js';
import { teamChoices } from '../../../coordinator/engine/history-filters.js';
import { ListQuery, listQueryOf } from '../../api/execution-schemas.js';
import { Page, render, StateBadge, Time } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { pageQuery } from '../page-query.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

export const HISTORY_PAGE_SIZE = 50;


interface HistoryFilters {
  readonly runbook: string;
  readonly user: string;
  readonly state: string;
  readonly team: string;
  readonly from: string;
  readonly to: string;
}

const FILTER_NAMES = ['runbook', 'user', 'state', 'team', 'from', 'to'] as const;

function query(f: HistoryFilters, before?: string): string {
  const p = new URLSearchParams();
  for (const k of FILTER_NAMES) if (f[k]) p.set(k, f[k]);
  if (before) p.set('before', before);
  const s = p.toString();
  return s ? `?${s}` : '';
}

function HistoryPage(p: { rows: readonly ExecutionSummary[]; titles: ReadonlyMap<string, string>; teams: readonly string[]; filters: HistoryFilters; next: string | null; paged: boolean }) {
  const f = p.filters;
  // A team typed into the URL that the list does not offer stays selected (and filters).
  const teams = f.team && !p.teams.includes(f.team) ? [...p.teams, f.team] : p.teams;
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
        <div class="field">
          <label for="team">Team</label>
          <select id="team" name="team">
            <option value="">any</option>
            {teams.map((t) => (
              <option value={t} selected={f.team === t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="from">From</label>
          <input id="from" name="from" value={f.from} placeholder="YYYY-MM-DD" aria-describedby="time-hint" inputmode="numeric" />
        </div>
        <div class="field">
          <label for="to">To</label>
          <input id="to" name="to" value={f.to} placeholder="YYYY-MM-DD" aria-describedby="time-hint" inputmode="numeric" />
        </div>
        <button type="submit">Filter</button>
        <p id="time-hint" class="muted">
          From and To take a UTC date (To includes that whole day) or a time such as 2026-11-23T09:30Z.
        </p>
      </form>
      {p.rows.length === 0 ? (
        <p>No executions {FILTER_NAMES.some((k) => f[k]) ? 'match these filters' : 'you may see yet'}.</p>
      ) : (
        <table class="wide" data-testid="history">
          <thead>
            <tr>
              <th scope="col">Execution</th>
              <th scope="col">Runbook</th>
              <th scope="col">Team</th>
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
                <td>{e.team ?? '—'}</td>
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
    // The API's own query schema (web/api/execution-schemas.ts).
    const p = pageQuery(c, ListQuery);
    const filters: HistoryFilters = { runbook: p.runbook ?? '', user: p.user ?? '', state: p.state ?? '', team: p.team ?? '', from: p.from ?? '', to: p.to ?? '' };
    const before = p.before;
    const q = listQueryOf(p, HISTORY_PAGE_SIZE);
    const user = c.get('user');
    const scope = await d.access.scope(user);
    const result = await listExecutions(d.reader, q, scope);
    const rows = result.executions;
    const teams = teamChoices(await recordedTeams(d.reader), scope);
    const titles = new Map(d.catalog.list().map((l) => [l.runbook.metadata.id, l.runbook.metadata.title] as const));
    return render(
      c,
      <Page title="History" viewer={viewerOf(c.var)} section="executions">
        <HistoryPage rows={rows} titles={titles} teams={teams} filters={filters} next={result.next} paged={before !== undefined} />
      </Page>,
    );
  });
  return app;
}
