/**
 * fetch() over HTTPS that trusts a given CA (the coordinator's, for --http-tls) without
 * NODE_EXTRA_CA_CERTS, which Node reads only at start. Node's fetch takes no CA; node:https
 * does, and its answer is handed back as a web Response, so callers (streaming ones too) do
 * not care which one made it.
 */
import { request } from 'node:https';
import { Readable } from 'node:stream';

export type Fetch = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<Response>;

export function fetchTrusting(caPem: string): Fetch {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method, headers: init.headers, ca: caPem, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
        }
        const status = res.statusCode ?? 502;
        const noBody = status === 204 || status === 304 || init.method === 'HEAD';
        resolve(new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers }));
      });
      // The same shape as fetch's failure: a TypeError whose cause says why.
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      req.end(init.body);
    });
}
