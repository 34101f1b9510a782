/** Fleet API: the agent list as `handrail agents ls --json` prints it. */
import { Hono } from 'hono';
import type { AgentRecord, AgentRegistry } from '../../coordinator/registry/agent-registry.js';
import type { AuthVariables } from '../auth/bearer.js';

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
  address: string | null;
}

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

export function agentRoutes(registry: AgentRegistry, isOnline: (id: string) => boolean): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.get('/', async (c) => {
    const agents = await registry.list();
    return c.json({ agents: agents.map((a) => agentView(a, isOnline(a.id))) });
  });
  return app;
}
