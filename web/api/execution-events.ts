/**
 * GET /api/v1/executions/:id/events — a live view as Server-Sent Events: a `state` event with
 * the execution (nodes and steps) whenever it changes (coalesced), `output` events with each
 * captured chunk as it arrives, and a final `end`. `handrail run --follow` and the web page use it.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Logger } from 'pino';
import type { Database } from '../../coordinator/store/database.js';
import type { ExecutionEvents } from '../../coordinator/engine/execution-events.js';
import type { OutputEvent } from '../../coordinator/engine/step-dispatcher.js';
import { loadExecution } from '../../coordinator/engine/execution-queries.js';
import { notFound } from '../../core/errors.js';

export interface OutputFeed {
  onOutput(fn: (e: OutputEvent) => void): () => void;
}

const ACTIVE = new Set(['queued', 'running', 'awaiting_approval']);

export async function executionEventStream(c: Context, db: Database, events: ExecutionEvents, output: OutputFeed, id: string, log: Logger): Promise<Response> {
  const first = await loadExecution(db, id);
  if (!first) throw notFound(`no execution ${id}`);
  return streamSSE(c, async (stream) => {
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((r) => (finish = r));
    /** A failed write is a client that went away: the stream ends. */
    const writeFailed = (e: unknown): void => {
      log.debug({ event: 'execution_events.write_failed', executionId: id, err: e }, 'execution event stream ended: a write failed');
      finish();
    };
    const sendState = async (): Promise<void> => {
      timer = undefined;
      const view = await loadExecution(db, id);
      if (!view || closed) return;
      await stream.writeSSE({ event: 'state', data: JSON.stringify(view) });
      if (!ACTIVE.has(view.state)) {
        await stream.writeSSE({ event: 'end', data: JSON.stringify({ state: view.state }) });
        finish();
      }
    };
    const offChanged = events.onChanged((changed) => {
      if (changed !== id || closed || timer) return;
      timer = setTimeout(() => {
        sendState().catch((e: unknown) => {
          log.warn({ event: 'execution_events.state_failed', executionId: id, err: e }, 'execution event stream ended: sending the state failed');
          finish();
        });
      }, 100);
    });
    const offOutput = output.onOutput((e) => {
      if (e.executionId !== id || closed) return;
      stream
        .writeSSE({ event: 'output', data: JSON.stringify({ stepRunId: e.stepRunId, agentId: e.agentId, stream: e.stream, offset: e.offset, text: e.data.toString('utf8') }) })
        .catch(writeFailed);
    });
    stream.onAbort(() => finish());
    const keepalive = setInterval(() => {
      stream.writeSSE({ event: 'ping', data: '{}' }).catch(writeFailed);
    }, 15_000);
    await sendState();
    await done;
    closed = true;
    clearInterval(keepalive);
    if (timer) clearTimeout(timer);
    offChanged();
    offOutput();
  });
}
