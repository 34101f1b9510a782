/**
 * Fleet API: the agents a user may see (all of them for admins; otherwise those a runbook they
 * may run could target: coordinator/policy/visibility.ts), as `handrail agents ls --json`
 * prints them. Network addresses are for admins only.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AgentRecord, AgentRegistry } from '../../coordinator/registry/agent-registry.js';
import type { ExecutionAccess } from '../../coordinator/engine/execution-access.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, json, NOTHING } from '../validation/schemas.js';
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

export function agentRoutes(registry: AgentRegistry, isOnline: (id: string) => boolean, access: ExecutionAccess): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(listRoute, async (c) => {
    const agents = await registry.list();
    const visible = access.visibleAgents(c.get('user'), agents);
    const shown = visible === 'all' ? agents.map((a) => agentView(a, isOnline(a.id))) : agents.filter((a) => visible.has(a.id)).map((a) => ({ ...agentView(a, isOnline(a.id)), address: null }));
    return c.json({ agents: shown }, 200);
  });
  return app;
}
