/**
 * The runbook page and its Run form through `app.request()`: what policy lets each user see (404
 * for what is hidden, the same as for nothing), the option form's validation (errors beside
 * fields, values kept, secrets never echoed) and the start it asks the engine for.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HandrailError } from '../../../core/errors.js';
import { fieldHtml, HOSTILE, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('runbook page', () => {
  it('shows description, owner, steps as they run, the hosts, and the generated form', async () => {
    const a = await h.login('alice', 'alice-password');
    const { status, html } = await a.get('/runbooks/portal-echo');
    expect(status).toBe(200);
    expect(html).toContain('Prints the message on every selected host');
    expect(html).toContain('team-a');
    expect(html).toContain('say hello');
    expect(html).toContain('printf &#39;hello %s from %s');
    expect(html).toMatch(/web-1<\/strong> — online/);
    expect(html).not.toContain('db-1');
    expect(html).toContain('name="opt.message"');
    expect(fieldHtml(html, 'count')).toContain('a whole number from 1 to 5');
    expect(fieldHtml(html, 'count')).toContain('value="1"');
    expect(fieldHtml(html, 'mode')).toContain('<option value="thorough">thorough</option>');
    expect(fieldHtml(html, 'token')).toContain('type="password"');
    expect(html).toContain('<button type="submit">Run</button>');
    expect(html).not.toContain('needs-approval');
  });

  it('says before Run that a runbook needs approval', async () => {
    const a = await h.login('alice', 'alice-password');
    const { html } = await a.get('/runbooks/portal-guarded');
    expect(html).toContain('data-testid="needs-approval"');
    expect(html).toContain('1 approval from group:web-leads');
    expect(html).toContain('Request approval to run');
  });

  it('gives not found, the same as for no runbook at all, for one the user may not see', async () => {
    const a = await h.login('alice', 'alice-password');
    const hidden = await a.get('/runbooks/portal-other');
    const missing = await a.get('/runbooks/no-such-runbook');
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.html.replace('portal-other', 'X')).toBe(missing.html.replace('no-such-runbook', 'X'));
    expect(hidden.html).not.toContain('Team B');
    expect((await a.post('/runbooks/portal-other/run', {})).status).toBe(404);
    expect(h.starts).toEqual([]);
  });

  it('shows a view-only runbook without a form, and refuses a run of it', async () => {
    const a = await h.login('alice', 'alice-password');
    const { status, html } = await a.get('/runbooks/portal-reference');
    expect(status).toBe(200);
    expect(html).toContain('You may look at this runbook but not run it.');
    expect(html).not.toContain('name="opt.');
    expect((await a.post('/runbooks/portal-reference/run', {})).status).toBe(403);
    expect(h.starts).toEqual([]);
  });

  it('shows each bad value’s error beside its field, keeps the values, never echoes a secret', async () => {
    const a = await h.login('alice', 'alice-password');
    const res = await a.post('/runbooks/portal-echo/run', { 'opt.message': HOSTILE, 'opt.count': '9', 'opt.mode': 'fast', 'opt.token': 'hunter2-secret', 'opt.gate': 'relative/path', reason: 'ticket <b>OPS-1</b>' });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(h.starts).toEqual([]);
    expect(fieldHtml(html, 'count')).toContain('count 9 is above the maximum 5');
    expect(fieldHtml(html, 'count')).toContain('aria-invalid="true"');
    expect(fieldHtml(html, 'count')).toContain('value="9"');
    expect(fieldHtml(html, 'gate')).toContain('does not match the pattern');
    expect(fieldHtml(html, 'message')).not.toContain('class="error"');
    // The hostile value is kept, escaped, in its field and nowhere raw.
    expect(fieldHtml(html, 'message')).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('value="ticket &lt;b&gt;OPS-1&lt;/b&gt;"');
    expect(html).not.toContain('hunter2-secret');
    expect(html).toContain('2 options need a change');
  });

  it('says a required option is required, and an engine refusal above the form', async () => {
    const a = await h.login('alice', 'alice-password');
    const missing = await (await a.post('/runbooks/portal-echo/run', {})).text();
    expect(fieldHtml(missing, 'message')).toContain('Message is required');
    h.failNextStart = new HandrailError('permission_denied', 'not allowed to run portal-echo: no rule allows alice on db-9');
    const refused = await a.post('/runbooks/portal-echo/run', { 'opt.message': 'hello', 'opt.count': '3' });
    expect(refused.status).toBe(403);
    const html = await refused.text();
    expect(html).toContain('no rule allows alice on db-9');
    expect(fieldHtml(html, 'count')).toContain('value="3"');
  });

  it('starts the execution with the typed options and goes to its page', async () => {
    const a = await h.login('alice', 'alice-password');
    const res = await a.post('/runbooks/portal-echo/run', { 'opt.message': 'hello', 'opt.count': '', 'opt.mode': 'thorough', 'opt.token': 's3cret', 'opt.gate': '', reason: ' disk alert ' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/executions/exe-test1');
    expect(h.starts).toEqual([{ runbookId: 'portal-echo', options: { message: 'hello', mode: 'thorough', token: 's3cret' }, reason: 'disk alert', user: 'alice' }]);
  });
});
