import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { Database } from '../../coordinator/store/database.js';
import { join } from 'node:path';
import { verifyPayload } from '../../core/envelope.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';
import { STEP_RESULT_TYPE } from '../../core/step.js';
import { gatedArgv, openGate } from '../helpers/gate.js';
import { cli, waitFor } from '../helpers/processes.js';
import type { ExecutionView } from '../../coordinator/store/execution-queries.js';
import { isRunning } from '../helpers/runner-sink.js';

/** True while `pid` is a live (not zombie) `sleep`: a pid reused by something else does not count. */
function isSleeping(pid: number): boolean {
  if (!isRunning(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0] === 'sleep';
  } catch {
    return false;
  }
}

describe('signed steps on real agents', () => {
  let fleet: Fleet;
  let a1: string;
  let a2: string;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('node-1');
    await fleet.startAgent('node-2');
    a1 = await fleet.waitOnline('node-1');
    a2 = await fleet.waitOnline('node-2');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('runs argv without a shell: hostile values arrive verbatim as single arguments', async () => {
    const hostile = ['; rm -rf /tmp/x', '$(id)', '`uname`', 'a\nb', "it's \"quoted\"", '*', '&& echo pwned'];
    const r = await fleet.exec([a1, a2], { argv: [process.execPath, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...hostile] });
    expect(r.state).toBe('succeeded');
    for (const s of r.steps) {
      expect(s.state).toBe('succeeded');
      expect(s.exitCode).toBe(0);
      expect(JSON.parse(await fleet.output(r.id, s.id))).toEqual(hostile);
    }
  });

  it('passes env and working directory, streams stdout and stderr separately, reports exit codes', async () => {
    const r = await fleet.exec([a1], {
      script: 'echo "out:$GREETING"; echo "err:$(pwd)" >&2; exit 3',
      env: { GREETING: 'hello world' },
      workingDir: '/tmp',
    });
    expect(r.state).toBe('failed');
    const s = r.steps[0]!;
    expect(s.state).toBe('failed');
    expect(s.exitCode).toBe(3);
    expect(await fleet.output(r.id, s.id)).toBe('out:hello world\n');
    expect(await fleet.output(r.id, s.id, 'stderr')).toBe('err:/tmp\n');
  });

  it('kills the whole process group on timeout', async () => {
    // The shell prints its own pid and its background child's, then waits: both must be killed.
    // (The agent's timeout runs from the spawn; 5 s is what the shell has to print both pids.)
    const r = await fleet.exec([a1], { argv: ['/bin/sh', '-c', 'sleep 3600 & echo $!; echo $$; exec sleep 3601'], timeout: '5s' });
    const s = r.steps[0]!;
    expect(s.state).toBe('timed_out');
    const pids = (await fleet.output(r.id, s.id)).trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    // Neither survives (a zombie nobody reaps counts as gone). After TERM and the kill grace the
    // agent KILLs the group, and a KILLed process is gone once it is next scheduled.
    await waitFor(() => pids.every((pid) => !isSleeping(pid)), undefined, `processes ${pids.join(', ')} to be gone`);
  });

  it('caps stored output and records that it was truncated', async () => {
    const r = await fleet.exec([a1], { argv: ['/bin/sh', '-c', 'head -c 300000 /dev/zero; printf small >&2'], maxOutputBytes: 100_000 });
    const s = r.steps[0]!;
    expect(s.state).toBe('succeeded');
    expect(s.stdoutBytes).toBe(100_000);
    // the API shows, per stream, what the agent's signed result says: cut at the limit or not
    const view = await fleet.api<ExecutionView>('GET', `/api/v1/executions/${r.id}`);
    expect(view.status).toBe(200);
    const step = view.body.steps.find((x) => x.id === s.id)!;
    expect(step).toMatchObject({ stdoutBytes: 100_000, stdoutTruncated: true, stdoutReportedBytes: 100_000, stderrBytes: 5, stderrTruncated: false, stderrReportedBytes: 5 });
    // and so does `handrail executions show`
    const shown = await cli(['executions', 'show', r.id, '--server', fleet.coordinator!.url, '--token', await fleet.ensureAdmin()]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/stdout was truncated at the output limit; only its first 100000 bytes were kept/);
    expect(shown.stdout).not.toMatch(/stderr was truncated/);
  });

  it('shows untruncated output as such (and no note)', async () => {
    const r = await fleet.exec([a1], { argv: ['printf', 'short'] });
    const view = await fleet.api<ExecutionView>('GET', `/api/v1/executions/${r.id}`);
    expect(view.body.steps[0]).toMatchObject({ stdoutBytes: 5, stdoutTruncated: false, stdoutReportedBytes: 5, stderrTruncated: false, stderrReportedBytes: 0 });
    const shown = await cli(['executions', 'show', r.id, '--server', fleet.coordinator!.url, '--token', await fleet.ensureAdmin()]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).not.toMatch(/truncated/);
  });

  it('stores a result signed by the agent key over the SHA-256 of each stream', async () => {
    const r = await fleet.exec([a2], { argv: ['printf', 'signed output'] });
    const s = r.steps[0]!;
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      const row = await db.get<{ result_payload: Buffer; result_signature: Buffer; result_cert_serial: string }>('SELECT * FROM step_runs WHERE id = ?', [s.id]);
      const cert = await db.get<{ certificate_pem: string }>('SELECT certificate_pem FROM agent_certificates WHERE serial = ?', [row!.result_cert_serial]);
      const x = new X509Certificate(cert!.certificate_pem);
      expect(x.subject).toContain(`CN=${a2}`);
      expect(x.verify(new X509Certificate(await readFile(fleet.caFile)).publicKey)).toBe(true);
      expect(verifyPayload(STEP_RESULT_TYPE, row!.result_payload, row!.result_signature, x.publicKey)).toBe(true);
      const result = decodeStepResult(row!.result_payload);
      expect(result.agentId).toBe(a2);
      expect(Buffer.from(result.stdoutSha256).toString('hex')).toBe(createHash('sha256').update('signed output').digest('hex'));
      expect(result.stdoutBytes).toBe(13);
      // one flipped byte breaks the signature
      const tampered = Buffer.from(row!.result_payload);
      tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
      expect(verifyPayload(STEP_RESULT_TYPE, tampered, row!.result_signature, x.publicKey)).toBe(false);
    } finally {
      await db.close();
    }
  });

  it('offers a step again when the agent is full, instead of failing it', async () => {
    await fleet.startAgent('narrow', { extra: ['--max-steps', '1'] });
    const narrow = await fleet.waitOnline('narrow');
    // The first step holds the agent's only slot until the second has been turned away.
    const gate = join(fleet.dir, 'gate-narrow');
    const first = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [narrow], argv: gatedArgv(gate) });
    let secondId = '';
    try {
      await fleet.agents.get('narrow')!.proc.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === first.body.executionId);
      const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [narrow], argv: ['echo', 'second'] });
      expect(started.status).toBe(201);
      secondId = started.body.executionId;
      // The agent turned it away while the first ran; the coordinator holds it to offer it again.
      await fleet.coordinator!.proc.waitForLog((l) => l.event === 'step.deferred' && l['executionId'] === secondId);
    } finally {
      await openGate(gate);
    }
    const second = await fleet.waitExecution(secondId);
    expect(fleet.coordinator!.proc.events('step.rejected').filter((l) => l['executionId'] === second.id)).toHaveLength(0);
    expect(second.state).toBe('succeeded');
    expect(await fleet.output(second.id, second.steps[0]!.id)).toBe('second\n');
    expect((await fleet.waitExecution(first.body.executionId)).state).toBe('succeeded');
  });

  it('reports spawn failures as step errors, not crashes', async () => {
    const r = await fleet.exec([a1], { argv: ['/nonexistent/handrail-no-such-binary'] });
    expect(r.steps[0]!.state).toBe('error');
    expect(r.steps[0]!.error).toMatch(/not found|ENOENT/);
    // the agent keeps serving
    const ok = await fleet.exec([a1], { argv: ['true'] });
    expect(ok.state).toBe('succeeded');
  });

  it('cancels a running step: the agent kills it and reports canceled', async () => {
    const started = await fleet.api<{ executionId: string; stepRunIds: Record<string, string> }>('POST', '/api/v1/adhoc', { agents: [a1], argv: ['sleep', '60'] });
    expect(started.status).toBe(201);
    await fleet.agents.get('node-1')!.proc.waitForLog((l) => l.event === 'step.accepted' && l['executionId'] === started.body.executionId);
    const c = await fleet.api<{ state: string }>('POST', `/api/v1/executions/${started.body.executionId}/cancel`);
    expect(c.status).toBe(202);
    // The execution ends at once; the step shows canceled when the agent reports the kill. (Until
    // then it is open: 'running', or still 'dispatched' if the agent's acceptance, sent after
    // its step.accepted log line, has not reached the coordinator yet.)
    const r = await fleet.waitExecution(started.body.executionId);
    expect(r.state).toBe('canceled');
    const step = await waitFor(async () => {
      const e = await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${started.body.executionId}`);
      const s = e.body.steps[0]!;
      return s.state === 'dispatched' || s.state === 'running' ? undefined : s;
    }, undefined, 'the agent to report the canceled step');
    expect(step.state).toBe('canceled');
    await fleet.agents.get('node-1')!.proc.waitForLog((l) => l.event === 'step.finished' && l['executionId'] === started.body.executionId && l['status'] === 'canceled');
  });
});
