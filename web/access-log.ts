/**
 * One log line per HTTP request, with its request id (the X-Request-Id the caller saw), the
 * user once authenticated, the status and the time taken. Probes and scrapes (/metrics,
 * /healthz, /readyz) log at debug: a scrape every few seconds must not drown the log. Query
 * strings are left out: nothing a client puts in a URL reaches the log.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

const QUIET = new Set(['/metrics', '/healthz', '/readyz', '/api/v1/health']);

type Vars = { requestId: string; user?: { readonly name: string } };

export function accessLog(log: Logger, clock: () => number = () => performance.now()): MiddlewareHandler<{ Variables: Vars }> {
  return async (c, next) => {
    const started = clock();
    try {
      await next();
    } finally {
      const status = c.res.status;
      const line = {
        event: 'http.request',
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path.slice(0, 200),
        status,
        ms: Math.round((clock() - started) * 10) / 10,
        ...(c.get('user') ? { user: c.get('user')?.name } : {}),
      };
      if (status >= 500) log.error(line, 'request failed');
      else if (QUIET.has(c.req.path)) log.debug(line, 'request');
      else log.info(line, 'request');
    }
  };
}
