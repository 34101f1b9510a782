#!/usr/bin/env node
/**
 * Screenshots of the portal's main pages, taken from a real demo (`handrail demo` in a temp dir:
 * coordinator, three real agents, the example runbooks and the demo users) in a real headless
 * Chromium, written to docs/screenshots/ for the README's guided tour.
 *
 *   npm run build && node scripts/screenshots.mjs [--out docs/screenshots] [--only NAME,NAME]
 *
 * It walks the tour a newcomer takes — alice logs in, runs the diagnostics bundle (after a
 * field's error), watches it finish, requests a web restart; bob approves it; carol (security)
 * looks at every run — and prints how long alice's part took (login page to diagnostics
 * finished: the machine's share of the newcomer's 30 seconds). Then it visits the plain pages.
 *
 * To add a page: one line in PAGES below. Everything it started (the demo, which stops its
 * agents, and the browser) is stopped on the way out, on success, failure or Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

/**
 * Pages shown as they are: `file` (docs/screenshots/FILE.png), the demo user who looks, the
 * path, and optionally a selector to wait for and a viewport. One line per page.
 */
const PAGES = [
  { file: 'history', as: 'alice', path: '/executions', waitFor: '[data-testid="history"]' },
  { file: 'hosts', as: 'admin', path: '/hosts' },
  { file: 'toil-report', as: 'admin', path: '/toil' },
  { file: 'catalog-phone', as: 'alice', path: '/runbooks', viewport: { width: 390, height: 844 } },
  { file: 'audit-trail', as: 'carol', path: '/audit' },
];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli-bundle', 'main.js');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LAPTOP = { width: 1280, height: 800 };
/** Execution pages are long (every host's output): their shots go down this far, to show some. */
const EXECUTION_HEIGHT = 1500;
/** A page or state that has not appeared by then will not. */
const WAIT_MS = 60_000;

const { values: args } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'docs', 'screenshots') }, only: { type: 'string' } } });
const out = resolve(args.out);
const only = args.only ? new Set(args.only.split(',')) : undefined;

function fail(message) {
  process.stderr.write(`screenshots: ${message}\n`);
  process.exit(2);
}
if (!existsSync(CLI)) fail(`${CLI} is missing: run \`npm run build\` first`);
if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: install it (\`apt-get install -y chromium\`)`);

/** What was started, so that every way out stops it. */
const started = { demo: undefined, browser: undefined, dir: undefined };

