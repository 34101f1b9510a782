/**
 * The CLI's client for the coordinator HTTP API: errors come back as HandrailErrors with the
 * server's message. On node:http(s), not fetch: the first fetch loads Node's bundled undici
 * (~35 ms of CPU on every CLI start, a third of `handrail run`'s own start-up).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, RequestOptions } from 'node:http';
import { HandrailError, type ErrorKind } from '../core/errors.js';
import { str, type ParsedCommand } from './options.js';

/** What the CLI reads of an HTTP response. */
export interface ApiResponse {
  readonly ok: boolean;
  readonly status: number;
  /** The body as it arrives (read it once: with this, or with text or json). */
  readonly body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

class NodeResponse implements ApiResponse {
  constructor(private readonly res: IncomingMessage) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.res;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of this.res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/**
 * A --server value must be an http(s) URL: "localhost:8080" parses as a URL with the scheme
 * "localhost:", so it is caught here, as bad usage, with what to type instead.
 */
export function checkServerUrl(base: string): void {
  let url: URL | undefined;
  try {
    url = new URL(base);
  } catch {
    url = undefined;
  }
  if (url && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '') return;
  const bare = base.replace(/^[a-z]+:\/\//i, '');
  throw new HandrailError('invalid_argument', `--server "${base}" is not an http(s) URL`, { hint: `give the scheme, e.g. --server http://${bare || '127.0.0.1:8080'} (or HANDRAIL_SERVER=http://${bare || '127.0.0.1:8080'})` });
}

/** The client for a command whose spec spreads API_OPTIONS (settings.ts): --server, --token, --ca. */
export function apiClientFor(p: ParsedCommand): ApiClient {
  return new ApiClient(str(p.values, 'server') as string, str(p.values, 'token'), str(p.values, 'ca'));
}

export class ApiClient {
  private trusted: Promise<string | undefined> | undefined;

  /** `caFile`: the CA to trust for an https --server (--ca / HANDRAIL_CA), e.g. the coordinator's ca.pem. */
  constructor(
    private readonly base: string,
    private readonly token: string | undefined,
    private readonly caFile?: string,
  ) {
    checkServerUrl(base);
  }

  /** The --ca PEM for an https server (read once, on first use); undefined: the system's roots. */
  private caPem(https: boolean): Promise<string | undefined> {
    const file = this.caFile;
    if (!file || !https) return Promise.resolve(undefined);
    this.trusted ??= readFile(file, 'utf8').then(
      (pem) => {
        if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new HandrailError('invalid_argument', `--ca ${file} holds no PEM certificate`, { hint: "pass the coordinator's ca.pem (its certs dir)" });
        return pem;
      },
      (e: NodeJS.ErrnoException) => {
        throw new HandrailError('invalid_argument', `cannot read the CA file ${file} (--ca / HANDRAIL_CA): ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { hint: "pass the coordinator's ca.pem (its certs dir)" });
      },
    );
    return this.trusted;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const err = (parsed as { error?: { kind?: ErrorKind; message?: string; hint?: string; requestId?: string } } | undefined)?.error;
      const message = err?.message ?? `HTTP ${res.status} from ${this.base}${path}`;
      // A refusal names its request: the id its audit record carries.
      const id = err?.kind === 'permission_denied' && err.requestId ? ` (request ${err.requestId})` : '';
      throw new HandrailError(err?.kind ?? 'unavailable', message + id, err?.hint ? { hint: err.hint } : undefined);
    }
    return parsed as T;
  }

  /** `headers`: more request headers (e.g. Last-Event-ID); `signal` aborts the request. */
  async raw(method: string, path: string, body?: unknown, accept = 'application/json', extra: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<ApiResponse> {
    // Bad usage (exit 2), not a failed request: say what to type.
    if (!this.token) {
      throw new HandrailError('invalid_argument', 'no API token: pass --token TOKEN or set HANDRAIL_TOKEN=TOKEN', {
        hint: 'an admin issues one on the coordinator host with `handrail user token YOUR_NAME`',
      });
    }
    const url = new URL(`${this.base.replace(/\/$/, '')}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      accept,
      ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
      ...extra.headers,
    };
    const https = url.protocol === 'https:';
    const ca = await this.caPem(https);
    try {
      // https only when asked for: TLS is the heavier load.
      const { request } = https ? await import('node:https') : await import('node:http');
      const options: RequestOptions & { ca?: string } = { method, headers, ...(extra.signal ? { signal: extra.signal } : {}), ...(ca ? { ca } : {}) };
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(url, options, resolve);
        req.once('error', reject);
        req.end(payload);
      });
      // A connection dropped mid-body fails the body's read with that error, as fetch's did.
      return new NodeResponse(res);
    } catch (e) {
      if (extra.signal?.aborted) throw e;
      const cause = e as Error & { code?: string };
      if (cause.code !== undefined && CERTIFICATE_ERRORS.has(cause.code)) {
        throw new HandrailError('unavailable', `cannot verify the coordinator's certificate at ${this.base}: ${cause.message}`, {
          hint: this.caFile ? `${this.caFile} (--ca) is not the CA that issued it: pass the coordinator's ca.pem` : "pass the coordinator's CA with --ca FILE (or HANDRAIL_CA=FILE): ca.pem from its certs dir",
        });
      }
      throw new HandrailError('unavailable', `cannot reach the coordinator at ${this.base}: ${cause.message}`, {
        hint: 'is `handrail coordinator` running? check --server / HANDRAIL_SERVER',
      });
    }
  }
}

const CERTIFICATE_ERRORS = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);
