/**
 * Preloaded into `handrail run` (node --import) for the profiled runs only: appends timestamped
 * events (epoch ms, sub-ms) to the file named by HR_VS_SSH_TRACE — when Node started, when the
 * CLI's modules began loading, each API request sent and answered, the event stream's chunks,
 * the final line printed, and exit. The CLI itself is not changed. Requests are seen both as
 * fetch calls and on node:http's diagnostics channels (the CLI's client uses node:http).
 */
import { subscribe } from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

const file = process.env['HR_VS_SSH_TRACE'];
const now = (): number => performance.timeOrigin + performance.now();
const emit = (event: string, extra: Record<string, unknown> = {}): void => {
  if (file) appendFileSync(file, JSON.stringify({ event, t: now(), ...extra }) + '\n');
};

if (file) {
  appendFileSync(file, JSON.stringify({ event: 'process-start', t: performance.timeOrigin }) + '\n');
  emit('preload');
  const realFetch = globalThis.fetch;
  let n = 0;
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const id = ++n;
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const what = `${init?.method ?? 'GET'} ${url.pathname}${url.search}`;
    emit('fetch-sent', { id, what });
    const res = await realFetch(input, init);
    emit('fetch-headers', { id, what, status: res.status });
    if (!res.body) return res;
    let chunks = 0;
    const timed = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          chunks++;
          const text = Buffer.from(chunk).toString('utf8');
          emit('fetch-chunk', { id, what, chunk: chunks, bytes: chunk.length, ...(text.includes('event: end') ? { end: true } : {}), ...(text.includes('event: state') ? { state: true } : {}) });
          controller.enqueue(chunk);
        },
        flush() {
          emit('fetch-body-end', { id, what, chunks });
        },
      }),
    );
    return new Response(timed, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  // node:http: the same events, from its diagnostics channels; the body's chunks by wrapping
  // push (a 'data' listener would switch the stream the CLI reads to flowing mode).
  const ids = new WeakMap<ClientRequest, { id: number; what: string }>();
  subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: ClientRequest };
    const r = { id: ++n, what: `${request.method} ${request.path}` };
    ids.set(request, r);
    emit('fetch-sent', r);
  });
  subscribe('http.client.response.finish', (message) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    const r = ids.get(request);
    if (!r) return;
    emit('fetch-headers', { ...r, status: response.statusCode });
    let chunks = 0;
    const push = response.push.bind(response);
    response.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk === null) emit('fetch-body-end', { ...r, chunks });
      else if (Buffer.isBuffer(chunk)) {
        chunks++;
        const text = chunk.toString('utf8');
        emit('fetch-chunk', { ...r, chunk: chunks, bytes: chunk.length, ...(text.includes('event: end') ? { end: true } : {}), ...(text.includes('event: state') ? { state: true } : {}) });
      }
      return push(chunk, encoding);
    };
  });
  const write = process.stdout.write.bind(process.stdout) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    if (String(chunk).startsWith('execution ')) emit('final-line');
    return write(chunk, ...rest);
  }) as typeof process.stdout.write;
  process.on('exit', () => emit('exit'));
}
