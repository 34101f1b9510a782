/**
 * The portal's pages through `app.request()`: what policy lets each user see (lists and URLs,
 * 404 for what is hidden), the option form's validation (errors beside fields, values kept,
 * secrets never echoed), escaping of hostile values, and the execution page.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HandrailError } from '../../core/errors.js';
import { cookiesOf, csrfIn, form, PortalHarness } from '../helpers/portal-app.js';

const ORIGIN = 'http://localhost';
const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`;
let h: PortalHarness;

interface Session {
  cookie: string;
  csrf: string;
  get(path: string): Promise<{ status: number; html: string }>;
  post(path: string, fields: Record<string, string>): Promise<Response>;
}

async function login(user: string, password: string): Promise<Session> {
  const page = await h.app.request(`${ORIGIN}/login`);
  const nonce = cookiesOf(page).get('hr_login')?.value as string;
  const f = form({ _csrf: csrfIn(await page.text()), user, password, next: '/' });
  const res = await h.app.request(`${ORIGIN}/login`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: `hr_login=${nonce}`, origin: ORIGIN } });
  expect(res.status).toBe(303);
  const cookie = `hr_session=${cookiesOf(res).get('hr_session')?.value}`;
  const get = async (path: string): Promise<{ status: number; html: string }> => {
    const r = await h.app.request(`${ORIGIN}${path}`, { headers: { cookie } });
    return { status: r.status, html: await r.text() };
  };
  const csrf = csrfIn((await get('/runbooks')).html);
  return {
    cookie,
    csrf,
    get,
    post: async (path, fields) => {
      const p = form({ _csrf: csrf, ...fields });
      return h.app.request(`${ORIGIN}${path}`, { method: 'POST', body: p.body, headers: { ...p.headers, cookie, origin: ORIGIN, 'sec-fetch-site': 'same-origin' } });
    },
  };
}

/** The HTML inside the element that carries `attr` (a crude slice, enough for assertions). */
function fieldHtml(html: string, option: string): string {
  const start = html.indexOf(`data-option="${option}"`);
  expect(start, `field ${option}`).toBeGreaterThan(0);
  return html.slice(start, html.indexOf('data-option=', start + 10) > 0 ? html.indexOf('data-option=', start + 10) : html.indexOf('</fieldset>', start));
}

beforeEach(async () => {
  h = await PortalHarness.create();
  await h.addUser('alice', ['support-a'], 'alice-password');
  await h.addUser('carol', ['team-b'], 'carol-password');
  await h.addUser('root', ['admins'], 'root-password');
  await h.insertAgent('agt-web1', 'web-1', { role: 'web' });
  await h.insertAgent('agt-web2', 'web-2', { role: 'web' });
  await h.insertAgent('agt-db1', 'db-1', { role: 'db' });
});
afterEach(async () => {
  await h.close();
});

describe('catalog', () => {
  it('lists only the runbooks the user may run, with owner, tags and minutes saved', async () => {
    const a = await login('alice', 'alice-password');
    const { html } = await a.get('/runbooks');
    expect(html).toContain('data-runbook="portal-echo"');
    expect(html).toContain('data-runbook="portal-guarded"');
    expect(html).not.toContain('portal-other');
    expect(html).not.toContain("Team B");
    // View-only runbooks are not in the catalog of what one may run.
    expect(html).not.toContain('data-runbook="portal-reference"');
    expect(html).toContain('saves about 12 min');
    expect(html).toContain('needs approval');
    const c = await login('carol', 'carol-password');
    const other = (await c.get('/runbooks')).html;
    expect(other).toContain('data-runbook="portal-other"');
    expect(other).not.toContain('data-runbook="portal-echo"');
  });

  it('searches and filters by tag and owner through the query string', async () => {
    const r = await login('root', 'root-password');
    const ids = async (q: string): Promise<string[]> => [...(await r.get(`/runbooks${q}`)).html.matchAll(/data-runbook="([^"]+)"/g)].map((m) => m[1] as string);
    expect(await ids('')).toEqual(['portal-echo', 'portal-guarded', 'portal-other', 'portal-reference']);
    expect(await ids('?tag=repair')).toEqual(['portal-guarded']);
    expect(await ids('?owner=team-b')).toEqual(['portal-other']);
    expect(await ids('?q=hello+web')).toEqual(['portal-echo']);
    expect(await ids('?q=nothing-like-this')).toEqual([]);
    expect(await ids(`?q=${encodeURIComponent(HOSTILE)}`)).toEqual([]);
    expect((await r.get(`/runbooks?q=${encodeURIComponent(HOSTILE)}`)).html).not.toContain('<img src=x');
  });
});

