/**
 * The example runbooks run as a demo agent would run them (each step rendered by the
 * compiler, scripts through their interpreter, argv without a shell), inside a temporary
 * HANDRAIL_DEMO_ROOT: every step succeeds, a second run succeeds too, and nothing is written
 * outside the demo root.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDirectory } from '../../coordinator/runbooks/catalog.js';
import type { CompiledRunbook } from '../../coordinator/engine/compiled-runbook.js';
import { ROOT } from '../helpers/processes.js';

interface StepRun {
  readonly name: string;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let work: string;
let cwd: string;
const runbooks = new Map<string, CompiledRunbook>();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'hr-examples-'));
  cwd = await mkdtemp(join(tmpdir(), 'hr-examples-cwd-'));
  const contents = await loadDirectory(join(ROOT, 'runbooks'));
  expect(contents.problems).toEqual([]);
  for (const [id, l] of contents.runbooks) runbooks.set(id, l.compiled);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(cwd, { recursive: true, force: true });
});

/** Runs every step of a runbook on one pretend host, as the agent would, stopping at a failure. */
async function runOnHost(id: string, provided: Record<string, string>, host = 'web-1', handlers = false): Promise<StepRun[]> {
  const rb = runbooks.get(id);
  if (!rb) throw new Error(`no runbook ${id}`);
  const resolved = rb.resolveOptions(provided);
  expect(resolved.issues).toEqual([]);
  const ctx = { executionId: 'exe-test', host: { id: `agt-${host}`, name: host, labels: { role: 'web' } }, options: resolved.values };
  const out: StepRun[] = [];
  const steps = handlers ? rb.plan.onFailure : rb.plan.steps;
  for (let i = 0; i < steps.length; i++) {
    const info = rb.step(handlers, i);
    if (info.kind !== 'agent') continue;
    const s = rb.renderAgent(handlers, i, ctx);
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HANDRAIL_DEMO_ROOT: join(work, host), HANDRAIL_AGENT_ID: ctx.host.id, HANDRAIL_EXECUTION_ID: ctx.executionId, HANDRAIL_STEP_ID: `step-${i}`, ...s.env };
    let r;
    if (s.script) {
      const file = join(cwd, `step-${i}.sh`);
      await writeFile(file, s.script.body);
      const [cmd, ...args] = s.script.interpreter;
      r = spawnSync(cmd as string, [...args, file], { env, cwd: s.workingDir || cwd, encoding: 'utf8', timeout: 30_000 });
    } else {
      const [cmd, ...args] = s.argv;
      r = spawnSync(cmd as string, args, { env, cwd: s.workingDir || cwd, encoding: 'utf8', timeout: 30_000 });
    }
    out.push({ name: info.name, status: r.status, stdout: r.stdout, stderr: r.stderr });
    if (r.status !== 0 && !rb.plan.steps[i]?.continueOnError) break;
  }
  return out;
}

const allOk = (runs: readonly StepRun[]): void => {
  for (const r of runs) expect(r.status, `${r.name}: ${r.stderr}`).toBe(0);
};

describe('example runbooks on a demo host', () => {
  it('restart-web drains, restarts, checks health and returns to the pool', async () => {
    const runs = await runOnHost('restart-web', { reason: 'OPS-1234 worker memory growth', drain_seconds: '1' });
    allOk(runs);
    expect(runs.map((r) => r.name)).toEqual(['drain from load balancer', 'wait for connections to finish', 'restart', 'health check', 'return to pool']);
    expect((await readFile(join(work, 'web-1', 'lb', 'state'), 'utf8')).trim()).toBe('enabled');
    expect(runs[0]?.stdout).toContain('draining web-1 from pool web (reason: OPS-1234 worker memory growth)');
  });

  it('restart-web fails its health check when the service is unhealthy, and onFailure keeps the host out', async () => {
    await writeFile(join(work, 'web-1', 'run', 'unhealthy'), '');
    const runs = await runOnHost('restart-web', { reason: 'OPS-1234 again', drain_seconds: '0' });
    expect(runs.at(-1)).toMatchObject({ name: 'health check', status: 1 });
    allOk(await runOnHost('restart-web', { reason: 'x'.repeat(5) }, 'web-1', true));
    expect((await readFile(join(work, 'web-1', 'lb', 'state'), 'utf8')).trim()).toBe('disabled');
    await rm(join(work, 'web-1', 'run', 'unhealthy'));
  });

  it('diagnostics-bundle runs every check read-only', async () => {
    const runs = await runOnHost('diagnostics-bundle', { ticket: 'OPS-42' }, 'db-1');
    allOk(runs);
    expect(runs).toHaveLength(8);
    expect(runs[0]?.stdout).toContain('diagnostics bundle for OPS-42');
    await expect(readdir(join(work, 'db-1'))).rejects.toThrow(); // wrote nothing, not even the demo root
  });

  it('rollback-release switches to the last known-good release, and again is a no-op', async () => {
    const first = await runOnHost('rollback-release', {}, 'web-2');
    allOk(first);
    expect(await readlink(join(work, 'web-2', 'current'))).toBe('releases/2026-11-20-d4e5f6');
    expect(first[1]?.stdout).toContain('switched 2026-11-22-0badc0 -> 2026-11-20-d4e5f6');
    const again = await runOnHost('rollback-release', { release: '2026-11-18-a1b2c3' }, 'web-2');
    allOk(again);
    expect(await readlink(join(work, 'web-2', 'current'))).toBe('releases/2026-11-18-a1b2c3');
  });

  it('rollback-release to a bad release fails its check and onFailure puts the previous one back', async () => {
    const runs = await runOnHost('rollback-release', { release: '2026-11-22-0badc0' }, 'web-2');
    expect(runs.at(-1)).toMatchObject({ name: 'restart and check', status: 1 });
    allOk(await runOnHost('rollback-release', {}, 'web-2', true));
    expect(await readlink(join(work, 'web-2', 'current'))).toBe('releases/2026-11-18-a1b2c3');
  });

  it('clear-cache empties the chosen cache only', async () => {
    allOk(await runOnHost('clear-cache', { cache: 'thumbnails' }));
    expect(await readdir(join(work, 'web-1', 'cache', 'thumbnails'))).toEqual([]);
    expect(await readdir(join(work, 'web-1', 'cache', 'sessions'))).toHaveLength(3);
    allOk(await runOnHost('clear-cache', { cache: 'all' }));
    expect(await readdir(join(work, 'web-1', 'cache', 'sessions'))).toEqual([]);
  });

  it('free-disk-space lists in a dry run and deletes only old rotated logs otherwise', async () => {
    const dry = await runOnHost('free-disk-space', {}, 'db-1');
    allOk(dry);
    expect(dry[1]?.stdout.trim().split('\n').sort().map((l) => l.replace(/^.*\//, ''))).toEqual(['app.log-20200101', 'app.log.1', 'app.log.2', 'app.log.3']);
    expect(await readdir(join(work, 'db-1', 'var', 'log', 'app'))).toHaveLength(5);
    allOk(await runOnHost('free-disk-space', { dry_run: 'false', days: '30' }, 'db-1'));
    expect(await readdir(join(work, 'db-1', 'var', 'log', 'app'))).toEqual(['app.log']);
  });

  it('wrote nothing outside the demo root', async () => {
    expect((await readdir(cwd)).every((f) => /^step-\d+\.sh$/.test(f))).toBe(true);
  });
});
