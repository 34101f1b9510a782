/** POST /api/v1/adhoc — run one command or script on named agents (an admin action). */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AdhocRunner } from '../../coordinator/engine/adhoc.js';
import { invalidArgument, RefusedError } from '../../core/errors.js';
import { some } from '../../core/echo.js';
import { DEFAULT_DENY_RULE } from '../../coordinator/audit/events.js';
import { parseDuration } from '../../core/duration.js';
import { MAX_DURATION_MS } from '../../coordinator/runbooks/validate-runbook.js';
import type { Authorizer } from '../auth/authorizer.js';
import { apiRouter, type ApiEnv } from './router.js';
import { DURATION, errorResponses, handrailId, json, NOTHING, requiredBody, safeRecord, strictObject } from '../validation/schemas.js';

const ENV_NAME = z
  .string()
  .max(128, { error: 'environment variable names are at most 128 characters', abort: true })
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'environment variable names are letters, digits and _, not starting with a digit' });

const TIMEOUT = DURATION.refine(
  (s) => {
    try {
      const ms = parseDuration(s);
      return ms > 0 && ms <= MAX_DURATION_MS;
    } catch {
      return false; // the pattern check said why
    }
  },
  { error: 'must be longer than 0 and at most 24 days' },
);

/** The body schema; `maxOutputBytes` is bounded by the coordinator's own limit (--max-output). */
export function adhocBody(maxOutputBytes: number) {
  return strictObject({
    agents: z.array(handrailId('agt', 'an agent id')).min(1, { error: 'must name at least one agent' }).max(1000).openapi({ description: 'agent ids (handrail agents ls)' }),
    argv: z.array(z.string().max(100_000)).max(1000).optional().openapi({ description: 'the command as whole arguments (no shell)' }),
    script: z.string().max(1_000_000).optional().openapi({ description: 'a script body, run by `interpreter` (instead of argv)' }),
    interpreter: z.array(z.string().max(4096)).min(1).max(32).optional().openapi({ description: 'default ["/bin/sh", "-eu"]' }),
    env: safeRecord(ENV_NAME, z.string().max(100_000), 200, 'an environment variable name').optional(),
    workingDir: z.string().max(4096).optional(),
    timeout: TIMEOUT.optional().openapi({ description: 'default 60s, at most 24 days' }),
    maxOutputBytes: z.number().int().min(1).max(maxOutputBytes).optional().openapi({ description: `bytes of output kept per stream (default and at most ${Math.min(1024 * 1024, maxOutputBytes)} / ${maxOutputBytes})` }),
  }).openapi('AdhocCommand');
}

const Started = z.object({ executionId: z.string(), stepRunIds: z.record(z.string(), z.string()).openapi({ description: 'agent id → step run id' }) }).openapi('AdhocStarted');

export function adhocRoutes(runner: AdhocRunner, authz: Authorizer, limits: { maxOutputBytes: number }): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  const route = createRoute({
    method: 'post',
    path: '/',
    tags: ['adhoc'],
    summary: 'Run one command or script on named agents (admin)',
    description: 'Agents refuse it unless their local policy allows ad-hoc commands.',
    request: { query: NOTHING, body: requiredBody(adhocBody(limits.maxOutputBytes)) },
    responses: { 201: json(Started, 'dispatched'), ...errorResponses(403, 413, 415) },
  });
  app.openapi(route, async (c) => {
    const user = c.get('user');
    const decision = authz.decide(user, 'admin');
    const b = c.req.valid('json');
    if (!decision.allowed) {
      throw new RefusedError('permission_denied', `ad-hoc commands need the admin action: ${decision.reason}`, {
        action: 'adhoc',
        targetId: some(b.agents, 20, ','),
        runbookId: null,
        rule: decision.rule ?? DEFAULT_DENY_RULE,
        reason: decision.reason,
      });
    }
    if (b.interpreter !== undefined && b.script === undefined) throw invalidArgument('invalid request: "interpreter" is only used with "script"');
    const env: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(b.env ?? {})) env[k] = v;
    const out = await runner.start({
      agentIds: b.agents,
      argv: b.argv ?? [],
      script: b.script === undefined ? undefined : { interpreter: b.interpreter ?? ['/bin/sh', '-eu'], body: b.script },
      env,
      workingDir: b.workingDir ?? '',
      timeoutMs: b.timeout === undefined ? 60_000 : parseDuration(b.timeout),
      maxOutputBytes: b.maxOutputBytes ?? Math.min(1024 * 1024, limits.maxOutputBytes),
      requestedBy: user.name,
    });
    return c.json(out, 201);
  });
  return app;
}
