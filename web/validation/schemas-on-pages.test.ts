/**
 * The API's schemas on the portal's pages, through `app.request()`: a history query, a run's
 * reason and an execution id are refused (or not found) as the API would, naming the field.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOSTILE, type PortalHarness, teamsPortal } from '../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('the API\'s schemas on the pages', () => {
  it('refuses a history query the API would refuse, naming the field, and ignores a form\'s empty fields', async () => {
    await h.insertExecution({ id: 'exe-alice1', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'failed' });
    const a = await h.login('alice', 'alice-password');
    const bad = await a.get('/executions?state=exploded');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('state');
    expect(bad.html).toContain('exploded');
    const unknown = await a.get('/executions?sort=desc');
    expect(unknown.status).toBe(400);
    expect(unknown.html).toContain('sort');
    const cursor = await a.get(`/executions?before=${encodeURIComponent(HOSTILE)}`);
    expect(cursor.status).toBe(400);
    expect(cursor.html).not.toContain('<script>alert');
    const empty = await a.get('/executions?runbook=&user=&state=');
    expect(empty.status).toBe(200);
    expect(empty.html).toContain('exe-alice1');
    const filtered = await a.get('/executions?state=succeeded');
    expect(filtered.html).not.toContain('exe-alice1');
  });

  it('refuses a reason longer than the API takes, above the form, and starts nothing', async () => {
    const a = await h.login('alice', 'alice-password');
    const res = await a.post('/runbooks/portal-echo/run', { 'opt.message': 'hi', 'opt.count': '2', reason: 'x'.repeat(501) });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('The reason must be at most 500 characters long');
    expect(h.starts).toEqual([]);
    const ok = await a.post('/runbooks/portal-echo/run', { 'opt.message': 'hi', 'opt.count': '2', reason: 'x'.repeat(500) });
    expect(ok.status).toBe(303);
    expect(h.starts.map((s) => s.reason?.length)).toEqual([500]);
  });

  it('treats what is not an execution id as no execution, on the page and for a re-run', async () => {
    const a = await h.login('alice', 'alice-password');
    const page = await a.get(`/executions/${encodeURIComponent(HOSTILE)}`);
    expect(page.status).toBe(404);
    expect(page.html).not.toContain('<script>alert');
    const rerun = await a.get(`/runbooks/portal-echo?rerun=${encodeURIComponent(HOSTILE)}`);
    expect(rerun.status).toBe(200);
  });
});
