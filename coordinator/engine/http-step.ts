/** Runs an `http` step on the coordinator: one request, a timeout, an expected status. */
import type { RenderedHttpStep } from './compiled-runbook.js';

export interface HttpStepResult {
  readonly ok: boolean;
  readonly status: number | null;
  readonly body: Buffer;
  readonly error: string | null;
}

const MAX_BODY = 256 * 1024;

export async function runHttpStep(step: RenderedHttpStep, signal: AbortSignal): Promise<HttpStepResult> {
  let url: URL;
  try {
    url = new URL(step.url);
  } catch {
    return { ok: false, status: null, body: Buffer.alloc(0), error: `invalid URL "${step.url.slice(0, 200)}"` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, status: null, body: Buffer.alloc(0), error: `unsupported URL scheme ${url.protocol}` };
  try {
    const res = await fetch(url, {
      method: step.method,
      headers: step.headers,
      ...(step.body !== undefined ? { body: step.body } : {}),
      redirect: 'manual',
      signal: AbortSignal.any([signal, AbortSignal.timeout(step.timeoutMs)]),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (size < MAX_BODY) chunks.push(Buffer.from(c).subarray(0, MAX_BODY - size));
        size += c.length;
        if (size >= MAX_BODY) break;
      }
    }
    const ok = step.expectStatus.length === 0 ? res.status >= 200 && res.status < 300 : step.expectStatus.includes(res.status);
    return {
      ok,
      status: res.status,
      body: Buffer.concat(chunks),
      error: ok ? null : `HTTP ${res.status} (expected ${step.expectStatus.length ? step.expectStatus.join(' or ') : '2xx'})`,
    };
  } catch (e) {
    const err = e as Error;
    const why = err.name === 'TimeoutError' ? `timed out after ${step.timeoutMs} ms` : err.name === 'AbortError' ? 'canceled' : (err.cause instanceof Error ? err.cause.message : err.message);
    return { ok: false, status: null, body: Buffer.alloc(0), error: why };
  }
}
