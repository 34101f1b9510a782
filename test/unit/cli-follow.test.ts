import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../cli/api-client.js';
import { FollowPrinter, followExecution } from '../../cli/follow.js';
import type { CliIo } from '../../cli/io.js';
import type { ExecutionView } from '../../coordinator/store/execution-queries.js';
import { sseMessage } from '../../web/api/execution-events.js';
import type { FeedEvent } from '../../coordinator/engine/execution-feed.js';

function capture(): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => void out.push(t), err: (t) => void err.push(t), env: {}, now: Date.now }, out, err };
}

function view(over: Partial<ExecutionView> = {}): ExecutionView {
  return {
    id: 'exe-1', kind: 'runbook', runbookId: 'diag', runbookDigest: null, requestedBy: 'sue', options: {}, targets: '*', state: 'running', reason: null, stateReason: null,
    createdAt: '2024-01-01T00:00:00.000Z', startedAt: null, finishedAt: null, canceledBy: null, approvals: [], pendingApproval: null,
    nodes: [{ agentId: 'agt-1', agentName: 'web-1', state: 'running', reason: null }],
    steps: [],
    ...over,
  };
}

const step = (id: string, name: string, state: string): ExecutionView['steps'][number] => ({
  id, agentId: 'agt-1', stepIndex: 0, attempt: 1, handler: false, name, state, exitCode: state === 'succeeded' ? 0 : null, error: null, dispatchedAt: null, finishedAt: null,
  stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: null, stderrTruncated: null, stdoutReportedBytes: null, stderrReportedBytes: null,
});

const output = (seq: number, data: Buffer, stream: 'stdout' | 'stderr' = 'stdout'): FeedEvent => ({ kind: 'output', seq, stepRunId: 'sr-1', agentId: 'agt-1', agentName: 'web-1', stream, offset: 0, data });

/** An SSE message as the server writes it, and as the CLI reads it. */
const wire = (e: FeedEvent): string => {
  const m = sseMessage(e);
  return `event: ${m.event}\n${m.id !== undefined ? `id: ${String(m.id)}\n` : ''}data: ${String(m.data)}\n\n`;
};
const asRead = (e: FeedEvent): { event: string; data: string; id?: string } => {
  const m = sseMessage(e);
  return { event: m.event as string, data: m.data as string, ...(m.id !== undefined ? { id: String(m.id) } : {}) };
};

describe('output events on the wire', () => {
  it('carries text as text, and anything that is not whole UTF-8 as base64', () => {
    const euro = Buffer.from('€'); // three bytes
    expect(JSON.parse(sseMessage(output(1, Buffer.from('hi\n'))).data as string)).toMatchObject({ seq: 1, agentName: 'web-1', encoding: 'utf8', data: 'hi\n', bytes: 3 });
    expect(JSON.parse(sseMessage(output(2, euro.subarray(0, 2))).data as string)).toMatchObject({ encoding: 'base64', data: euro.subarray(0, 2).toString('base64'), bytes: 2 });
    expect(sseMessage(output(7, Buffer.from('x'))).id).toBe('7');
    expect(sseMessage({ kind: 'state', view: view() }).id).toBeUndefined();
  });
});

