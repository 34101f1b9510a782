import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { ROOT, cli, waitFor } from '../helpers/processes.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'engine');

describe('runbook executions on real agents', () => {
  let fleet: Fleet;
  let sue: string; // support
  let lee: string; // web lead
  const ids: Record<string, string> = {};

  const run = async (runbook: string, body: Record<string, unknown> = {}, token?: string): Promise<{ status: number; body: { executionId: string; state: string; error?: { message: string; requestId?: string } } }> =>
    fleet.api('POST', '/api/v1/executions', { runbook, ...body }, token);
  const runAndWait = async (runbook: string, body: Record<string, unknown> = {}, token?: string): Promise<ExecutionResult> => {
    const r = await run(runbook, body, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return fleet.waitExecution(r.body.executionId);
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator(['--runbooks-dir', FIXTURES]);
    await fleet.ensureAdmin();
    sue = await fleet.user('sue', ['support']);
    lee = await fleet.user('lee', ['web-leads']);
    const web = await fleet.token(['--labels', 'role=web,env=test', '--uses', '3']);
    const db = await fleet.token(['--labels', 'role=db,env=test']);
    for (const n of ['web-1', 'web-2', 'web-3']) await fleet.startAgent(n, { token: web });
    await fleet.startAgent('db-1', { token: db });
    for (const n of ['web-1', 'web-2', 'web-3', 'db-1']) ids[n] = await fleet.waitOnline(n);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('passes hostile option values only as whole argv elements and env vars, never through a shell', async () => {
    const hostile = "; rm -rf /tmp/handrail-pwned $(touch /tmp/handrail-pwned) `touch /tmp/handrail-pwned`\nsecond line && echo pwned | tee /tmp/handrail-pwned";
    const r = await runAndWait('echo-options', { options: { message: hostile, password: 's3cret-value' } }, sue);
    expect(r.state).toBe('succeeded');
    expect(r.nodes.map((n) => n.agentName).sort()).toEqual(['web-1', 'web-2', 'web-3']);
    for (const s of r.steps) {
      const out = (await fleet.output(r.id, s.id)).split('\0');
      const node = r.nodes.find((n) => n.agentId === s.agentId)!.agentName;
      if (s.name === 'echo argv') expect(out.slice(0, 3)).toEqual([hostile, node, '--count=2']);
      else expect(out.slice(0, 2)).toEqual([hostile, 's3cret-value']);
    }
    expect(existsSync('/tmp/handrail-pwned')).toBe(false);
    // the secret is masked wherever the execution is shown
    expect(r.options['password']).toBe('********');
    expect(JSON.stringify(r)).not.toContain('s3cret-value');
    expect(fleet.coordinator!.proc.stderrText).not.toContain('s3cret-value');
  });

  it('validates options before dispatching anything', async () => {
    for (const [opts, msg] of [
      [{}, /message/],
      [{ message: 'x', count: '9' }, /count/],
      [{ message: 'x', count: 'two' }, /count/],
      [{ message: 'x', bogus: '1' }, /bogus/],
      [{ message: 'a\u0000b' }, /message/],
    ] as const) {
      const r = await run('echo-options', { options: opts }, sue);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error!.message).toMatch(msg);
    }
  });

  it('rolling: all steps on one node before the next, one node at a time', async () => {
    const r = await runAndWait('rolling-three', {}, sue);
    expect(r.state).toBe('succeeded');
    const byNode = new Map<string, { start: number; end: number }>();
    for (const s of r.steps) {
      const cur = byNode.get(s.agentId) ?? { start: Infinity, end: 0 };
      byNode.set(s.agentId, { start: Math.min(cur.start, Date.parse(s.dispatchedAt!)), end: Math.max(cur.end, Date.parse(s.finishedAt!)) });
    }
    const spans = [...byNode.values()].sort((a, b) => a.start - b.start);
    expect(spans).toHaveLength(3);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
    expect(r.runbookDigest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('parallel: each step on all nodes (2 at a time for 50%) before the next step', async () => {
    const r = await runAndWait('parallel-two', {}, sue);
    expect(r.state).toBe('succeeded');
    const firstEnds = r.steps.filter((s) => s.name === 'first').map((s) => Date.parse(s.finishedAt!));
    const secondStarts = r.steps.filter((s) => s.name === 'second').map((s) => Date.parse(s.dispatchedAt!));
    expect(Math.min(...secondStarts)).toBeGreaterThanOrEqual(Math.max(...firstEnds));
    // at most 2 of the 3 started together: the third was dispatched only once one of the first two had finished
    const first = r.steps.filter((s) => s.name === 'first').sort((a, b) => Date.parse(a.dispatchedAt!) - Date.parse(b.dispatchedAt!));
    expect(first).toHaveLength(3);
    expect(Date.parse(first[2]!.dispatchedAt!)).toBeGreaterThanOrEqual(Math.min(Date.parse(first[0]!.finishedAt!), Date.parse(first[1]!.finishedAt!)));
  });

  it('narrows targets, never widens them, and reports unmatched targets', async () => {
    const narrowed = await runAndWait('rolling-three', { targets: 'name=web-2' }, sue);
    expect(narrowed.nodes.map((n) => n.agentName)).toEqual(['web-2']);
    const widened = await run('rolling-three', { targets: 'role=db' }, sue);
    expect(widened.status).toBe(400);
    expect(widened.body.error!.message).toMatch(/no enrolled agent matches/);
    const bad = await run('rolling-three', { targets: 'role in (web' }, sue);
    expect(bad.status).toBe(400);
    expect(bad.body.error!.message).toMatch(/column/);
  });

  it('runs onFailure handlers on the failing node and stops after maxErrors', async () => {
    const r = await runAndWait('fail-on-db', {});
    expect(r.state).toBe('failed');
    const db = r.nodes.find((n) => n.agentName === 'db-1')!;
    expect(db.state).toBe('failed');
    const cleanup = r.steps.find((s) => s.handler && s.agentId === db.agentId)!;
    expect(cleanup.name).toBe('cleanup');
    expect(await fleet.output(r.id, cleanup.id)).toBe('cleaned up on db-1\n');
    // db-1 sorts first: once it failed (maxErrors 0) no web node started
    expect(r.nodes.filter((n) => n.agentName !== 'db-1').every((n) => n.state === 'skipped')).toBe(true);
  });

  it('retries with backoff until a step succeeds', async () => {
    const marker = `m${randomBytes(8).toString('hex')}`;
    const r = await runAndWait('flaky', { options: { marker }, targets: 'name=web-1' });
    expect(r.state).toBe('succeeded');
    expect(r.steps.map((s) => `${s.attempt}:${s.state}`)).toEqual(['1:failed', '2:failed', '3:succeeded']);
  });

  it('times a step out on the agent and fails the execution as timed out', async () => {
    const r = await runAndWait('slow', { targets: 'name=web-1' });
    expect(r.steps[0]!.state).toBe('timed_out');
    expect(r.state).toBe('timed_out');
  });

  it('cancels: no further dispatch, running steps killed', async () => {
    // The gate never opens: the step can only end by being killed.
    const started = await run('long-rolling', { options: { gate: join(fleet.dir, 'gate-never') } }, sue);
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const running = await waitFor(async () => {
      const v = await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${started.body.executionId}`, undefined, sue);
      return v.body.steps.find((s) => s.state === 'running');
    });
    const c = await fleet.api('POST', `/api/v1/executions/${started.body.executionId}/cancel`, undefined, sue);
    expect(c.status).toBe(202);
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('canceled');
    expect(r.steps.filter((s) => s.state === 'succeeded')).toHaveLength(0);
    expect(r.steps.map((s) => s.id)).toEqual([running.id]);
    // and the agent killed it
    const agentName = r.nodes.find((n) => n.agentId === running.agentId)!.agentName;
    await fleet.agents.get(agentName)!.proc.waitForLog((l) => l.event === 'step.finished' && l['stepRunId'] === running.id && l['status'] === 'canceled');
  });

  it('enforces policy: default deny, deny wins, and the rule is named', async () => {
    const denied = await run('flaky', { options: { marker: 'x' } }, sue);
    expect(denied.status).toBe(403);
    expect(denied.body.error!.message).toMatch(/support-never-flaky/);
    const nobody = await fleet.user('nina', ['nobody']);
    // A runbook nina may neither view nor run is not found to her, as a missing one is.
    const d2 = await run('rolling-three', {}, nobody);
    expect(d2.status).toBe(404);
    expect(d2.body.error!.message).toMatch(/^no runbook "rolling-three"/);
    // Each refusal's audit record carries the request id the caller got back, and what decided it.
    for (const id of [denied.body.error?.requestId, d2.body.error?.requestId]) expect(id).toMatch(/^req-[0-9a-z]{16}$/);
    const bundle = join(fleet.dir, 'decisions.jsonl');
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', bundle]);
    expect(ex.code, ex.stderr).toBe(0);
    const decided = (await readFile(bundle, 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l) as { t: string; payload?: string })
      .filter((l) => l.t === 'record')
      .map((l) => JSON.parse(Buffer.from(l.payload!, 'base64').toString('utf8')) as { type: string; data: Record<string, unknown> })
      .filter((r) => r.type === 'policy.decided' && r.data['allowed'] === false);
    const byRequest = (id: string | undefined): Record<string, unknown> | undefined => decided.find((r) => r.data['requestId'] === id)?.data;
    expect(byRequest(denied.body.error?.requestId)).toMatchObject({ user: 'sue', action: 'run', runbookId: 'flaky', allowed: false, rule: expect.stringMatching(/support-never-flaky$/) as unknown });
    expect(byRequest(d2.body.error?.requestId)).toBeUndefined();
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'request.refused' && l['requestId'] === d2.body.error?.requestId, undefined, 'the refusal of nina\'s run');
    // nor may nina see what others ran: not in the list, and not by id
    const mine = await runAndWait('rolling-three', { targets: 'name=web-1' }, sue);
    expect((await fleet.api('GET', `/api/v1/executions/${mine.id}`, undefined, nobody)).status).toBe(404);
    expect((await fleet.api('GET', `/api/v1/executions/${mine.id}/steps/${mine.steps[0]!.id}/output`, undefined, nobody)).status).toBe(404);
    const list = await fleet.api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions', undefined, nobody);
    expect(list.body.executions).toEqual([]);
    const sees = await fleet.api<{ executions: Array<{ id: string }> }>('GET', '/api/v1/executions', undefined, sue);
    expect(sees.body.executions.map((e) => e.id)).toContain(mine.id);
  });

  it('waits for approval from another person in the approving group', async () => {
    const started = await run('guarded', {}, sue);
    expect(started.body.state).toBe('awaiting_approval');
    const self = await fleet.api<{ error: { message: string } }>('POST', `/api/v1/executions/${started.body.executionId}/approve`, {}, sue);
    expect(self.status).toBe(403);
    const ok = await fleet.api<{ state: string }>('POST', `/api/v1/executions/${started.body.executionId}/approve`, { comment: 'go' }, lee);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('succeeded');
  });

  it('records the SHA-256 of the exact runbook document it ran', async () => {
    const r = await runAndWait('rolling-three', { targets: 'name=web-1' }, sue);
    const text = await readFile(join(FIXTURES, 'runbooks.yaml'), 'utf8');
    const docs = text.split(/^---\n/m);
    const doc = docs.find((d) => d.includes('id: rolling-three'))!;
    expect([createHash('sha256').update(doc).digest('hex'), createHash('sha256').update(doc.replace(/\n$/, '')).digest('hex')]).toContain(r.runbookDigest);
  });

  it('handrail run --follow prints progress and output and exits 0 only on success', async () => {
    const env = { HANDRAIL_SERVER: fleet.coordinator!.url, HANDRAIL_TOKEN: sue };
    const ok = await cli(['run', 'echo-options', '--opt', 'message=hi there', '--targets', 'name=web-1', '--follow'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/web-1 \| /);
    expect(ok.stderr).toMatch(/\[web-1\] succeeded/);
    const bad = await cli(['run', 'echo-options', '--opt', 'count=3'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/message/);
    const failed = await cli(['run', 'slow', '--targets', 'name=web-1', '--wait'], { HANDRAIL_SERVER: fleet.coordinator!.url, HANDRAIL_TOKEN: fleet.adminToken });
    expect(failed.code).toBe(1);
  });
});
