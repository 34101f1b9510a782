/**
 * An execution as its followers and readers see it: the live event stream is lossless (output
 * printed before anyone subscribed, then live output, once each, in order, labelled by host,
 * resumable from Last-Event-ID), and the record tells the whole story (who asked and why, who
 * approved or denied it and what they said).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, type ExecutionResult } from '../helpers/fleet.js';
import { cli, waitFor } from '../helpers/processes.js';
import { readSse, type SseEvent } from '../../cli/sse.js';
import type { ExecutionView } from '../../coordinator/store/execution-queries.js';
import type { OutputEventData } from '../../web/api/execution-events.js';
import type { PendingApproval } from '../../web/api/approvals.js';

const RUNBOOKS = `apiVersion: handrail/v1
kind: Runbook
metadata: { id: chatty, title: Talks before and after a gate, owner: team-web, tags: [web] }
spec:
  options:
    - { name: gate, type: string, required: true }
  targets: { selector: role=web }
  strategy: parallel
  concurrency: 100%
  steps:
    - name: talk
      script: |
        echo "early 1 on $HANDRAIL_HOST_NAME"
        echo "early 2 on $HANDRAIL_HOST_NAME"
        while [ ! -e "$HANDRAIL_OPT_GATE" ]; do sleep 0.05; done
        echo "late 1 on $HANDRAIL_HOST_NAME"
        echo "late 2 on $HANDRAIL_HOST_NAME" >&2
      timeout: 60s
    - { name: after, run: [sh, -c, 'echo "after on $0"', "\${host.name}"] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: staggered, title: One host waits for a gate, owner: team-web, tags: [web] }
spec:
  options:
    - { name: gate, type: string, required: true }
  targets: { selector: role=web }
  strategy: parallel
  concurrency: 100%
  steps:
    - name: wait
      script: |
        if [ "$HANDRAIL_HOST_NAME" = web-2 ]; then while [ ! -e "$HANDRAIL_OPT_GATE" ]; do sleep 0.05; done; fi
      timeout: 60s
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: guarded, title: Needs a lead, owner: team-web, tags: [web] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=web }
  approval: { required: 1, from: [group:web-leads] }
  steps:
    - { name: act, run: [echo, done] }
`;

const POLICY = `apiVersion: handrail/v1
kind: Policy
metadata: { name: web }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
    - { name: web-team, effect: allow, actions: [run, view, cancel], subjects: [group:web], runbooks: { tags: [web] } }
    - { name: web-leads, effect: allow, actions: [approve, view], subjects: [group:web-leads], runbooks: { tags: [web] } }
`;

describe('an execution, followed and read', () => {
  let fleet: Fleet;
  let wendy: string;
  let will: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    fleet = await Fleet.create();
    const dir = join(fleet.dir, 'runbooks');
    await mkdir(dir);
    await writeFile(join(dir, 'runbooks.yaml'), RUNBOOKS);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await fleet.startCoordinator(['--runbooks-dir', dir]);
    await fleet.ensureAdmin();
    wendy = await fleet.user('wendy', ['web']);
    will = await fleet.user('will', ['web-leads']);
    const token = await fleet.token(['--labels', 'role=web', '--uses', '2']);
    await fleet.startAgent('web-1', { token });
    await fleet.startAgent('web-2', { token });
    await fleet.waitOnline('web-1');
    await fleet.waitOnline('web-2');
    env = { HANDRAIL_SERVER: fleet.coordinator!.url, HANDRAIL_TOKEN: wendy };
  });
  afterAll(async () => {
    await fleet?.close();
  });

  /** Reads an execution's event stream until `end`, or until `stop` says so. */
  async function events(id: string, o: { lastEventId?: string; stop?: (e: SseEvent, all: SseEvent[]) => boolean; token?: string } = {}): Promise<{ all: SseEvent[]; close: () => void; rest: () => Promise<SseEvent[]> }> {
    const abort = new AbortController();
    const res = await fetch(`${fleet.coordinator!.url}/api/v1/executions/${id}/events`, {
      headers: { authorization: `Bearer ${o.token ?? wendy}`, accept: 'text/event-stream', ...(o.lastEventId ? { 'last-event-id': o.lastEventId } : {}) },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const it = readSse(res)[Symbol.asyncIterator]();
    const all: SseEvent[] = [];
    const read = async (stop: (e: SseEvent) => boolean): Promise<SseEvent[]> => {
      const got: SseEvent[] = [];
      for (;;) {
        const r = await it.next();
        if (r.done) return got;
        all.push(r.value);
        got.push(r.value);
        if (r.value.event === 'end' || stop(r.value)) return got;
      }
    };
    await read((e) => o.stop?.(e, all) ?? false);
    return { all, close: () => abort.abort(), rest: () => read(() => false) };
  }
  const outputs = (all: SseEvent[]): Array<OutputEventData & { id: string }> => all.filter((e) => e.event === 'output').map((e) => ({ ...(JSON.parse(e.data) as OutputEventData), id: e.id ?? '' }));
  /** What one host wrote to one stream, in order (chunk boundaries are the agent's business). */
  const textOf = (os: OutputEventData[], host: string, stream: 'stdout' | 'stderr'): string =>
    Buffer.concat(os.filter((o) => o.agentName === host && o.stream === stream).map((o) => Buffer.from(o.data, o.encoding === 'base64' ? 'base64' : 'utf8'))).toString();

  let chatty: string;
  let firstTwoIds: string[] = [];

  it('gives a late subscriber everything printed before it came, then live output, once each, in order, labelled by host', async () => {
    const gate = join(fleet.dir, 'gate-1');
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'chatty', options: { gate } }, wendy);
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    chatty = started.body.executionId;
    // Both hosts have printed (and the coordinator stored) their early lines before anyone listens.
    await waitFor(async () => {
      const v = (await fleet.api<ExecutionResult>('GET', `/api/v1/executions/${chatty}`)).body;
      const talks = v.steps.filter((s) => s.name === 'talk');
      if (talks.length < 2) return false;
      const texts = await Promise.all(talks.map((s) => fleet.output(chatty, s.id)));
      return texts.every((t) => t.includes('early 2'));
    }, 30_000, 'the early lines to be stored');
    const stream = await events(chatty, { stop: (e) => e.event === 'state' });
    const early = outputs(stream.all);
    for (const host of ['web-1', 'web-2']) expect(textOf(early, host, 'stdout')).toBe(`early 1 on ${host}\nearly 2 on ${host}\n`);
    await writeFile(gate, '');
    await stream.rest();
    const all = outputs(stream.all);
    for (const host of ['web-1', 'web-2']) {
      expect(textOf(all, host, 'stdout')).toBe(`early 1 on ${host}\nearly 2 on ${host}\nlate 1 on ${host}\nafter on ${host}\n`);
      expect(textOf(all, host, 'stderr')).toBe(`late 2 on ${host}\n`);
    }
    // Nothing twice: each chunk once, and together exactly what the store holds.
    expect(new Set(all.map((o) => o.id)).size).toBe(all.length);
    const ids = all.map((o) => Number(o.id));
    expect(ids.every((n, i) => i === 0 || n > (ids[i - 1] as number))).toBe(true);
    expect(all.every((o) => String(o.seq) === o.id)).toBe(true);
    expect(stream.all.at(-1)?.event).toBe('end');
    expect((JSON.parse(stream.all.filter((e) => e.event === 'state').at(-1)!.data) as ExecutionView).state).toBe('succeeded');
    firstTwoIds = all.slice(0, 2).map((o) => o.id);
  });

  it('resumes after a Last-Event-ID with the next output, nothing before it', async () => {
    const full = outputs((await events(chatty)).all);
    expect(full.map((o) => o.id).slice(0, 2)).toEqual(firstTwoIds);
    const resumed = await events(chatty, { lastEventId: firstTwoIds[1] });
    expect(outputs(resumed.all)).toEqual(full.slice(2));
    expect(resumed.all.at(-1)?.event).toBe('end');
  });

  it('`handrail executions follow` attaches to an execution and prints all of it by host name, steps before their node', async () => {
    const r = await cli(['executions', 'follow', chatty], env);
    expect(r.code, r.stderr).toBe(0);
    for (const host of ['web-1', 'web-2']) {
      const mine = r.stdout.split('\n').filter((l) => l.startsWith(`${host} | `));
      expect(mine).toEqual([`${host} | early 1 on ${host}`, `${host} | early 2 on ${host}`, `${host} | late 1 on ${host}`, `${host} | after on ${host}`]);
      expect(r.stderr).toContain(`${host}! | late 2 on ${host}`);
      const err = r.stderr.split('\n');
      const lastStep = err.findIndex((l) => l === `[${host}] after #1: succeeded exit 0`);
      const node = err.findIndex((l) => l === `[${host}] succeeded`);
      expect(lastStep).toBeGreaterThanOrEqual(0);
      expect(node).toBeGreaterThan(lastStep);
    }
    expect(r.stdout).toMatch(/execution exe-\S+ succeeded\n$/);
    const missing = await cli(['executions', 'follow', 'exe-0000000000000000'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no execution/);
  });

  it('`handrail run --follow` prints every line, those printed before it subscribed too', async () => {
    const gate = join(fleet.dir, 'gate-open');
    await writeFile(gate, '');
    expect(existsSync(gate)).toBe(true);
    const r = await cli(['run', 'chatty', '--opt', `gate=${gate}`, '--follow'], env);
    expect(r.code, r.stderr).toBe(0);
    for (const host of ['web-1', 'web-2']) {
      expect(r.stdout.split('\n').filter((l) => l.startsWith(`${host} | `))).toEqual([`${host} | early 1 on ${host}`, `${host} | early 2 on ${host}`, `${host} | late 1 on ${host}`, `${host} | after on ${host}`]);
    }
  });

  it('shows progress while the fan-out runs: a state with one host done and the other still running, then the end', async () => {
    const gate = join(fleet.dir, 'gate-staggered');
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'staggered', options: { gate } }, wendy);
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const id = started.body.executionId;
    const nodes = (e: SseEvent): string => (JSON.parse(e.data) as ExecutionView).nodes.map((n) => `${n.agentName}:${n.state}`).join(' ');
    // web-2's step holds until the gate opens, which happens only once the stream has shown web-1 done.
    const stream = await events(id, { stop: (e) => e.event === 'state' && nodes(e) === 'web-1:succeeded web-2:running' });
    expect(stream.all.at(-1)?.event).toBe('state');
    await writeFile(gate, '');
    const rest = await stream.rest();
    expect(rest.at(-1)?.event).toBe('end');
    const last = rest.filter((e) => e.event === 'state').at(-1);
    expect(last && nodes(last)).toBe('web-1:succeeded web-2:succeeded');
    expect((JSON.parse(last!.data) as ExecutionView).state).toBe('succeeded');
  });

  it('records who approved and what they said, and keeps the requester\'s reason', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'guarded', options: { reason: 'rotate the certs' }, reason: 'ticket OPS-42' }, wendy);
    const id = started.body.executionId;
    const inbox = (await fleet.api<{ approvals: PendingApproval[] }>('GET', '/api/v1/approvals', undefined, will)).body.approvals.find((a) => a.executionId === id);
    expect(inbox).toMatchObject({ reason: 'ticket OPS-42', options: { reason: 'rotate the certs' }, from: ['group:web-leads'], approvals: [] });
    const table = await cli(['approvals'], { ...env, HANDRAIL_TOKEN: will });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^EXECUTION +RUNBOOK +BY +TARGETS +APPROVALS +REASON +OPTIONS$/m);
    expect(table.stdout.split('\n').find((l) => l.startsWith(id))).toMatch(/ guarded +wendy .* 0\/1 +ticket OPS-42 +reason=rotate the certs$/);
    const waiting = (await fleet.api<ExecutionView>('GET', `/api/v1/executions/${id}`, undefined, will)).body;
    expect(waiting.pendingApproval).toMatchObject({ gate: -1, required: 1, from: ['group:web-leads'], approvals: 0 });
    expect((await fleet.api('POST', `/api/v1/executions/${id}/approve`, { comment: 'checked the change' }, will)).status).toBe(200);
    await fleet.waitExecution(id);
    const v = (await fleet.api<ExecutionView>('GET', `/api/v1/executions/${id}`, undefined, wendy)).body;
    expect(v).toMatchObject({ state: 'succeeded', reason: 'ticket OPS-42', stateReason: null, pendingApproval: null, options: { reason: 'rotate the certs' } });
    expect(v.approvals).toEqual([{ gate: -1, approver: 'will', decision: 'approve', comment: 'checked the change', decidedAt: expect.stringMatching(/^\d{4}-/) as unknown }]);
    const shown = await cli(['executions', 'show', id], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^reason {4}ticket OPS-42$/m);
    expect(shown.stdout).toMatch(/^options {3}reason=rotate the certs$/m);
    expect(shown.stdout).toMatch(/^approved {2}by will at \S+: checked the change$/m);
  });

  it('a denial says who denied it and why, and does not overwrite why it was asked for', async () => {
    const started = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'guarded', options: { reason: 'rotate again' }, reason: 'ticket OPS-43' }, wendy);
    const id = started.body.executionId;
    expect((await fleet.api('POST', `/api/v1/executions/${id}/deny`, { comment: 'not during the freeze' }, will)).status).toBe(200);
    const v = await waitFor(async () => {
      const b = (await fleet.api<ExecutionView>('GET', `/api/v1/executions/${id}`, undefined, wendy)).body;
      return b.state === 'canceled' ? b : undefined;
    });
    expect(v.reason).toBe('ticket OPS-43');
    expect(v.stateReason).toBe('denied by will: not during the freeze');
    expect(v.approvals).toMatchObject([{ approver: 'will', decision: 'deny', comment: 'not during the freeze' }]);
    const list = (await fleet.api<{ executions: Array<{ id: string; reason: string | null; stateReason: string | null }> }>('GET', '/api/v1/executions?runbook=guarded', undefined, wendy)).body.executions.find((e) => e.id === id);
    expect(list).toMatchObject({ reason: 'ticket OPS-43', stateReason: 'denied by will: not during the freeze' });
    const shown = await cli(['executions', 'show', id], env);
    expect(shown.stdout).toMatch(/^execution \S+ {2}canceled \(denied by will: not during the freeze\)$/m);
    expect(shown.stdout).toMatch(/^reason {4}ticket OPS-43$/m);
    expect(shown.stdout).toMatch(/^denied {4}by will at \S+: not during the freeze$/m);
  });
});
