/**
 * `handrail demo`, stopped with Ctrl-C while a rolling runbook runs and started again: the
 * coordinator stops first and the agents after it, so nothing fails — the execution resumes and
 * succeeds on both nodes, its onFailure handler ("paging web on-call") never runs — and the
 * second start reuses the three API tokens instead of minting three more, saying what it resumed.
 * The banner names the portal's URL and each user's generated portal password, which logs that
 * user in through the real login form and is the same after the restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, cli, waitFor } from '../helpers/processes.js';

interface Demo {
  readonly child: ChildProcess;
  readonly url: string;
  readonly portal: string;
  readonly tokens: Record<string, string>;
  readonly passwords: Record<string, string>;
  readonly banner: string;
  stderr: string;
}

let dir: string;
let demo: Demo | undefined;

/** Starts the demo and waits for its banner (stdout), whose tokens and URL it returns. */
async function startDemo(): Promise<Demo> {
  const child = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--runbooks-dir', join(ROOT, 'test', 'fixtures', 'engine'), '--http-listen', '127.0.0.1:0', '--grpc-listen', '127.0.0.1:0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const d: { stderr: string } = { stderr: '' };
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (d.stderr += b.toString()));
  const banner = await waitFor(() => (out.includes('Running the demo again resumes.') ? out : undefined), 90_000, `the demo banner; stderr: ${d.stderr.slice(-2000)}`);
  const url = /REST API\s+(http:\/\/\S+)\/api\/v1/.exec(banner)?.[1] as string;
  const portal = /Portal\s+(http:\/\/\S+\/)\s/.exec(banner)?.[1] as string;
  const tokens: Record<string, string> = {};
  const passwords: Record<string, string> = {};
  for (const m of banner.matchAll(/^ {2}(admin|alice|bob|carol)\s.*\s(\S+)\s+(hru_\S+)$/gm)) {
    passwords[m[1] as string] = m[2] as string;
    tokens[m[1] as string] = m[3] as string;
  }
  return Object.assign(d, { child, url, portal, tokens, passwords, banner });
}