/** Starts the demo in a temp dir and reads its banner: the portal URL and each user's password. */
async function startDemo() {
  started.dir = await mkdtemp(join(tmpdir(), 'hr-screenshots-'));
  const child = spawn(process.execPath, [CLI, 'demo', '--dir', started.dir, '--runbooks-dir', join(ROOT, 'runbooks'), '--http-listen', '127.0.0.1:0', '--grpc-listen', '127.0.0.1:0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.demo = child;
  let banner = '';
  let stderr = '';
  child.stderr.on('data', (b) => (stderr = (stderr + b.toString()).slice(-4000)));
  await new Promise((ok, ko) => {
    const timer = setTimeout(() => ko(new Error(`the demo printed no banner within ${WAIT_MS / 1000} s; its stderr: ${stderr}`)), WAIT_MS);
    child.stdout.on('data', (b) => {
      banner += b.toString();
      if (banner.includes('Running the demo again resumes.')) {
        clearTimeout(timer);
        ok();
      }
    });
    child.once('exit', (code) => ko(new Error(`the demo exited (${code}) before its banner; its stderr: ${stderr}`)));
  });
  const url = /Portal\s+(http:\/\/\S+?)\/\s/.exec(banner)?.[1];
  const passwords = Object.fromEntries([...banner.matchAll(/^ {2}(\w+)\s.*?\s([A-Za-z0-9_-]{24})\s+hru_\S+$/gm)].map((m) => [m[1], m[2]]));
  if (!url || !passwords.alice) throw new Error(`could not read the portal URL and passwords from the banner:\n${banner}`);
  if (!/\(3 of 3 demo agents online\)/.test(banner)) throw new Error(`not every demo agent came online:\n${banner}`);
  return { url, passwords };
}

/** SIGINT, as Ctrl-C would: the demo stops its coordinator and then its agents. */
async function stopAll() {
  const { demo, browser, dir } = started;
  started.demo = started.browser = started.dir = undefined;
  await browser?.close().catch(() => undefined);
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    const late = setTimeout(() => demo.kill('SIGKILL'), 30_000); // its agents stop when its pipes close
    await exited;
    clearTimeout(late);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void stopAll().finally(() => process.exit(130)));

/** A viewport's worth, or with `tall` the top of the whole page down to that many pixels. */
async function shoot(page, file, tall) {
  if (only && !only.has(file)) return;
  const height = tall ? Math.min(tall, await page.evaluate(() => document.documentElement.scrollHeight)) : undefined;
  await page.screenshot({ path: join(out, `${file}.png`), ...(height ? { fullPage: true, clip: { x: 0, y: 0, width: page.viewportSize().width, height } } : {}) });
  process.stdout.write(`  docs/screenshots/${file}.png\n`);
}

async function logIn(page, url, user, password) {
  await page.goto(`${url}/`);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${url}/runbooks`), page.click('button:has-text("Log in")')]);
}

/** Until the page is the server-rendered final one: the live view reloads itself at the end, and only an active execution has a live status line. */
async function finished(page) {
  await page.waitForFunction(() => document.readyState === 'complete' && document.querySelector('[data-execution-state]') !== null && document.querySelector('[data-live-status]') === null, undefined, { timeout: WAIT_MS });
}

async function main() {
  await mkdir(out, { recursive: true });
  process.stdout.write('starting the demo (coordinator, three agents) in a temp dir...\n');
  const { url, passwords } = await startDemo();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  started.browser = browser;
  const contexts = new Map();
  /** One browser context (cookie jar) per user, logged in once. */
  async function as(user, viewport = LAPTOP) {
    const key = `${user} ${viewport.width}x${viewport.height}`;
    if (!contexts.has(key)) {
      const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
      ctx.setDefaultTimeout(WAIT_MS);
      const page = await ctx.newPage();
      await logIn(page, url, user, passwords[user]);
      contexts.set(key, page);
    }
    return contexts.get(key);
  }

  // alice, a newcomer: from the login page to a finished diagnostics bundle, timed.
  const aliceCtx = await browser.newContext({ viewport: LAPTOP, deviceScaleFactor: 1 });
  aliceCtx.setDefaultTimeout(WAIT_MS);
  const alice = await aliceCtx.newPage();
  const t0 = performance.now();
  await alice.goto(`${url}/`);
  await alice.fill('#user', 'alice');
  await shoot(alice, 'login');
  await alice.fill('#password', passwords.alice);
  await Promise.all([alice.waitForURL(`${url}/runbooks`), alice.click('button:has-text("Log in")')]);
  contexts.set(`alice ${LAPTOP.width}x${LAPTOP.height}`, alice);
  const loggedIn = performance.now();
  await shoot(alice, 'catalog');
  await Promise.all([alice.waitForURL(`${url}/runbooks/diagnostics-bundle`), alice.click('a:has-text("Collect a diagnostics bundle")')]);
  await alice.fill('#opt-ticket', 'ops 1234');
  await alice.fill('#reason', 'customer reports slow checkout');
  await Promise.all([alice.waitForLoadState('load'), alice.click('button:has-text("Run")')]);
  await alice.locator('[data-option="ticket"] .error').waitFor();
  await alice.locator('[data-option="ticket"]').scrollIntoViewIfNeeded();
  await shoot(alice, 'runbook-form-error');
  await alice.fill('#opt-ticket', 'OPS-1234');
  await Promise.all([alice.waitForURL(/\/executions\/exe-[a-z0-9]+$/), alice.click('button:has-text("Run")')]);
  const running = performance.now();
  await finished(alice);
  const done = performance.now();
  const newcomer = `${((done - t0) / 1000).toFixed(1)} s (logged in ${((loggedIn - t0) / 1000).toFixed(1)} s, form to execution page ${((running - loggedIn) / 1000).toFixed(1)} s, to finished ${((done - running) / 1000).toFixed(1)} s; screenshots included)`;
  await shoot(alice, 'execution-diagnostics', EXECUTION_HEIGHT);

  // alice requests a rolling web restart; it waits for a web lead.
  await Promise.all([alice.waitForURL(`${url}/runbooks/restart-web`), alice.goto(`${url}/runbooks/restart-web`)]);
  await alice.fill('#opt-reason', 'OPS-1234 worker memory growth');
  await Promise.all([alice.waitForURL(/\/executions\/exe-[a-z0-9]+$/), alice.click('button:has-text("Run")')]);
  const restartUrl = alice.url();
  await alice.locator('[data-execution-state]', { hasText: 'awaiting' }).waitFor();

  // bob, a web lead, sees it in his inbox and approves it.
  const bob = await as('bob');
  await bob.goto(`${url}/approvals`);
  await bob.locator('[data-testid="approvals"] li').first().waitFor();
  await shoot(bob, 'approvals');
  await bob.locator('[data-testid="approvals"] input[name="comment"]').first().fill('ok, during the quiet hour');
  await Promise.all([bob.waitForLoadState('load'), bob.locator('[data-testid="approvals"] button[value="approve"]').first().click()]);

  // alice watches the restart roll, live, one host after the other.
  await alice.goto(restartUrl);
  await alice.locator('[data-live-status]', { hasText: 'Live' }).waitFor();
  await alice.locator('section[data-host="web-1"] pre[data-stream="stdout"]', { hasText: 'draining' }).waitFor();
  await shoot(alice, 'execution-live', EXECUTION_HEIGHT);
  await finished(alice);
  await shoot(alice, 'execution-restart', EXECUTION_HEIGHT);

  for (const p of PAGES) {
    const page = await as(p.as, p.viewport);
    await page.goto(`${url}${p.path}`);
    if (p.waitFor) await page.locator(p.waitFor).first().waitFor();
    await shoot(page, p.file);
  }
  process.stdout.write(`newcomer path (login page to diagnostics finished, as a script clicks it): ${newcomer}\n`);
}

try {
  await main();
} catch (e) {
  process.stderr.write(`screenshots: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