describe('printing a followed execution', () => {
  it('labels every line with the host name, joins characters split across chunks, and prints a node\'s end after its steps', () => {
    const c = capture();
    const p = new FollowPrinter(c.io, 'exe-1');
    const euro = Buffer.from('price: €5\n');
    p.handle(asRead(output(1, euro.subarray(0, 9))));
    p.handle(asRead(output(2, euro.subarray(9))));
    p.handle(asRead(output(3, Buffer.from('oops\n'), 'stderr')));
    p.handle(asRead({ kind: 'state', view: view({ state: 'succeeded', nodes: [{ agentId: 'agt-1', agentName: 'web-1', state: 'succeeded', reason: null }], steps: [step('sr-1', 'collect', 'succeeded'), step('sr-2', 'report', 'succeeded')] }) }));
    // the same state again (a reconnect replays it): nothing new
    p.handle(asRead({ kind: 'state', view: view({ state: 'succeeded', nodes: [{ agentId: 'agt-1', agentName: 'web-1', state: 'succeeded', reason: null }], steps: [step('sr-1', 'collect', 'succeeded'), step('sr-2', 'report', 'succeeded')] }) }));
    expect(p.handle({ event: 'end', data: '{"state":"succeeded"}' })).toBe('end');
    p.finish();
    expect(c.out).toEqual(['web-1 | price: €5\n']);
    expect(c.err).toEqual(['web-1! | oops\n', '[web-1] collect #1: succeeded exit 0\n', '[web-1] report #1: succeeded exit 0\n', '[web-1] succeeded\n']);
  });

  it('shows who approved, with the comment, and what it waits for', () => {
    const c = capture();
    const p = new FollowPrinter(c.io, 'exe-1');
    p.handle(asRead({ kind: 'state', view: view({ state: 'awaiting_approval', pendingApproval: { gate: -1, required: 2, from: ['group:web-leads'], message: 'approval to run X', approvals: 1 }, approvals: [{ gate: -1, approver: 'lee', decision: 'approve', comment: 'looks right', decidedAt: '2024-01-01T00:00:01.000Z' }] }) }));
    expect(c.err.join('')).toMatch(/approved by lee: looks right\n/);
    expect(c.err.join('')).toMatch(/waiting for approval from group:web-leads \(1\/2;/);
  });
});

describe('following over a stream that drops', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<string> {
    let n = 0;
    server = createServer((req, res) => handler(req, res, ++n));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('reconnects with Last-Event-ID and prints every line once', async () => {
    const lastIds: Array<string | undefined> = [];
    const url = await serve((req, res, n) => {
      lastIds.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (n === 1) {
        res.write(wire({ kind: 'state', view: view() }) + wire(output(1, Buffer.from('one\n'))) + wire(output(2, Buffer.from('two\n'))));
        // the connection breaks mid-stream
        setImmediate(() => res.socket?.destroy());
      } else {
        const after = Number(req.headers['last-event-id'] ?? 0);
        const events = [output(1, Buffer.from('one\n')), output(2, Buffer.from('two\n')), output(3, Buffer.from('three\n'))].filter((e) => e.kind === 'output' && e.seq > after);
        res.end(events.map(wire).join('') + wire({ kind: 'state', view: view({ state: 'succeeded' }) }) + wire({ kind: 'end', state: 'succeeded' }));
      }
    });
    const c = capture();
    const final = await followExecution(new ApiClient(url, 'hru_test'), 'exe-1', c.io, { sleep: async () => undefined });
    expect(final?.state).toBe('succeeded');
    expect(c.out).toEqual(['web-1 | one\n', 'web-1 | two\n', 'web-1 | three\n']);
    expect(lastIds).toEqual([undefined, '2']);
    expect(c.err.join('')).toMatch(/reconnecting after event 2/);
  });

  it('gives up after a bounded number of reconnects that bring nothing', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"kind":"unavailable","message":"restarting"}}');
    });
    const c = capture();
    await expect(followExecution(new ApiClient(url, 'hru_test'), 'exe-1', c.io, { sleep: async () => undefined, maxReconnects: 3 })).rejects.toThrow(/dropped and did not come back \(restarting\)/);
    expect(c.err.filter((l) => l.includes('reconnecting'))).toHaveLength(3);
  });

  it('does not retry what retrying cannot fix', async () => {
    let calls = 0;
    const url = await serve((_req, res) => {
      calls++;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"kind":"not_found","message":"no execution exe-1"}}');
    });
    await expect(followExecution(new ApiClient(url, 'hru_test'), 'exe-1', capture().io, { sleep: async () => undefined })).rejects.toMatchObject({ kind: 'not_found', message: 'no execution exe-1' });
    expect(calls).toBe(1);
  });
});
