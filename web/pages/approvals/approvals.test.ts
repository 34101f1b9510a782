/**
 * The approvals inbox through `app.request()`: an approver sees the request with its context, the
 * requester never their own; deciding needs the CSRF token and shows on the execution page.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { form, HOSTILE, ORIGIN, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('approvals inbox', () => {
  beforeEach(async () => {
    await h.addUser('bob', ['web-leads'], 'bob-password');
    await h.addUser('ann', ['support-a', 'web-leads'], 'ann-password');
    await h.insertExecution({ id: 'exe-wait1', runbookId: 'portal-guarded', requestedBy: 'ann', options: { note: HOSTILE }, state: '', reason: 'deploy 42', approval: { required: 1, from: ['group:web-leads'] } });
  });

  it('shows an approver the request with its context, never the requester their own', async () => {
    const b = await h.login('bob', 'bob-password');
    const { html } = await b.get('/approvals');
    expect(html).toContain('data-approval="exe-wait1"');
    expect(html).toContain('Restart with a lead&#39;s approval');
    expect(html).toContain('deploy 42');
    expect(html).toContain('portal-test/web-leads-approve-team-a');
    expect(html).not.toContain('<img src=x');
    const ann = await h.login('ann', 'ann-password');
    expect((await ann.get('/approvals')).html).not.toContain('data-approval="exe-wait1"');
    expect((await ann.post('/approvals/exe-wait1', { decision: 'approve' })).status).toBe(404);
    const c = await h.login('carol', 'carol-password');
    expect((await c.get('/approvals')).html).not.toContain('exe-wait1');
    expect((await c.post('/approvals/exe-wait1', { decision: 'approve' })).status).toBe(404);
    expect(h.decisions).toEqual([]);
  });

  it('approves with a comment and the CSRF token, and the execution page shows the decision', async () => {
    const b = await h.login('bob', 'bob-password');
    const f = form({ decision: 'approve' });
    expect((await h.app.request(`${ORIGIN}/approvals/exe-wait1`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: b.cookie, origin: ORIGIN } })).status).toBe(403);
    expect((await b.post('/approvals/exe-wait1', { decision: 'maybe' })).status).toBe(400);
    const res = await b.post('/approvals/exe-wait1', { decision: 'approve', comment: 'go ahead' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/executions/exe-wait1?notice=approve');
    expect(h.decisions).toEqual([{ id: 'exe-wait1', user: 'bob', decision: 'approve', comment: 'go ahead' }]);
    await h.insertDecision('exe-wait1', 'bob', 'approve', 'go ahead');
    const ann = await h.login('ann', 'ann-password');
    const page = (await ann.get('/executions/exe-wait1')).html;
    expect(page).toContain('data-testid="decisions"');
    expect(page).toMatch(/<td>bob<\/td><td>approved<\/td><td>go ahead<\/td>/);
    // Decided once: no longer in bob's inbox.
    expect((await b.get('/approvals')).html).not.toContain('data-approval="exe-wait1"');
  });

  it('shows what has committed only: not a request whose transaction is open, nor one that rolled back', async () => {
    const b = await h.login('bob', 'bob-password');
    const request = { runbookId: 'portal-guarded', requestedBy: 'ann', options: {}, state: '', reason: 'not yet', approval: { required: 1, from: ['group:web-leads'] } };
    const open = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-wait2', ...request }, tx));
    const inbox = (await b.get('/approvals')).html;
    expect(inbox).toContain('data-approval="exe-wait1"');
    expect(inbox).not.toContain('exe-wait2');
    await open.end('rollback');
    expect((await b.get('/approvals')).html).not.toContain('exe-wait2');

    const later = await h.openTransaction((tx) => h.insertExecution({ id: 'exe-wait3', ...request }, tx));
    expect((await b.get('/approvals')).html).not.toContain('exe-wait3');
    await later.end('commit');
    expect((await b.get('/approvals')).html).toContain('data-approval="exe-wait3"');
  });
});
