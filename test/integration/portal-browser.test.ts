/**
 * The portal in a real headless Chromium (playwright-core driving the system's
 * /usr/bin/chromium) against a real coordinator and two real local agents: a support user
 * logs in, sees only the runbooks policy opens to them, gets a field's error with the values
 * kept, runs a runbook on two hosts and watches its output arrive live before the step ends;
 * another team's execution is not found by URL; hostile option values render as text;
 * cross-site and token-less form posts are refused; wrong passwords are throttled; logout
 * ends the session on the server. An admin filters the history by team and revokes a host.
 *
 * No timing windows: the runbook's step waits for gate files the test creates only after the
 * page shows it is following the live stream.
 */
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Fleet } from '../helpers/fleet.js';
import { PORTAL_RUNBOOKS } from '../helpers/portal-app.js';
import { cli, waitFor } from '../helpers/processes.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`;

let fleet: Fleet;
let browser: Browser;
let url: string;
let attacker: Server | undefined;
let carolToken = '';
let aliceToken = '';
/** Dialogs any page opened (an executed alert() would land here). */
const dialogs: string[] = [];

async function newPage(): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => undefined);
  });
  return { ctx, page };
}

/** Presses Tab until the focused element matches `selector` (at most `max` times). */
async function tabTo(page: Page, selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if ((await page.locator(selector).count()) > 0 && (await page.locator(selector).first().evaluate((el) => el === el.ownerDocument.activeElement))) return;
  }
  throw new Error(`Tab never reached ${selector}`);
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
  await page.goto(`${url}/`);
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('#user', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${url}/runbooks`), page.click('button:has-text("Log in")')]);
  expect(await page.textContent('[data-testid="viewer"]')).toBe(user);
}

beforeAll(async () => {
  fleet = await Fleet.create();
  await fleet.startCoordinator(['--runbooks-dir', PORTAL_RUNBOOKS]);
  await fleet.ensureAdmin();
  aliceToken = await fleet.user('alice', ['support-a'], { password: 'alice-password' });
  carolToken = await fleet.user('carol', ['team-b'], { password: 'carol-password' });
  await fleet.user('dave', ['support-a'], { password: 'dave-password' });
  await fleet.user('erin', ['support-a'], { password: 'erin-password' });
  await fleet.user('bob', ['web-leads'], { password: 'bob-password' });
  await fleet.user('ada', ['admins'], { password: 'ada-password' });
  await fleet.startAgent('web-1', { labels: 'role=web' });
  await fleet.startAgent('web-2', { labels: 'role=web' });
  await fleet.waitOnline('web-1');
  await fleet.waitOnline('web-2');
  url = fleet.coordinator?.url as string;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

afterAll(async () => {
  await browser?.close();
  if (attacker) await new Promise<void>((r) => attacker?.close(() => r()));
  await fleet?.close();
});

describe('the portal in a browser', () => {
  let alice: { ctx: BrowserContext; page: Page };
  let executionId = '';

  it('a support user logs in, sees only permitted runbooks, fixes a bad value, runs on two hosts and watches live output', async () => {
    alice = await newPage();
    const { page } = alice;
    await logIn(page, 'alice', 'alice-password');
    const listed = await page.locator('[data-runbook]').evaluateAll((els) => els.map((e) => e.getAttribute('data-runbook')));
    expect(listed).toEqual(['portal-echo', 'portal-guarded']);
    expect(await page.content()).not.toContain('portal-other');

    await Promise.all([page.waitForURL(`${url}/runbooks/portal-echo`), page.click('a:has-text("Say hello on each web host")')]);
    expect(await page.locator('[data-testid="host-preview"] li').count()).toBe(2);
    const gate = join(fleet.dir, 'gate');
    await page.fill('#opt-message', HOSTILE);
    await page.fill('#opt-count', '9');
    await page.fill('#opt-gate', gate);
    await page.fill('#reason', HOSTILE);
    await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("Run")')]);
    const error = page.locator('[data-option="count"] .error');
    await error.waitFor();
    expect(await error.textContent()).toContain('count 9 is above the maximum 5');
    expect(await page.getAttribute('#opt-count', 'aria-invalid')).toBe('true');
    // Values kept, the hostile one as a value and nowhere as markup.
    expect(await page.inputValue('#opt-message')).toBe(HOSTILE);
    expect(await page.inputValue('#opt-gate')).toBe(gate);
    expect(await page.inputValue('#reason')).toBe(HOSTILE);
    expect(await page.locator('img').count()).toBe(0);

    await page.fill('#opt-count', '2');
    await Promise.all([page.waitForURL(/\/executions\/exe-[a-z0-9]+$/), page.click('button:has-text("Run")')]);
    executionId = new URL(page.url()).pathname.split('/').pop() as string;
    expect(await page.textContent('[data-execution-state]')).toBe('running');
    expect(await page.locator('dd', { hasText: HOSTILE }).count()).toBe(1);
    // The page follows the event stream before any gate opens: what follows can only arrive live.
    await page.locator('[data-live-status]', { hasText: 'Live: following this execution.' }).waitFor();
    await writeFile(`${gate}.1`, '');
    for (const host of ['web-1', 'web-2']) {
      await page.locator(`section[data-host="${host}"] pre[data-stream="stdout"]`, { hasText: `line one from ${host}` }).waitFor({ timeout: 20_000 });
    }
    // The step is still blocked on the second gate: the output arrived before the step ended.
    expect(await page.textContent('[data-execution-state]')).toBe('running');
    // Reloaded mid-run: the server renders what is stored, the event stream replays it from the
    // start (lossless) and then goes on live; each chunk lands by its byte offset, so nothing
    // shows twice.
    await page.reload();
    await page.locator('[data-live-status]', { hasText: 'Live: following this execution.' }).waitFor();
    for (const host of ['web-1', 'web-2']) {
      const text = (await page.textContent(`section[data-host="${host}"] pre[data-stream="stdout"]`)) ?? '';
      expect(text.split(`line one from ${host}`).length - 1, text).toBe(1);
    }
    const stored = await fleet.api<{ state: string; steps: Array<{ state: string }> }>('GET', `/api/v1/executions/${executionId}`);
    expect(stored.body.state).toBe('running');
    expect(stored.body.steps.every((s) => s.state !== 'succeeded')).toBe(true);

    await writeFile(`${gate}.2`, '');
    // At the end the page reloads itself with the final, server-rendered result.
    await page.locator('[data-execution-state]', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    for (const host of ['web-1', 'web-2']) {
      const out = (await page.textContent(`section[data-host="${host}"] pre[data-stream="stdout"]`)) ?? '';
      expect(out).toContain(`hello ${HOSTILE} from ${host} (count 2)`);
      expect(out).toContain(`line one from ${host}`);
      expect(out).toContain(`done on ${host}`);
      expect(await page.textContent(`tr:has(a:text-is("${host}")) [data-node-state]`)).toContain('succeeded');
    }
    expect(await page.textContent('[data-testid="requested-by"]')).toBe('alice');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('lists the run in the history, and its page still shows the hostile values as text', async () => {
    const { page } = alice;
    await page.goto(`${url}/executions`);
    await page.locator(`[data-execution="${executionId}"]`).waitFor();
    await page.goto(`${url}/executions/${executionId}`);
    expect(await page.locator('[data-testid="options"] td', { hasText: HOSTILE }).count()).toBe(1);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it("opens the audit trail from the execution page and sees that execution's records, hostile values as text", async () => {
    const { page } = alice;
    await page.goto(`${url}/executions/${executionId}`);
    await Promise.all([page.waitForURL(`${url}/audit?execution=${executionId}`), page.click('[data-testid="audit-link"]')]);
    expect(await page.getAttribute('nav a[href="/audit"]', 'aria-current')).toBe('page');
    const owners = await page.locator('[data-testid="record-execution"]').evaluateAll((els) => els.map((e) => e.textContent));
    expect(owners.length).toBeGreaterThan(0);
    expect(new Set(owners)).toEqual(new Set([executionId]));
    const types = await page.locator('article.record').evaluateAll((els) => els.map((e) => e.getAttribute('data-type')));
    // Two hosts: the request, the decision, a signed request and an agent-signed result each, the end.
    expect(types).toContain('execution.requested');
    expect(types.filter((t) => t === 'step.result').length).toBeGreaterThanOrEqual(2);
    expect(await page.locator('dd code', { hasText: HOSTILE }).count()).toBeGreaterThan(0);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    // And from a record back to its execution.
    await Promise.all([page.waitForURL(`${url}/executions/${executionId}`), page.locator('[data-testid="record-execution"]').first().click()]);
  });

  it("exports the execution's records through the API, and the real `handrail audit verify` accepts them with the flag the download names", async () => {
    const res = await fetch(`${url}/api/v1/audit/export?execution=${executionId}`, { headers: { authorization: `Bearer ${aliceToken}` } });
    expect(res.status).toBe(200);
    const verify = res.headers.get('x-handrail-verify') ?? '';
    expect(verify).toBe(`handrail audit verify handrail-audit-${executionId}.jsonl --execution ${executionId}`);
    const file = join(fleet.dir, `handrail-audit-${executionId}.jsonl`);
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    const ok = await cli(['audit', 'verify', file, '--execution', executionId]);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/^OK: \d+ records .*records of execution/);
    expect(ok.stdout).toMatch(/ [2-9]\d* agent-signed results with their output/);
    // The same file is not the whole log: verified as one, it fails.
    expect((await cli(['audit', 'verify', file])).code).toBe(1);

    // A time range, for an admin: the flag in the header is the one the CLI needs.
    const admin = await fleet.ensureAdmin();
    const range = await fetch(`${url}/api/v1/audit/export?to=${encodeURIComponent(new Date().toISOString())}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(range.status).toBe(200);
    const flag = (range.headers.get('x-handrail-verify') ?? '').split(' ').slice(4);
    const rangeFile = join(fleet.dir, 'range.jsonl');
    await writeFile(rangeFile, Buffer.from(await range.arrayBuffer()));
    const rangeOk = await cli(['audit', 'verify', rangeFile, ...flag]);
    expect(rangeOk.code, rangeOk.stderr + rangeOk.stdout).toBe(0);

    // Alice may not export a time range, nor another team's execution (not found).
    expect((await fetch(`${url}/api/v1/audit/export`, { headers: { authorization: `Bearer ${aliceToken}` } })).status).toBe(403);
  });

  it('verifies the live log through the API and keeps the result with its time', async () => {
    const admin = await fleet.ensureAdmin();
    const started = await fleet.api<{ started: boolean }>('POST', '/api/v1/audit/verifications', undefined, admin);
    expect(started.status).toBe(202);
    const last = await waitFor(async () => {
      const r = await fleet.api<{ last: { ok: boolean; records: number; by: { id: string }; finishedAt: string } | null; running: unknown }>('GET', '/api/v1/audit/verifications', undefined, admin);
      return r.body.running === null && r.body.last !== null ? r.body.last : undefined;
    });
    expect(last).toMatchObject({ ok: true, by: { id: 'root' } });
    expect(last.records).toBeGreaterThan(5);
    expect((await fleet.api('POST', '/api/v1/audit/verifications', undefined, aliceToken)).status).toBe(403);
  });

  it('opens the toil report from the nav and sees their team\'s row, with the chart', async () => {
    const { page } = alice;
    await page.goto(`${url}/runbooks`);
    await Promise.all([page.waitForURL(`${url}/toil`), page.click('nav a:has-text("Toil")')]);
    const row = page.locator('[data-testid="toil-teams"] tr[data-team="team-a"]');
    await row.waitFor();
    expect(Number(await row.locator('td').first().textContent())).toBeGreaterThanOrEqual(1);
    await page.locator('[data-testid="toil-chart"] g[data-team="team-a"]').waitFor();
    expect(await page.locator('[data-testid="toil-teams"] tr[data-team="team-b"]').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it("another team's execution is not found by URL, on the page and in the API", async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'portal-other' }, carolToken);
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    await fleet.waitExecution(started.body.executionId);
    const { page } = alice;
    const res = await page.goto(`${url}/executions/${started.body.executionId}`);
    expect(res?.status()).toBe(404);
    expect(await page.textContent('h1')).toBe('Not found');
    expect(await page.content()).not.toContain('team-b-output');
    // The API, reached with the session cookie, says the same.
    const api = await page.goto(`${url}/api/v1/executions/${started.body.executionId}`);
    expect(api?.status()).toBe(404);
    const runbook = await page.goto(`${url}/runbooks/portal-other`);
    expect(runbook?.status()).toBe(404);
  });

  it('lets the session cookie read the API but never change anything there', async () => {
    const { ctx } = alice;
    const read = await ctx.request.get(`${url}/api/v1/executions/${executionId}`);
    expect(read.status()).toBe(200);
    const head = await ctx.request.head(`${url}/api/v1/executions`);
    expect(head.status()).toBe(200);
    const run = await ctx.request.post(`${url}/api/v1/executions`, { data: { runbook: 'portal-echo', options: { message: 'via cookie', count: 1 } } });
    expect(run.status()).toBe(401);
    const cancel = await ctx.request.post(`${url}/api/v1/executions/${executionId}/cancel`);
    expect(cancel.status()).toBe(401);
    const mine = await fleet.api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions?user=alice');
    expect(mine.body.executions.map((e) => e.id)).toEqual([executionId]);
  });

  it('refuses a cross-site form post and a form without its CSRF token', async () => {
    const { page } = alice;
    await page.goto(`${url}/runbooks/portal-echo`);
    const token = (await page.getAttribute('form[action="/runbooks/portal-echo/run"] input[name="_csrf"]', 'value')) as string;
    // Another site (same host name, another port: "same-site", so the Lax cookie is sent) with
    // even the right token: refused by where the request comes from.
    attacker = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${url}/runbooks/portal-echo/run"><input type="hidden" name="_csrf" value="${token}"><input type="hidden" name="opt.message" value="pwned"><button>Win a prize</button></form>`,
      );
    });
    const port = await new Promise<number>((r) => attacker?.listen(0, '127.0.0.1', () => r((attacker?.address() as { port: number }).port)));
    await page.goto(`http://127.0.0.1:${port}/`);
    const [refused] = await Promise.all([page.waitForResponse((r) => r.url() === `${url}/runbooks/portal-echo/run`), page.click('button:has-text("Win a prize")')]);
    expect(refused.status()).toBe(403);
    await page.locator('h1', { hasText: 'Form refused' }).waitFor();

    // Our own page with its token removed.
    await page.goto(`${url}/runbooks/portal-echo`);
    await page.locator('form[action="/runbooks/portal-echo/run"] input[name="_csrf"]').evaluate((el) => el.remove());
    await page.fill('#opt-message', 'pwned');
    const [noToken] = await Promise.all([page.waitForResponse((r) => r.url() === `${url}/runbooks/portal-echo/run`), page.click('button:has-text("Run")')]);
    expect(noToken.status()).toBe(403);
    await page.locator('h1', { hasText: 'Form refused' }).waitFor();

    const mine = await fleet.api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions?user=alice');
    expect(mine.body.executions.map((e) => e.id)).toEqual([executionId]);
  });

  it('throttles wrong passwords, even when the right one follows', async () => {
    const { ctx, page } = await newPage();
    try {
      await page.goto(`${url}/login`);
      for (let i = 0; i < 5; i++) {
        await page.fill('#user', 'dave');
        await page.fill('#password', `wrong-password-${i}`);
        await Promise.all([page.waitForLoadState('load'), page.click('button:has-text("Log in")')]);
        await page.locator('#login-error', { hasText: 'Wrong user name or password.' }).waitFor();
        expect(await page.inputValue('#user')).toBe('dave');
      }
      await page.fill('#password', 'dave-password');
      const [res] = await Promise.all([page.waitForResponse((r) => r.url() === `${url}/login` && r.request().method() === 'POST'), page.click('button:has-text("Log in")')]);
      expect(res.status()).toBe(429);
      await page.locator('#login-error', { hasText: 'Too many failed logins' }).waitFor();
      expect(new URL(page.url()).pathname).toBe('/login');
      const proc = fleet.coordinator?.proc;
      await proc?.waitForLog((l) => l.event === 'login.throttled' && l['user'] === 'dave');
      expect(proc?.events('login.failed').filter((l) => l['user'] === 'dave')).toHaveLength(5);
    } finally {
      await ctx.close();
    }
  });

  it('two people: the requester cannot approve, an approver in another browser does, and the requester sees it', async () => {
    const { page } = alice;
    await page.goto(`${url}/runbooks/portal-guarded`);
    await page.locator('[data-testid="needs-approval"]').waitFor();
    await page.fill('#reason', 'restart after deploy 42');
    await Promise.all([page.waitForURL(/\/executions\/exe-[a-z0-9]+$/), page.click('button:has-text("Request approval to run")')]);
    const id = new URL(page.url()).pathname.split('/').pop() as string;
    expect(await page.textContent('[data-execution-state]')).toBe('awaiting approval');
    await page.locator('[data-live-status]', { hasText: 'Live: following this execution.' }).waitFor();
    await page.goto(`${url}/approvals`);
    expect(await page.locator(`[data-approval="${id}"]`).count()).toBe(0);
    await page.goto(`${url}/executions/${id}`);
    await page.locator('[data-live-status]', { hasText: 'Live: following this execution.' }).waitFor();

    const bob = await newPage();
    try {
      await logIn(bob.page, 'bob', 'bob-password');
      await bob.page.goto(`${url}/approvals`);
      const item = bob.page.locator(`[data-approval="${id}"]`);
      await item.waitFor();
      expect(await item.textContent()).toContain('restart after deploy 42');
      expect(await item.textContent()).toContain('alice');
      await item.locator('input[name="comment"]').fill('looks right');
      await Promise.all([bob.page.waitForURL(`${url}/executions/${id}?notice=approve`), item.locator('button:has-text("Approve")').click()]);
    } finally {
      await bob.ctx.close();
    }
    // Alice's page, still open, follows the run to its end and shows the decision.
    await page.locator('[data-execution-state]', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    expect(await page.textContent('[data-testid="decisions"]')).toContain('looks right');
    expect(await page.textContent('section[data-host="web-1"] pre[data-stream="stdout"]')).toContain('approved');
  });

  it('runs a runbook with the keyboard alone', async () => {
    const { ctx, page } = await newPage();
    try {
      await page.goto(`${url}/login`);
      expect(await page.locator(':focus').getAttribute('id')).toBe('user');
      await page.keyboard.type('erin');
      await page.keyboard.press('Tab');
      await page.keyboard.type('erin-password');
      await Promise.all([page.waitForURL(`${url}/runbooks`), page.keyboard.press('Enter')]);
      await page.keyboard.press('Tab');
      expect(await page.locator(':focus').textContent()).toBe('Skip to content');
      await tabTo(page, 'a[href="/runbooks/portal-echo"]');
      await Promise.all([page.waitForURL(`${url}/runbooks/portal-echo`), page.keyboard.press('Enter')]);
      await tabTo(page, '#opt-message');
      await page.keyboard.type('typed, not clicked');
      await tabTo(page, 'form[action="/runbooks/portal-echo/run"] button[type="submit"]');
      await Promise.all([page.waitForURL(/\/executions\/exe-[a-z0-9]+$/), page.keyboard.press('Enter')]);
      await page.locator('[data-execution-state]', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
      expect(await page.textContent('section[data-host="web-1"] pre[data-stream="stdout"]')).toContain('hello typed, not clicked from web-1');
    } finally {
      await ctx.close();
    }
  });

  it('logout ends the session on the server', async () => {
    const { ctx, page } = alice;
    await page.goto(`${url}/runbooks`);
    const saved = await ctx.cookies();
    expect(saved.find((c) => c.name === 'hr_session')).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    await Promise.all([page.waitForURL(`${url}/login?bye`), page.click('button:has-text("Log out")')]);
    await page.locator('[role="status"]', { hasText: 'You are logged out.' }).waitFor();
    await page.goto(`${url}/runbooks`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await ctx.close();
    // The old cookie, replayed in a fresh browser, opens nothing.
    const other = await newPage();
    try {
      await other.ctx.addCookies(saved);
      await other.page.goto(`${url}/runbooks`);
      expect(new URL(other.page.url()).pathname).toBe('/login');
    } finally {
      await other.ctx.close();
    }
  });
});

describe('an admin in a browser', () => {
  let ada: { ctx: BrowserContext; page: Page };
  beforeAll(async () => {
    ada = await newPage();
    await logIn(ada.page, 'ada', 'ada-password');
  });
  afterAll(async () => {
    await ada?.ctx.close();
  });

  it('filters the history by team: only that team\'s executions, the choice kept', async () => {
    const { page } = ada;
    await Promise.all([page.waitForURL(`${url}/executions`), page.click('nav a:has-text("History")')]);
    // Both teams ran something above (alice team-a, carol team-b).
    expect(await page.locator('[data-execution] td', { hasText: /^team-b$/ }).count()).toBeGreaterThan(0);
    expect(await page.locator('[data-execution] td', { hasText: /^team-a$/ }).count()).toBeGreaterThan(0);
    await page.selectOption('#team', 'team-b');
    await Promise.all([page.waitForURL(/team=team-b/), page.click('form.filters button:has-text("Filter")')]);
    const teams = await page.locator('[data-execution] td:nth-child(3)').allTextContents();
    expect(teams.length).toBeGreaterThan(0);
    expect(new Set(teams)).toEqual(new Set(['team-b']));
    expect(await page.inputValue('#team')).toBe('team-b');
  });

  // Last in the file: web-2 stays revoked.
  it('revokes a host after confirming: the hosts page and the API show it revoked', async () => {
    const { page } = ada;
    await Promise.all([page.waitForURL(`${url}/hosts`), page.click('nav a:has-text("Hosts")')]);
    const row = page.locator('tr[data-host="web-2"]');
    await Promise.all([page.waitForURL(/\/hosts\/agt-[a-z0-9]+\/revoke$/), row.locator('a:has-text("Revoke")').click()]);
    expect(await page.textContent('h1')).toBe('Revoke web-2?');
    await page.fill('#reason', 'browser test');
    await Promise.all([page.waitForURL(`${url}/hosts?notice=revoked`), page.click('button:has-text("Revoke web-2")')]);
    expect(await page.locator('tr[data-host="web-2"] .state').textContent()).toBe('revoked');
    expect(await page.locator('tr[data-host="web-2"]').textContent()).toContain('browser test');
    expect(await page.locator('tr[data-host="web-1"] .state').textContent()).not.toBe('revoked');
    const agents = await fleet.api<{ agents: Array<{ name: string; status: string }> }>('GET', '/api/v1/agents');
    expect(agents.body.agents.find((a) => a.name === 'web-2')?.status).toBe('revoked');
    expect(dialogs).toEqual([]);
  });
});
