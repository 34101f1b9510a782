/**
 * The execution page through `app.request()`: who, when, options (secrets masked), hostile values
 * escaped, the live view's script, 404 for another team's execution, cancel with the CSRF
 * token, and the re-run prefill.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fieldHtml, form, HOSTILE, ORIGIN, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('execution page', () => {
  beforeEach(async () => {
    await h.insertExecution({ id: 'exe-alice1', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: HOSTILE, count: '2', token: '********' }, state: 'running', reason: HOSTILE });
    await h.insertExecution({ id: 'exe-carol1', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'succeeded' });
  });

  it('shows who, when, the digest, options (secrets masked) and escapes hostile values', async () => {
    const a = await h.login('alice', 'alice-password');
    const { status, html } = await a.get('/executions/exe-alice1');
    expect(status).toBe(200);
    expect(html).toContain('data-testid="requested-by">alice<');
    expect(html).toContain('ab'.repeat(32));
    expect(html).toContain('********');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
    // Live view: the page follows the event stream through our own script only.
    expect(html).toContain('data-live-events="/api/v1/executions/exe-alice1/events"');
    expect(html).toMatch(/<script src="\/static\/live-output\.js\?v=[0-9a-f]{12}" defer=""><\/script>/);
    const script = await h.app.request(`${ORIGIN}${/src="(\/static\/live-output\.js\?v=[0-9a-f]{12})"/.exec(html)?.[1] ?? ''}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(script.headers.get('cache-control')).toContain('immutable');
    expect(await script.text()).toContain('EventSource');
    expect(html).toContain('Cancel execution');
  });

  it('shows the requester’s reason as the reason and why it ended as the outcome, both escaped', async () => {
    await h.insertExecution({ id: 'exe-alice2', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: 'hi', count: '1', token: '********' }, state: 'failed', reason: 'customer reports slow checkout', stateReason: `node web-1 failed: ${HOSTILE}` });
    const a = await h.login('alice', 'alice-password');
    const { status, html } = await a.get('/executions/exe-alice2');
    expect(status).toBe(200);
    expect(html).toMatch(/<dt>Reason<\/dt><dd>customer reports slow checkout<\/dd>/);
    expect(html).toMatch(/<dt>Outcome<\/dt><dd data-testid="state-reason">node web-1 failed: /);
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
  });

  it('gives not found for another team’s execution, the same as for none', async () => {
    const a = await h.login('alice', 'alice-password');
    const hidden = await a.get('/executions/exe-carol1');
    const missing = await a.get('/executions/exe-nothere');
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.html.replace('exe-carol1', 'X')).toBe(missing.html.replace('exe-nothere', 'X'));
    expect((await a.post('/executions/exe-carol1/cancel', {})).status).toBe(404);
    expect(h.cancels).toEqual([]);
    // … and it is not in the history either.
    const history = (await a.get('/executions')).html;
    expect(history).toContain('exe-alice1');
    expect(history).not.toContain('exe-carol1');
    const c = await h.login('carol', 'carol-password');
    expect((await c.get('/executions/exe-carol1')).status).toBe(200);
    expect((await c.get('/executions')).html).not.toContain('exe-alice1');
  });

  it('cancels with the CSRF token only', async () => {
    const a = await h.login('alice', 'alice-password');
    const f = form({});
    expect((await h.app.request(`${ORIGIN}/executions/exe-alice1/cancel`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: a.cookie, origin: ORIGIN } })).status).toBe(403);
    expect(h.cancels).toEqual([]);
    const res = await a.post('/executions/exe-alice1/cancel', {});
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/executions/exe-alice1?notice=cancel');
    expect(h.cancels).toEqual(['exe-alice1']);
    expect((await a.get('/executions/exe-alice1?notice=cancel')).html).toContain('Cancel requested');
  });

  it('offers a re-run prefilled with the options, secrets left empty', async () => {
    await h.insertExecution({ id: 'exe-alice2', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: 'again please', count: '4', token: '********' }, state: 'succeeded' });
    const a = await h.login('alice', 'alice-password');
    expect((await a.get('/executions/exe-alice2')).html).toContain('/runbooks/portal-echo?rerun=exe-alice2');
    const { html } = await a.get('/runbooks/portal-echo?rerun=exe-alice2');
    expect(fieldHtml(html, 'message')).toContain('value="again please"');
    expect(fieldHtml(html, 'count')).toContain('value="4"');
    expect(fieldHtml(html, 'token')).toContain('value=""');
    // Another team's execution prefills nothing.
    expect((await a.get('/runbooks/portal-echo?rerun=exe-carol1')).html).not.toContain('team-b-output');
  });

  it('shows what has committed only: not an execution whose transaction is open, nor one that rolled back', async () => {
    const a = await h.login('alice', 'alice-password');
    // An execution and the change of another, written by transactions still in progress (which may roll back).
    const inserted = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-open', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: 'uncommitted', count: '1', token: '' }, state: 'running' }, tx));
    expect((await a.get('/executions/exe-open')).status).toBe(404);
    const rerun = await a.get('/runbooks/portal-echo?rerun=exe-open');
    expect(rerun.status).toBe(200);
    expect(rerun.html).not.toContain('uncommitted');
    await inserted.end('rollback');
    expect((await a.get('/executions/exe-open')).status).toBe(404);

    const committed = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-soon', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: 'hi', count: '1', token: '' }, state: 'running' }, tx));
    expect((await a.get('/executions/exe-soon')).status).toBe(404);
    await committed.end('commit');
    const page = await a.get('/executions/exe-soon');
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-testid="requested-by">alice<');
  });
});