/** Logs in through the portal's login form as a browser would; returns whom the portal says is logged in. */
async function portalLogin(d: Demo, user: string, password: string): Promise<string | undefined> {
  const form = await fetch(`${d.portal}login`);
  expect(form.status).toBe(200);
  const nonce = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const pre = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const origin = new URL(d.portal).origin;
  const res = await fetch(`${d.portal}login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pre, origin, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ _csrf: nonce, user, password, next: '/' }).toString(),
  });
  if (res.status !== 303) return undefined;
  const session = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c?.startsWith('hr_session='));
  const page = await fetch(`${d.portal}runbooks`, { headers: { cookie: session ?? '' }, redirect: 'manual' });
  if (page.status !== 200) return undefined;
  return /data-testid="viewer"[^>]*>([^<]*)</.exec(await page.text())?.[1];
}

async function stopDemo(d: Demo, waitForAgentsLine?: () => Promise<void>): Promise<number | null> {
  const exited = new Promise<number | null>((r) => (d.child.exitCode !== null ? r(d.child.exitCode) : d.child.once('exit', (code) => r(code))));
  d.child.kill('SIGINT');
  await waitForAgentsLine?.();
  return exited;
}

async function api<T>(d: Demo, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${d.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${d.tokens['admin']}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface View {
  state: string;
  nodes: Array<{ agentName: string; state: string }>;
  steps: Array<{ agentId: string; handler: boolean; state: string }>;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-demo-'));
});
afterAll(async () => {
  if (demo && demo.child.exitCode === null) await stopDemo(demo);
});

describe('handrail demo, stopped and started again', () => {
  it('resumes a running execution without failing it, and reuses its API tokens', async () => {
    demo = await startDemo();
    expect(demo.banner).toContain('new demo: CA, store, users and agents created');
    expect(Object.keys(demo.tokens).sort()).toEqual(['admin', 'alice', 'bob', 'carol']);
    // One user per role the design names, each printed with its role.
    for (const [user, role] of [['alice', 'support'], ['bob', 'approver'], ['carol', 'security'], ['admin', 'ops admin']]) expect(demo.banner).toMatch(new RegExp(`^ {2}${user}\\s+${role}`, 'm'));
    const first = demo.tokens;
    // The portal is what it opens on: its URL, and one generated password per user, each different.
    expect(demo.portal).toBe(`${demo.url}/`);
    expect(Object.keys(demo.passwords).sort()).toEqual(['admin', 'alice', 'bob', 'carol']);
    expect(new Set(Object.values(demo.passwords)).size).toBe(4);
    for (const pw of Object.values(demo.passwords)) expect(pw).toMatch(/^[A-Za-z0-9_-]{24}$/);
    for (const [user, pw] of Object.entries(demo.passwords)) expect(await portalLogin(demo, user, pw)).toBe(user);
    expect(await portalLogin(demo, 'alice', demo.passwords['bob'] as string)).toBeUndefined();
    expect((await stat(join(dir, 'portal-passwords.json'))).mode & 0o777).toBe(0o600);
    const firstPasswords = demo.passwords;

    const gate = join(dir, 'gate');
    const started = await api<{ executionId: string }>(demo, 'POST', '/api/v1/executions', { runbook: 'until-released', options: { gate }, targets: 'role=web' });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const id = started.body.executionId;
    const d1 = demo;
    await waitFor(async () => ((await api<View>(d1, 'GET', `/api/v1/executions/${id}`)).body.steps.some((s) => s.state === 'running') ? true : undefined), 30_000, 'the step to run on web-1');

    // Ctrl-C: once the coordinator is down the gate opens; the agent's step finishes (or, past
    // its grace, is interrupted and runs again after the restart): either way nothing fails.
    const code = await stopDemo(demo, async () => {
      await waitFor(() => (d1.stderr.includes('stopping the coordinator') ? true : undefined), 30_000, 'the demo to stop the coordinator');
      await writeFile(gate, '');
    });
    expect(code).toBe(0);

    demo = await startDemo();
    expect(demo.tokens).toEqual(first);
    expect(demo.passwords).toEqual(firstPasswords);
    expect(await portalLogin(demo, 'bob', demo.passwords['bob'] as string)).toBe('bob');
    expect(demo.banner).toContain('resumed:         store and CA from an earlier run; 3 of 3 agents were enrolled already');
    expect(demo.banner).toContain(`1 execution(s) in progress picked up again: ${id} until-released (running)`);
    expect(demo.banner).toContain('API tokens: 4 of 4 reused; portal passwords: 4 of 4 reused');
    const d2 = demo;
    const done = await waitFor(async () => {
      const v = (await api<View>(d2, 'GET', `/api/v1/executions/${id}`)).body;
      return v.state === 'running' ? undefined : v;
    }, 60_000, 'the execution to finish');
    expect(done.state, JSON.stringify(done)).toBe('succeeded');
    expect(done.nodes.map((n) => `${n.agentName}:${n.state}`)).toEqual(['web-1:succeeded', 'web-2:succeeded']);
    expect(done.steps.filter((s) => s.handler)).toEqual([]);
    expect(await access(`${gate}.paged`).then(() => true, () => false)).toBe(false);

    // Exactly one live API token per demo user, however often the demo started.
    const tokens = await cli(['user', 'tokens', '--json', '--data-dir', join(dir, 'data')]);
    const live = (JSON.parse(tokens.stdout) as { tokens: Array<{ userName: string; revokedAt: number | null; expiresAt: number }> }).tokens.filter((t) => t.revokedAt === null && t.expiresAt > Date.now());
    expect(live.map((t) => t.userName).sort()).toEqual(['admin', 'alice', 'bob', 'carol']);
    expect(await stopDemo(demo)).toBe(0);
  });
});
