/**
 * GET /toil — the toil report: hours saved per team as a bar chart drawn on the server (SVG
 * with a <title> and <desc>, a text label on every bar, no script), and the table behind it,
 * per team and per runbook, over a period chosen with from/to dates or a preset. The period
 * is in the URL (`?from=YYYY-MM-DD&to=YYYY-MM-DD`), so a report can be linked to. The data is
 * the API's (web/api/reports.ts: GET /api/v1/reports/toil), for what this user may see.
 */
import { Hono } from 'hono';
import { presetPeriod, type ToilPeriod, type ToilReport, type ToilRunbookRow, type ToilTeamRow } from '../../../coordinator/engine/toil-report.js';
import { periodOf, toilFor, ToilQuery } from '../../api/reports.js';
import { millis, Page, render } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { pageQuery } from '../page-query.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

const PRESETS = [7, 30, 90] as const;

const percent = (r: number | null): string => (r === null ? '' : `${Math.round(r * 100)}%`);
const hoursText = (h: number): string => `${h.toFixed(1)} h`;

const BAR_HEIGHT = 24;
const GAP = 8;
const LABEL_WIDTH = 180;
const BAR_WIDTH = 360;
const VALUE_WIDTH = 80;

/** Hours saved per team, one horizontal bar each, longest for the most hours. */
export function ToilChart(p: { teams: readonly ToilTeamRow[]; runbooks: readonly ToilRunbookRow[]; period: ToilPeriod }) {
  const max = Math.max(0, ...p.teams.map((t) => t.hoursSaved));
  const height = p.teams.length * (BAR_HEIGHT + GAP) + GAP;
  const width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
  const summary = p.teams.map((t) => `${t.team}: ${hoursText(t.hoursSaved)}`).join('; ');
  return (
    <svg class="toil-chart" role="img" aria-labelledby="toil-chart-title toil-chart-desc" width={width} height={height} viewBox={`0 0 ${width} ${height}`} data-testid="toil-chart">
      <title id="toil-chart-title">Hours saved per team, {p.period.from} to {p.period.to}</title>
      <desc id="toil-chart-desc">{summary}</desc>
      {p.teams.map((t, i) => {
        const y = GAP + i * (BAR_HEIGHT + GAP);
        const w = max === 0 ? 0 : Math.max(1, Math.round((t.hoursSaved / max) * BAR_WIDTH));
        return (
          <g data-team={t.team}>
            {/* A bar's own title (a tooltip, read by screen readers): the runbooks it is made of. */}
            <title>
              {t.team}: {hoursText(t.hoursSaved)} from{' '}
              {p.runbooks
                .filter((r) => r.team === t.team)
                .map((r) => `${r.title} (${hoursText(r.hoursSaved)})`)
                .join(', ')}
            </title>
            <text x={LABEL_WIDTH - 8} y={y + BAR_HEIGHT / 2} text-anchor="end" dominant-baseline="middle">
              {t.team}
            </text>
            <rect x={LABEL_WIDTH} y={y} width={w} height={BAR_HEIGHT} fill="currentColor" opacity="0.6" />
            <text x={LABEL_WIDTH + w + 6} y={y + BAR_HEIGHT / 2} dominant-baseline="middle">
              {hoursText(t.hoursSaved)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function ToilPage(p: { report: ToilReport; period: ToilPeriod; now: number }) {
  const { teams, runbooks } = p.report;
  return (
    <>
      <h1>Toil report</h1>
      <form class="filters" method="get" action="/toil">
        <div class="field">
          <label for="from">From</label>
          <input id="from" name="from" type="date" value={p.period.from} />
        </div>
        <div class="field">
          <label for="to">To</label>
          <input id="to" name="to" type="date" value={p.period.to} />
        </div>
        <button type="submit">Show</button>
      </form>
      <p>
        Last{' '}
        {PRESETS.map((days, i) => {
          const r = presetPeriod(days, p.now);
          return (
            <>
              {i > 0 ? ' · ' : null}
              <a href={`/toil?from=${r.from}&to=${r.to}`} aria-current={r.from === p.period.from && r.to === p.period.to ? 'page' : undefined}>
                {days} days
              </a>
            </>
          );
        })}
      </p>
      {teams.length === 0 ? (
        <p>
          No runbook executions you may see from {p.period.from} to {p.period.to}.
        </p>
      ) : (
        <>
          <h2>Hours saved per team</h2>
          <ToilChart teams={teams} runbooks={runbooks} period={p.period} />
          <table class="wide" data-testid="toil-teams">
            <caption>Per team, {p.period.from} to {p.period.to}</caption>
            <thead>
              <tr>
                <th scope="col">Team</th>
                <th scope="col">Executions</th>
                <th scope="col">Success rate</th>
                <th scope="col">Median duration</th>
                <th scope="col">Hours saved</th>
              </tr>
            </thead>
            <tbody>
              {teams.map((t) => (
                <tr data-team={t.team}>
                  <th scope="row">{t.team}</th>
                  <td>{t.executions}</td>
                  <td>{percent(t.successRate)}</td>
                  <td>{t.medianDurationMs === null ? '' : millis(t.medianDurationMs)}</td>
                  <td>{hoursText(t.hoursSaved)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <table class="wide" data-testid="toil-runbooks">
            <caption>Per runbook</caption>
            <thead>
              <tr>
                <th scope="col">Runbook</th>
                <th scope="col">Team</th>
                <th scope="col">Executions</th>
                <th scope="col">Success rate</th>
                <th scope="col">Median duration</th>
                <th scope="col">Manual minutes</th>
                <th scope="col">Hours saved</th>
              </tr>
            </thead>
            <tbody>
              {runbooks.map((r) => (
                <tr data-runbook={r.runbookId}>
                  <th scope="row">
                    <a href={`/runbooks/${encodeURIComponent(r.runbookId)}`}>{r.title}</a>
                  </th>
                  <td>{r.team}</td>
                  <td>{r.executions}</td>
                  <td>{percent(r.successRate)}</td>
                  <td>{r.medianDurationMs === null ? '' : millis(r.medianDurationMs)}</td>
                  <td>{r.manualMinutes ?? 'not given'}</td>
                  <td>{hoursText(r.hoursSaved)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}

export function toilRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page } = pageMiddleware(d);
  app.get('/toil', page, async (c) => {
    // The API's own query schema; a date field left empty is not given.
    const query = pageQuery(c, ToilQuery);
    const now = d.now();
    const period = periodOf(query, now);
    const report = await toilFor(d.reader, d.access, d.catalog, c.get('user'), period);
    return render(
      c,
      <Page title="Toil report" viewer={viewerOf(c.var)} section="toil">
        <ToilPage report={report} period={period} now={now} />
      </Page>,
    );
  });
  return app;
}
