/**
 * GET /install/… — what a fleet host downloads to install the agent, without a token (the
 * bundle and script hold no secret; the install line pins the CA and checks the bundle's
 * SHA-256): the bundled agent, its SHA-256 (`sha256sum -c` format), the install script with
 * that SHA-256 in it, and the coordinator CA certificate.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { InstallKit } from '../../coordinator/install/install-kit.js';
import { errorBody } from '../errors.js';
import type { RequestIdVariables } from '../request-id.js';

type Env = { Variables: RequestIdVariables };

/** `kit` undefined: this coordinator has no agent bundle (not built); `why` says what to do. */
export function installRoutes(kit: InstallKit | undefined, why: string): Hono<Env> {
  const app = new Hono<Env>();
  const serve = (c: Context<Env>, body: (k: InstallKit) => string | Uint8Array, type: string): Response => {
    if (!kit) return c.json(errorBody('unavailable', why, { requestId: c.get('requestId') }), 503);
    const b = body(kit);
    return c.body(typeof b === 'string' ? b : new Uint8Array(b), 200, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  };
  app.get('/agent.mjs', (c) => serve(c, (k) => k.bundle, 'text/javascript; charset=utf-8'));
  app.get('/agent.mjs.sha256', (c) => serve(c, (k) => `${k.bundleSha256}  handrail-agent.mjs\n`, 'text/plain; charset=utf-8'));
  app.get('/agent.sh', (c) => serve(c, (k) => k.script, 'text/x-shellscript; charset=utf-8'));
  app.get('/ca.pem', (c) => serve(c, (k) => k.caPem, 'application/x-pem-file'));
  return app;
}