describe('runbook page', () => {
  it('shows description, owner, steps as they run, the hosts, and the generated form', async () => {
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    const { html } = await a.get('/runbooks/portal-guarded');
    expect(html).toContain('data-testid="needs-approval"');
    expect(html).toContain('1 approval from group:web-leads');
    expect(html).toContain('Request approval to run');
  });

  it('gives not found, the same as for no runbook at all, for one the user may not see', async () => {
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    const { status, html } = await a.get('/runbooks/portal-reference');
    expect(status).toBe(200);
    expect(html).toContain('You may look at this runbook but not run it.');
    expect(html).not.toContain('name="opt.');
    expect((await a.post('/runbooks/portal-reference/run', {})).status).toBe(403);
    expect(h.starts).toEqual([]);
  });

  it('shows each bad value’s error beside its field, keeps the values, never echoes a secret', async () => {
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    const res = await a.post('/runbooks/portal-echo/run', { 'opt.message': 'hello', 'opt.count': '', 'opt.mode': 'thorough', 'opt.token': 's3cret', 'opt.gate': '', reason: ' disk alert ' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/executions/exe-test1');
    expect(h.starts).toEqual([{ runbookId: 'portal-echo', options: { message: 'hello', mode: 'thorough', token: 's3cret' }, reason: 'disk alert', user: 'alice' }]);
  });
});

describe('execution page', () => {
  beforeEach(async () => {
    await h.insertExecution({ id: 'exe-alice1', runbookId: 'portal-echo', requestedBy: 'alice', options: { message: HOSTILE, count: '2', token: '********' }, state: 'running', reason: HOSTILE });
    await h.insertExecution({ id: 'exe-carol1', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'succeeded' });
  });

  it('shows who, when, the digest, options (secrets masked) and escapes hostile values', async () => {
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    const { status, html } = await a.get('/executions/exe-alice2');
    expect(status).toBe(200);
    expect(html).toMatch(/<dt>Reason<\/dt><dd>customer reports slow checkout<\/dd>/);
    expect(html).toMatch(/<dt>Outcome<\/dt><dd data-testid="state-reason">node web-1 failed: /);
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
  });

  it('gives not found for another team’s execution, the same as for none', async () => {
    const a = await login('alice', 'alice-password');
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
    const c = await login('carol', 'carol-password');
    expect((await c.get('/executions/exe-carol1')).status).toBe(200);
    expect((await c.get('/executions')).html).not.toContain('exe-alice1');
  });

  it('cancels with the CSRF token only', async () => {
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    expect((await a.get('/executions/exe-alice2')).html).toContain('/runbooks/portal-echo?rerun=exe-alice2');
    const { html } = await a.get('/runbooks/portal-echo?rerun=exe-alice2');
    expect(fieldHtml(html, 'message')).toContain('value="again please"');
    expect(fieldHtml(html, 'count')).toContain('value="4"');
    expect(fieldHtml(html, 'token')).toContain('value=""');
    // Another team's execution prefills nothing.
    expect((await a.get('/runbooks/portal-echo?rerun=exe-carol1')).html).not.toContain('team-b-output');
  });
});

describe('approvals inbox', () => {
  beforeEach(async () => {
    await h.addUser('bob', ['web-leads'], 'bob-password');
    await h.addUser('ann', ['support-a', 'web-leads'], 'ann-password');
    await h.insertExecution({ id: 'exe-wait1', runbookId: 'portal-guarded', requestedBy: 'ann', options: { note: HOSTILE }, state: '', reason: 'deploy 42', approval: { required: 1, from: ['group:web-leads'] } });
  });

  it('shows an approver the request with its context, never the requester their own', async () => {
    const b = await login('bob', 'bob-password');
    const { html } = await b.get('/approvals');
    expect(html).toContain('data-approval="exe-wait1"');
    expect(html).toContain('Restart with a lead&#39;s approval');
    expect(html).toContain('deploy 42');
    expect(html).toContain('portal-test/web-leads-approve-team-a');
    expect(html).not.toContain('<img src=x');
    const ann = await login('ann', 'ann-password');
    expect((await ann.get('/approvals')).html).not.toContain('data-approval="exe-wait1"');
    expect((await ann.post('/approvals/exe-wait1', { decision: 'approve' })).status).toBe(404);
    const c = await login('carol', 'carol-password');
    expect((await c.get('/approvals')).html).not.toContain('exe-wait1');
    expect((await c.post('/approvals/exe-wait1', { decision: 'approve' })).status).toBe(404);
    expect(h.decisions).toEqual([]);
  });

  it('approves with a comment and the CSRF token, and the execution page shows the decision', async () => {
    const b = await login('bob', 'bob-password');
    const f = form({ decision: 'approve' });
    expect((await h.app.request(`${ORIGIN}/approvals/exe-wait1`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: b.cookie, origin: ORIGIN } })).status).toBe(403);
    expect((await b.post('/approvals/exe-wait1', { decision: 'maybe' })).status).toBe(400);
    const res = await b.post('/approvals/exe-wait1', { decision: 'approve', comment: 'go ahead' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/executions/exe-wait1?notice=approve');
    expect(h.decisions).toEqual([{ id: 'exe-wait1', user: 'bob', decision: 'approve', comment: 'go ahead' }]);
    await h.insertDecision('exe-wait1', 'bob', 'approve', 'go ahead');
    const ann = await login('ann', 'ann-password');
    const page = (await ann.get('/executions/exe-wait1')).html;
    expect(page).toContain('data-testid="decisions"');
    expect(page).toMatch(/<td>bob<\/td><td>approved<\/td><td>go ahead<\/td>/);
    // Decided once: no longer in bob's inbox.
    expect((await b.get('/approvals')).html).not.toContain('data-approval="exe-wait1"');
  });
});

describe('hosts page', () => {
  it('shows admins every agent and others the hosts their runbooks run on', async () => {
    const r = await login('root', 'root-password');
    const all = (await r.get('/hosts')).html;
    for (const n of ['web-1', 'web-2', 'db-1']) expect(all).toContain(`data-host="${n}"`);
    const a = await login('alice', 'alice-password');
    const some = (await a.get('/hosts')).html;
    expect(some).toContain('data-host="web-1"');
    expect(some).not.toContain('data-host="db-1"');
  });
});

describe('every state main has, as the pages show it', () => {
  const STEP_STATES = ['dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'error', 'interrupted', 'rejected', 'expired', 'lost'] as const;
  const NODE_STATES = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'canceled'] as const;

  it('draws each execution, node and step-run state with its tone and meaning; an interrupted step says it runs again', async () => {
    await h.insertExecution({ id: 'exe-states', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'running' });
    for (const [i, state] of NODE_STATES.entries()) {
      await h.data.db.run('INSERT INTO execution_nodes (execution_id, agent_id, node_index, agent_name, state) VALUES (?, ?, ?, ?, ?)', ['exe-states', `agt-n${i}`, i, `node-${i}`, state]);
    }
    for (const [i, state] of STEP_STATES.entries()) {
      await h.data.db.run('INSERT INTO step_runs (id, execution_id, agent_id, step_index, attempt, name, state, dispatched_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)', [`sr-s${i}`, 'exe-states', 'agt-n1', i + 1, `step-${state}`, state, h.clock + i]);
    }
    const a = await login('alice', 'alice-password');
    const { status, html } = await a.get('/executions/exe-states');
    expect(status).toBe(200);
    const badge = (attr: string): string => {
      const at = html.indexOf(attr);
      expect(at, attr).toBeGreaterThan(0);
      const open = html.lastIndexOf('<span', at);
      return html.slice(open, html.indexOf('</span>', at));
    };
    for (const [i, state] of NODE_STATES.entries()) {
      const b = badge(`data-node-state="agt-n${i}"`);
      expect(b).toMatch(new RegExp(`class="state state-${state} tone-(good|bad|attention|active|idle)"`));
      expect(b).toMatch(/title="[^"]+"/);
      expect(b).toContain(`>${state.replace(/_/g, ' ')}`);
    }
    for (const [i, state] of STEP_STATES.entries()) {
      const li = html.slice(html.indexOf(`data-step-run="sr-s${i}"`), html.indexOf('</li>', html.indexOf(`data-step-run="sr-s${i}"`)));
      expect(li, state).toMatch(new RegExp(`class="state state-${state} tone-\\w+" title="[^"]+" data-step-state="">${state.replace(/_/g, ' ')}`));
      if (state === 'interrupted') expect(li).toContain('runs again when the agent is back');
      else expect(li).not.toContain('runs again when the agent is back');
    }
    expect(badge('data-execution-state')).toContain('tone-active');
  });

  it('offers every execution state in the history filter and takes each', async () => {
    const a = await login('alice', 'alice-password');
    const states = ['queued', 'awaiting_approval', 'running', 'succeeded', 'failed', 'canceled', 'timed_out'];
    const page = await a.get('/executions');
    for (const s of states) {
      expect(page.html).toContain(`<option value="${s}"`);
      expect((await a.get(`/executions?state=${s}`)).status).toBe(200);
    }
  });
});

describe('the API\'s schemas on the pages', () => {
  it('refuses a history query the API would refuse, naming the field, and ignores a form\'s empty fields', async () => {
    await h.insertExecution({ id: 'exe-alice1', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'failed' });
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
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
    const a = await login('alice', 'alice-password');
    const page = await a.get(`/executions/${encodeURIComponent(HOSTILE)}`);
    expect(page.status).toBe(404);
    expect(page.html).not.toContain('<script>alert');
    const rerun = await a.get(`/runbooks/portal-echo?rerun=${encodeURIComponent(HOSTILE)}`);
    expect(rerun.status).toBe(200);
  });
});
