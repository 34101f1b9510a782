/**
 * GET /api/v1/executions/:id/events — the execution as Server-Sent Events, lossless
 * (coordinator/engine/execution-feed.ts): every `output` event stored so far, then live ones,
 * in order, each with an `id:`; a `state` event with the execution whenever it changes (the
 * first after the stored output); a last `end`; `ping` when idle. A client that reconnects
 * with `Last-Event-ID: N` continues with the first output after N.
 */
import type { Context } from 'hono';
import { streamSSE, type SSEMessage } from 'hono/streaming';
import type { Logger } from 'pino';
import type { FeedEvent } from '../../coordinator/engine/execution-feed.js';

export interface FeedSource {
  follow(executionId: string, afterSeq: number, signal: AbortSignal): AsyncIterable<FeedEvent>;
}

/** The `data` of an output event. */
export interface OutputEventData {
  seq: number;
  stepRunId: string;
  agentId: string;
  agentName: string;
  stream: 'stdout' | 'stderr';
  /** Byte offset of this chunk in its stream. */
  offset: number;
  /** Length of the chunk in bytes. */
  bytes: number;
  /** `utf8` when the chunk is whole UTF-8 text on its own; `base64` otherwise (a character split across chunks, binary). */
  encoding: 'utf8' | 'base64';
  data: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function encodeChunk(data: Buffer): { encoding: 'utf8' | 'base64'; data: string } {
  try {
    return { encoding: 'utf8', data: strictUtf8.decode(data) };
  } catch {
    return { encoding: 'base64', data: data.toString('base64') };
  }
}

/** One feed event as an SSE message. Pure. */
export function sseMessage(e: FeedEvent): SSEMessage {
  switch (e.kind) {
    case 'output': {
      const d: OutputEventData = { seq: e.seq, stepRunId: e.stepRunId, agentId: e.agentId, agentName: e.agentName, stream: e.stream, offset: e.offset, bytes: e.data.length, ...encodeChunk(e.data) };
      return { event: 'output', id: String(e.seq), data: JSON.stringify(d) };
    }
    case 'state':
      return { event: 'state', data: JSON.stringify(e.view) };
    case 'end':
      return { event: 'end', data: JSON.stringify({ state: e.state }) };
    case 'idle':
      return { event: 'ping', data: '{}' };
  }
}

export function executionEventStream(c: Context, feed: FeedSource, executionId: string, afterSeq: number, log: Logger): Response {
  return streamSSE(c, async (stream) => {
    const abort = new AbortController();
    stream.onAbort(() => abort.abort());
    try {
      for await (const e of feed.follow(executionId, afterSeq, abort.signal)) {
        if (abort.signal.aborted) break;
        await stream.writeSSE(sseMessage(e));
      }
    } catch (e) {
      // A failed write is a client that went away; anything else is worth a line in the log.
      if (!abort.signal.aborted) log.warn({ event: 'execution_events.failed', executionId, err: e }, 'execution event stream ended early');
    } finally {
      abort.abort();
    }
  });
}
