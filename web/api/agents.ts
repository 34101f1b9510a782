/**
 * Fleet API: the agents a user may see (all of them for admins; otherwise those a runbook they
 * may run could target: coordinator/policy/visibility.ts), as `handrail agents ls --json`
 * prints them. Network addresses are for admins only. Admins revoke an agent here (and on the
 * hosts page) with the effect and audit record of `handrail agents revoke`.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { listAgentRecords, type AgentRecord, type AgentRegistry } from '../../coordinator/registry/agent-registry.js';
import type { Database } from '../../coordinator/store/database.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import type { User } from '../../coordinator/auth/user-store.js';
import { permissionDenied } from '../../core/errors.js';
import type { Authorizer } from '../auth/authorizer.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, handrailId, json, NOTHING, optionalBody, strictObject } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

export interface AgentView {
  id: string;
  name: string;
  hostname: string;
  labels: Record<string, string>;
  status: 'online' | 'offline' | 'revoked';
  lastSeen: string | null;
  version: string | null;
  certificateExpires: string;
  enrolledAt: string;
  os: string;
  arch: string;
  cpus: number;
  memoryBytes: number;
  /** Where it last connected from; null for users without the admin action. */
  address: string | null;
}

const AgentViewSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    hostname: z.string(),
    labels: z.record(z.string(), z.string()),
    status: z.enum(['online', 'offline', 'revoked']),
    lastSeen: z.string().nullable(),
    version: z.string().nullable(),
    certificateExpires: z.string(),
    enrolledAt: z.string(),
    os: z.string(),
    arch: z.string(),
    cpus: z.number(),
    memoryBytes: z.number(),
    address: z.string().nullable().openapi({ description: 'admins only (null otherwise)' }),
  })
  .openapi('Agent');

export type AgentSchemaMatches = Expect<Same<z.infer<typeof AgentViewSchema>, AgentView>>;

/** Online means a live stream now; `isOnline` comes from the gateway when it runs in this process. */
export function agentView(a: AgentRecord, online: boolean): AgentView {
  return {
    id: a.id,
    name: a.name,
    hostname: a.facts.hostname ?? '',
    labels: a.labels,
    status: a.revokedAt !== null ? 'revoked' : online ? 'online' : 'offline',
    lastSeen: a.lastSeenAt === null ? null : new Date(a.lastSeenAt).toISOString(),
    version: a.version,
    certificateExpires: new Date(a.certNotAfter).toISOString(),
    enrolledAt: new Date(a.enrolledAt).toISOString(),
    os: a.facts.os ?? '',
    arch: a.facts.arch ?? '',
    cpus: a.facts.cpus ?? 0,
    memoryBytes: a.facts.memoryBytes ?? 0,
    address: a.lastAddress,
  };
}

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['agents'],
  summary: 'Agents you may see',
  description: 'Admins see every agent; others see the agents a runbook they may run could target, without network addresses.',
  request: { query: NOTHING },
  responses: { 200: json(z.object({ agents: z.array(AgentViewSchema) }).openapi('AgentList'), 'the agents'), ...errorResponses() },
});

/** The reason recorded when none is given (the CLI's default too). */
export const DEFAULT_REVOKE_REASON = 'revoked by an administrator';

export const RevokeBody = strictObject({
  reason: z.string().min(1, { error: 'must not be empty' }).max(500, { error: 'must be at most 500 characters long' }).optional().openapi({ description: `recorded in the audit log (default "${DEFAULT_REVOKE_REASON}")` }),
}).openapi('RevokeAgent');

export const AgentIdParam = z.object({ id: handrailId('agt', 'an agent id').openapi({ param: { name: 'id', in: 'path' }, example: 'agt-0123456789abcdef' }) });

/**
 * Revokes an agent for `user`, an admin (refused before the agent is looked up, so a refusal
 * says nothing about which agents exist): its certificates are marked revoked and the audit
 * record agent.revoked names the user; the gateway cuts its stream within a second. False: it
 * was revoked already (nothing written).
 */
export async function revokeAgent(registry: AgentRegistry, authz: Authorizer, user: User, agentId: string, reason: string | undefined, now: number): Promise<boolean> {
  const d = authz.decide(user, 'admin');
  if (!d.allowed) throw permissionDenied(`revoking an agent is an admin action: ${d.reason}`);
  return registry.revoke(agentId, reason ?? DEFAULT_REVOKE_REASON, { kind: 'user', id: user.name }, now);
}

const revokeRoute = createRoute({
  method: 'post',
  path: '/{id}/revoke',
  tags: ['agents'],
  summary: 'Revoke an agent (admin): its stream is cut and every later connection refused',
  description: 'The same as `handrail agents revoke`: the certificates are revoked and an agent.revoked audit record names you. Revoking a revoked agent changes nothing.',
  request: { params: AgentIdParam, query: NOTHING, body: optionalBody(RevokeBody) },
  responses: { 200: json(z.object({ id: z.string(), status: z.literal('revoked'), alreadyRevoked: z.boolean() }).openapi('AgentRevoked'), 'revoked'), ...errorResponses(403, 404, 413, 415) },
});

/** `reader`: a read-only connection (the agents as committed); revocations go through `registry`. */
export function agentRoutes(registry: AgentRegistry, reader: Database, isOnline: (id: string) => boolean, access: ExecutionAccess, authz: Authorizer, now: () => number): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(revokeRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { reason } = c.req.valid('json');
    const changed = await revokeAgent(registry, authz, c.get('user'), id, reason, now());
    return c.json({ id, status: 'revoked' as const, alreadyRevoked: !changed }, 200);
  });
  app.openapi(listRoute, async (c) => {
    const agents = await listAgentRecords(reader);
    const visible = access.visibleAgents(c.get('user'), agents);
    const shown = visible === 'all' ? agents.map((a) => agentView(a, isOnline(a.id))) : agents.filter((a) => visible.has(a.id)).map((a) => ({ ...agentView(a, isOnline(a.id)), address: null }));
    return c.json({ agents: shown }, 200);
  });
  return app;
}
