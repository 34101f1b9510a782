/** POST /api/v1/adhoc — run one command or script on named agents (an admin action). */
import { Hono } from 'hono';
import type { AdhocRunner } from '../../coordinator/engine/adhoc.js';
import { invalidArgument, permissionDenied } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { MAX_DURATION_MS } from '../../coordinator/runbooks/validate-runbook.js';
import type { AuthVariables } from '../auth/bearer.js';
import type { Authorizer } from '../auth/authorizer.js';

interface AdhocBody {
  agents?: unknown;
  argv?: unknown;
  script?: unknown;
  interpreter?: unknown;
  env?: unknown;
  workingDir?: unknown;
  timeout?: unknown;
  maxOutputBytes?: unknown;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

export function adhocRoutes(runner: AdhocRunner, authz: Authorizer): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.post('/', async (c) => {
    const user = c.get('user');
    const decision = authz.decide(user, 'admin');
    if (!decision.allowed) throw permissionDenied(`ad-hoc commands need the admin action: ${decision.reason}`);
    let body: AdhocBody;
    try {
      body = (await c.req.json()) as AdhocBody;
    } catch {
      throw invalidArgument('request body must be JSON');
    }
    if (!isStringArray(body.agents) || body.agents.length === 0) throw invalidArgument('"agents" must be a non-empty list of agent ids');
    const argv = body.argv === undefined ? [] : body.argv;
    if (!isStringArray(argv)) throw invalidArgument('"argv" must be a list of strings');
    if (body.script !== undefined && typeof body.script !== 'string') throw invalidArgument('"script" must be a string');
    const interpreter = body.interpreter === undefined ? ['/bin/sh', '-eu'] : body.interpreter;
    if (!isStringArray(interpreter) || interpreter.length === 0) throw invalidArgument('"interpreter" must be a non-empty list of strings');
    const env = body.env === undefined ? {} : body.env;
    if (typeof env !== 'object' || env === null || Array.isArray(env) || !Object.values(env).every((v) => typeof v === 'string')) {
      throw invalidArgument('"env" must be an object of strings');
    }
    let timeoutMs = 60_000;
    if (body.timeout !== undefined) {
      if (typeof body.timeout !== 'string') throw invalidArgument('"timeout" must be a duration string like "30s"');
      try {
        timeoutMs = parseDuration(body.timeout);
      } catch (e) {
        throw invalidArgument((e as Error).message);
      }
      if (timeoutMs <= 0 || timeoutMs > MAX_DURATION_MS) throw invalidArgument('"timeout" must be longer than 0 and at most 24 days');
    }
    const maxOutputBytes = typeof body.maxOutputBytes === 'number' && body.maxOutputBytes > 0 ? Math.floor(body.maxOutputBytes) : 1024 * 1024;
    const out = await runner.start({
      agentIds: body.agents,
      argv,
      script: typeof body.script === 'string' ? { interpreter, body: body.script } : undefined,
      env: env as Record<string, string>,
      workingDir: typeof body.workingDir === 'string' ? body.workingDir : '',
      timeoutMs,
      maxOutputBytes,
      requestedBy: user.name,
    });
    return c.json(out, 201);
  });
  return app;
}
