/**
 * The toil report through the portal (/toil) and the API (/api/v1/reports/toil) over a real
 * store: only executions the user may see count, the period bounds them, a hostile runbook
 * title renders escaped in the table and in the SVG chart, bad dates are a clear 400.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOSTILE, ORIGIN, PortalHarness, T0 } from '../../../test/helpers/portal-app.js';

const DAY = 86_400_000;
let h: PortalHarness;

const HOSTILE_RUNBOOK = `apiVersion: handrail/v1
kind: Runbook
metadata:
  id: portal-hostile
  title: ${JSON.stringify(HOSTILE)}
  owner: team-a
  manualMinutes: 60
spec:
  targets:
    selector: role=web
  steps:
    - name: look
      run: ["true"]
`;

const cookieOf = async (user: string, password: string): Promise<string> => (await h.login(user, password)).cookie;

async function page(cookie: string, path: string): Promise<{ status: number; html: string }> {
  const r = await h.app.request(`${ORIGIN}${path}`, { headers: { cookie } });
  return { status: r.status, html: await r.text() };
}

beforeEach(async () => {
  h = await PortalHarness.create({ extraRunbooks: HOSTILE_RUNBOOK });
  await h.addUser('alice', ['support-a'], 'alice-password');
  await h.addUser('carol', ['team-b'], 'carol-password');
  // In the default period (the 30 days up to T0's day).
  await h.insertExecution({ id: 'exe-a1', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 4000 });
  await h.insertExecution({ id: 'exe-a2', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 2000 });
  await h.insertExecution({ id: 'exe-a3', runbookId: 'portal-echo', requestedBy: 'bob', options: {}, state: 'failed', tookMs: 1000 });
  await h.insertExecution({ id: 'exe-h1', runbookId: 'portal-hostile', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 500 });
  await h.insertExecution({ id: 'exe-b1', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'succeeded', tookMs: 9000 });
  // Long before the period.
  h.clock = T0 - 100 * DAY;
  await h.insertExecution({ id: 'exe-old', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 1 });
  h.clock = T0;
});
afterEach(async () => {
  await h.close();
});

describe('toil page', () => {
  it('counts what the user may see in the period, per team and runbook, with hours saved', async () => {
    const a = await cookieOf('alice', 'alice-password');
    const { status, html } = await page(a, '/toil');
    expect(status).toBe(200);
    expect(html).toContain('href="/toil" aria-current="page"');
    // team-a: portal-echo 3 runs (2 succeeded × 12 min) + portal-hostile 1 run (1 × 60 min) = 84 min.
    const team = html.slice(html.indexOf('<tr data-team="team-a">'), html.indexOf('</tr>', html.indexOf('<tr data-team="team-a">')));
    expect(team).toContain('<td>4</td>');
    expect(team).toContain('<td>75%</td>');
    expect(team).toContain('<td>1.4 h</td>');
    const echo = html.slice(html.indexOf('<tr data-runbook="portal-echo">'), html.indexOf('</tr>', html.indexOf('<tr data-runbook="portal-echo">')));
    expect(echo).toContain('<td>3</td>');
    expect(echo).toContain('<td>67%</td>');
    expect(echo).toContain('<td>3.0 s</td>');
    expect(echo).toContain('<td>0.4 h</td>');
    // Team B's execution is not Alice's to see, not even as a count.
    expect(html).not.toContain('team-b');
    expect(html).not.toContain('portal-other');
    // The chart: accessible, a labelled bar per team.
    expect(html).toMatch(/<svg[^>]*role="img"[^>]*aria-labelledby="toil-chart-title toil-chart-desc"/);
    expect(html).toContain('<title id="toil-chart-title">Hours saved per team, 2026-10-25 to 2026-11-23</title>');
    expect(html).toContain('<desc id="toil-chart-desc">team-a: 1.4 h</desc>');
    expect(html).not.toContain('<script');
  });

  it('counts what has committed only: not an execution whose transaction is open, nor one that rolled back', async () => {
    const a = await cookieOf('alice', 'alice-password');
    const echoRuns = async (): Promise<string> => {
      const { html } = await page(a, '/toil');
      const at = html.indexOf('<tr data-runbook="portal-echo">');
      return html.slice(at, html.indexOf('</tr>', at));
    };
    expect(await echoRuns()).toContain('<td>3</td>');
    const open = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-a4', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 1000 }, tx));
    expect(await echoRuns()).toContain('<td>3</td>');
    await open.end('rollback');
    expect(await echoRuns()).toContain('<td>3</td>');
    const later = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-a5', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded', tookMs: 1000 }, tx));
    expect(await echoRuns()).toContain('<td>3</td>');
    await later.end('commit');
    expect(await echoRuns()).toContain('<td>4</td>');
  });

  it('renders a hostile runbook title escaped in the table and the chart', async () => {
    const a = await cookieOf('alice', 'alice-password');
    const { html } = await page(a, '/toil');
    expect(html).toContain('data-runbook="portal-hostile"');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<script>');
    // Each bar's title names the runbooks it is made of: there too, the title is text.
    const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>'));
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt; (1.0 h)');
    expect(svg).not.toContain('<img');
    expect(svg).not.toContain('<script');
  });

  it('takes the period from the URL and links presets as dates', async () => {
    const a = await cookieOf('alice', 'alice-password');
    const old = await page(a, '/toil?from=2026-08-01&to=2026-08-31');
    expect(old.status).toBe(200);
    expect(old.html).toContain('value="2026-08-01"');
    const echo = old.html.slice(old.html.indexOf('<tr data-runbook="portal-echo">'), old.html.indexOf('</tr>', old.html.indexOf('<tr data-runbook="portal-echo">')));
    expect(echo).toContain('<td>1</td>');
    expect(old.html).not.toContain('portal-hostile');
    const empty = await page(a, '/toil?from=2026-01-01&to=2026-01-31');
    expect(empty.html).toContain('No runbook executions you may see from 2026-01-01 to 2026-01-31.');
    expect(empty.html).not.toContain('<svg');
    const now = await page(a, '/toil');
    expect(now.html).toContain('href="/toil?from=2026-11-17&amp;to=2026-11-23"');
    expect(now.html).toContain('href="/toil?from=2026-08-26&amp;to=2026-11-23"');
    // Empty fields from the form are not given.
    expect((await page(a, '/toil?from=&to=')).status).toBe(200);
  });

  it('refuses bad dates and unknown parameters with a one-line 400', async () => {
    const a = await cookieOf('alice', 'alice-password');
    for (const q of ['from=2026-13-01', 'to=yesterday', 'from=2026-11-02&to=2026-11-01', `from=${encodeURIComponent(HOSTILE)}`, 'limit=5']) {
      const r = await page(a, `/toil?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.html, q).not.toContain('<img src=x');
      expect(r.html, q).not.toMatch(/at .*\.ts:\d+/);
    }
  });
});

describe('GET /api/v1/reports/toil', () => {
  it('answers the same report as JSON for the session, scoped to the caller', async () => {
    const api = async (cookie: string, q: string): Promise<Response> => h.api.request(`${ORIGIN}/api/v1/reports/toil${q}`, { headers: { cookie } });
    const a = await api(await cookieOf('alice', 'alice-password'), '?from=2026-11-01&to=2026-11-30');
    expect(a.status).toBe(200);
    const body = (await a.json()) as { from: string; to: string; teams: Array<{ team: string; hoursSaved: number; executions: number }>; runbooks: Array<{ runbookId: string; medianDurationMs: number | null }> };
    expect(body.from).toBe('2026-11-01');
    expect(body.teams).toEqual([{ team: 'team-a', executions: 4, succeeded: 3, successRate: 0.75, medianDurationMs: 2000, hoursSaved: 1.4 }]);
    expect(body.runbooks.map((r) => [r.runbookId, r.medianDurationMs])).toEqual([
      ['portal-hostile', 500],
      ['portal-echo', 3000],
    ]);
    const c = (await (await api(await cookieOf('carol', 'carol-password'), '')).json()) as { teams: Array<{ team: string; executions: number }> };
    expect(c.teams.map((t) => [t.team, t.executions])).toEqual([['team-b', 1]]);
    const bad = await api(await cookieOf('alice', 'alice-password'), '?from=2026-02-30');
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('from');
  });
});
