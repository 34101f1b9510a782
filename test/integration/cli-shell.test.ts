/**
 * The CLI as people use it in a shell, against a real coordinator and agents: a closed pipe
 * (`| head -1`) ends it quietly; support users discover runbooks (`runbooks ls|show`) without
 * the raw API; `exec` takes host names and selectors, not only agent ids.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { CLI, ROOT, cli } from '../helpers/processes.js';

let fleet: Fleet;
let admin: string;
let support: string;
let ids: Record<string, string>;

beforeAll(async () => {
  fleet = await Fleet.create();
  await fleet.startCoordinator();
  await fleet.startAgent('web-1', { labels: 'role=web,zone=a' });
  await fleet.startAgent('db-1', { labels: 'role=db,zone=a' });
  ids = { 'web-1': await fleet.waitOnline('web-1'), 'db-1': await fleet.waitOnline('db-1') };
  admin = await fleet.ensureAdmin();
  support = await fleet.user('sam', ['support']);
});
afterAll(async () => {
  await fleet?.close();
});

/** Runs the CLI with its stdout already closed, as `handrail … | head -0` would leave it. */
function withClosedStdout(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const as = (token: string): string[] => ['--server', fleet.coordinator!.url, '--token', token];

describe('a closed pipe', () => {
  it.each([
    [['--help']],
    [['agents', 'ls']],
    [['policy', 'explain', '--user', 'sam', '--runbook', 'until-released', '--runbooks-dir', join(ROOT, 'test', 'fixtures', 'engine')]],
  ])('%j exits 0 without a stack trace', async (args) => {
    const r = await withClosedStdout([...args, ...(args[0] === '--help' ? [] : ['--data-dir', fleet.dataDir])]);
    expect(r).toEqual({ code: 0, stderr: '' });
  });

  it('executions show --output too', async () => {
    const done = await fleet.exec([ids['web-1']!], { argv: ['sh', '-c', 'seq 1 20000'] });
    const r = await withClosedStdout(['executions', 'show', done.id, '--output', ...as(admin)]);
    expect(r).toEqual({ code: 0, stderr: '' });
  });
});

describe('runbooks ls|show', () => {
  it('lists what the user may see, whether they may run it and whether it needs approval', async () => {
    const r = await cli(['runbooks', 'ls', ...as(support)]);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^ID\s+YOU\s+APPROVAL\s+OWNER\s+TARGETS\s+TITLE$/);
    expect(rows.find((l) => l.startsWith('until-released '))).toMatch(/^until-released\s+run\s+no\s+team-web\s+role=web\s+Waits on each host/);
    expect(rows.find((l) => l.startsWith('guarded '))).toMatch(/^guarded\s+run\s+1 from group:web-leads\s+/);
    const json = await cli(['runbooks', 'ls', '--json', ...as(support)]);
    const list = (JSON.parse(json.stdout) as { runbooks: Array<{ id: string; canRun: boolean }> }).runbooks;
    expect(list.find((b) => b.id === 'flaky')).toMatchObject({ canRun: false }); // denied to run, still visible
  });

  it('shows one runbook: options with type, required and pattern, approval, targets and the agents they match', async () => {
    const r = await cli(['runbooks', 'show', 'until-released', ...as(support)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^runbook {3}until-released {2}Waits on each host/);
    expect(r.stdout).toContain('you       may run it\n');
    expect(r.stdout).toContain('approval  not needed\n');
    expect(r.stdout).toContain('targets   role=web  (the widest set it may touch; --targets narrows it)\n');
    expect(r.stdout).toContain('          matches now: web-1\n');
    expect(r.stdout).toMatch(/\n {2}NAME\s+TYPE\s+REQUIRED\s+DEFAULT\s+ALLOWED\s+DESCRIPTION\n {2}gate\s+string\s+yes\s+pattern \^\/\[A-Za-z0-9\/\._-\]\+\$/);
    expect(r.stdout).toContain('  1. wait for the gate  [agent] script');
    expect(r.stdout).toContain('On failure (per failed node):\n  1. paging web on-call');
    expect(r.stdout).toContain('Run: handrail run until-released --opt gate=… [--targets SELECTOR] --follow\n');
    const guarded = await cli(['runbooks', 'show', 'guarded', ...as(support)]);
    expect(guarded.stdout).toContain('approval  needed: 1 approval(s) from group:web-leads (not the requester)\n');
    const json = JSON.parse((await cli(['runbooks', 'show', 'until-released', '--json', ...as(support)])).stdout) as { options: Array<{ name: string; required: boolean; pattern: string }>; matchingAgents: Array<{ name: string }> };
    expect(json.options).toEqual([expect.objectContaining({ name: 'gate', required: true, pattern: '^/[A-Za-z0-9/._-]+$' })]);
    expect(json.matchingAgents.map((a) => a.name)).toEqual(['web-1']);
  });

  it('says plainly when a runbook does not exist or may not be seen', async () => {
    const r = await cli(['runbooks', 'show', 'nope', ...as(support)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no runbook "nope" that you may see');
  });
});

describe('exec by host name or selector', () => {
  it('runs on agents named by name', async () => {
    const r = await cli(['exec', '--agent', 'web-1', ...as(admin), '--', 'echo', 'hi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`--- web-1 (${ids['web-1']}): succeeded (exit 0)\nhi\n`);
  });

  it('runs on the agents a selector matches', async () => {
    const r = await cli(['exec', '--targets', 'zone=a', ...as(admin), '--', 'echo', 'hi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('---')).sort()).toEqual([`--- db-1 (${ids['db-1']}): succeeded (exit 0)`, `--- web-1 (${ids['web-1']}): succeeded (exit 0)`]);
  });

  it('refuses an unknown name with what exists (exit 2), before anything runs', async () => {
    const r = await cli(['exec', '--agent', 'web-7', ...as(admin), '--', 'echo', 'hi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--agent web-7: no agent has that id or name; did you mean "web-1"?');
  });
});
