/**
 * Following an execution in a terminal (`handrail run --follow`, `handrail executions follow`):
 * its event stream (GET /executions/ID/events) printed as output lines labelled by host name
 * and per-step, per-node progress. The stream is lossless (everything stored so far, then live,
 * each output event with an id); if it drops, this reconnects with Last-Event-ID and continues
 * after the last output it printed, so nothing is missed or printed twice.
 */
import { TextDecoder } from 'node:util';
import { HandrailError, type ErrorKind } from '../core/errors.js';
import type { ApiClient, ApiResponse } from './api-client.js';
import { readSse, type SseEvent } from './sse.js';
import type { CliIo } from './io.js';
import type { ExecutionView } from '../coordinator/store/execution-queries.js';
import type { OutputEventData } from '../web/api/execution-events.js';

export interface FollowOptions {
  /** Print each event as a JSON line instead of text. */
  readonly json?: boolean;
  /** Reconnects in a row that bring no event before giving up. */
  readonly maxReconnects?: number;
  /** How long to wait before reconnect attempt `n` (1-based). */
  readonly retryDelayMs?: (n: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultDelay = (n: number): number => Math.min(5000, 250 * 2 ** (n - 1));
const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Turns events into terminal lines; keeps what it printed so that a replayed state prints nothing new. */
export class FollowPrinter {
  last: ExecutionView | undefined;
  private readonly names = new Map<string, string>();
  private readonly seen = new Map<string, string>();
  private readonly partial = new Map<string, { prefix: string; text: string; stderr: boolean; decoder: TextDecoder }>();

  constructor(
    private readonly io: CliIo,
    private readonly executionId: string,
    private readonly json = false,
  ) {}

  /** 'end' after the last event. */
  handle(ev: SseEvent): 'end' | undefined {
    if (ev.event === 'ping') return undefined;
    if (this.json) {
      let data: unknown;
      try {
        data = JSON.parse(ev.data);
      } catch {
        data = ev.data;
      }
      if (ev.event === 'state') this.last = data as ExecutionView;
      this.io.out(JSON.stringify({ event: ev.event, ...(ev.id !== undefined ? { id: ev.id } : {}), data }) + '\n');
      return ev.event === 'end' ? 'end' : undefined;
    }
    if (ev.event === 'state') this.state(JSON.parse(ev.data) as ExecutionView);
    else if (ev.event === 'output') this.output(JSON.parse(ev.data) as OutputEventData);
    else if (ev.event === 'end') return 'end';
    return undefined;
  }

  private once(key: string, line: string, print: () => void): void {
    if (this.seen.get(key) === line) return;
    this.seen.set(key, line);
    print();
  }

  private state(v: ExecutionView): void {
    this.last = v;
    for (const n of v.nodes) this.names.set(n.agentId, n.agentName);
    // Steps before nodes: a node's "succeeded" comes after the steps that made it so.
    for (const s of v.steps) {
      const line = `${s.handler ? 'onFailure ' : ''}${s.name} #${s.attempt}: ${s.state}${s.exitCode !== null ? ` exit ${s.exitCode}` : ''}${s.error ? ` ${s.error}` : ''}`;
      this.once(`step:${s.id}`, line, () => this.io.err(`[${this.names.get(s.agentId ?? '') ?? 'coordinator'}] ${line}\n`));
    }
    for (const n of v.nodes) {
      const line = `${n.state}${n.reason ? ` (${n.reason})` : ''}`;
      this.once(`node:${n.agentId}`, line, () => this.io.err(`[${n.agentName}] ${line}\n`));
    }
    for (const a of v.approvals) {
      const line = `${a.decision === 'approve' ? 'approved' : 'denied'} by ${a.approver}${a.comment ? `: ${a.comment}` : ''}`;
      this.once(`approval:${a.gate}:${a.approver}`, line, () => this.io.err(`${line}\n`));
    }
    if (v.pendingApproval) {
      const p = v.pendingApproval;
      this.once(`waiting:${p.gate}`, 'y', () =>
        this.io.err(`waiting for approval${p.from.length ? ` from ${p.from.join(', ')}` : ''} (${p.approvals}/${p.required}; \`handrail executions approve ${this.executionId}\` or the web inbox)\n`),
      );
    }
  }

  private output(o: OutputEventData): void {
    const key = `${o.stepRunId}:${o.stream}`;
    const stderr = o.stream === 'stderr';
    const prefix = `${o.agentName}${stderr ? '!' : ''} | `;
    const cur = this.partial.get(key) ?? { prefix, text: '', stderr, decoder: new TextDecoder() };
    const bytes = o.encoding === 'base64' ? Buffer.from(o.data, 'base64') : Buffer.from(o.data, 'utf8');
    const lines = (cur.text + cur.decoder.decode(bytes, { stream: true })).split('\n');
    cur.text = lines.pop() ?? '';
    this.partial.set(key, cur);
    for (const l of lines) (stderr ? this.io.err : this.io.out)(prefix + l + '\n');
  }

  /** Prints what is left of unterminated lines. */
  finish(): void {
    for (const p of this.partial.values()) {
      const rest = p.text + p.decoder.decode();
      if (rest) (p.stderr ? this.io.err : this.io.out)(`${p.prefix}${rest}\n`);
    }
    this.partial.clear();
  }
}

async function errorOf(res: ApiResponse): Promise<HandrailError> {
  let err: { kind?: ErrorKind; message?: string; hint?: string } | undefined;
  try {
    err = ((await res.json()) as { error?: typeof err }).error;
  } catch {
    err = undefined;
  }
  return new HandrailError(err?.kind ?? 'unavailable', err?.message ?? `HTTP ${res.status}`, err?.hint ? { hint: err.hint } : undefined);
}

/**
 * Prints the execution's events until it ends; returns its last state. Reconnects when the
 * stream drops (network, coordinator restart), resuming after the last output event seen.
 */
export async function followExecution(api: ApiClient, executionId: string, io: CliIo, o: FollowOptions = {}): Promise<ExecutionView | undefined> {
  const printer = new FollowPrinter(io, executionId, o.json ?? false);
  const maxReconnects = o.maxReconnects ?? 8;
  const delay = o.retryDelayMs ?? defaultDelay;
  const sleep = o.sleep ?? defaultSleep;
  let lastId: string | undefined;
  let failures = 0;
  for (;;) {
    let gotEvent = false;
    let why = 'the stream ended';
    try {
      const res = await api.raw('GET', `/api/v1/executions/${encodeURIComponent(executionId)}/events`, undefined, 'text/event-stream', lastId === undefined ? {} : { headers: { 'last-event-id': lastId } });
      if (!res.ok) {
        const e = await errorOf(res);
        if (res.status < 500) throw e;
        why = e.message;
      } else {
        for await (const ev of readSse(res)) {
          gotEvent = true;
          if (ev.id !== undefined) lastId = ev.id;
          if (printer.handle(ev) === 'end') {
            printer.finish();
            return printer.last;
          }
        }
      }
    } catch (e) {
      // Not found, not allowed, bad token: reconnecting will not help.
      if (e instanceof HandrailError && e.kind !== 'unavailable') throw e;
      why = e instanceof Error ? e.message : String(e);
    }
    failures = gotEvent ? 1 : failures + 1;
    if (failures > maxReconnects) {
      printer.finish();
      throw new HandrailError('unavailable', `the event stream of ${executionId} dropped and did not come back (${why})`, { hint: `\`handrail executions follow ${executionId}\` picks it up again` });
    }
    io.err(`(event stream interrupted: ${why}; reconnecting${lastId !== undefined ? ` after event ${lastId}` : ''})\n`);
    await sleep(delay(failures));
  }
}
