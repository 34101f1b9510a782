/** `handrail agents ls|revoke`: the fleet as the store sees it (runs on the coordinator host). */
import { withDataDir } from '../data-dir.js';
import type { AgentRecord } from '../../coordinator/registry/agent-registry.js';
import { formatLabels } from '../../core/labels.js';
import { ago, printTable, type CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR, JSON_OUTPUT } from '../settings.js';

/** Used for agents whose row predates the recorded heartbeat interval (the coordinator's default). */
const DEFAULT_HEARTBEAT_MS = 10_000;

export const agentsList: CommandSpec = {
  name: 'agents ls',
  usage: 'agents ls [--json]',
  summary: 'List every enrolled agent: id, name, labels, online/offline, last seen, version, certificate expiry.',
  options: { 'data-dir': DATA_DIR, json: JSON_OUTPUT },
};

/**
 * A row can say "connected" after the coordinator died without closing it, so the last-seen time
 * decides: the coordinator cuts a session silent for three heartbeat intervals and writes last-seen
 * every half interval, so anything older than that (plus slack for a busy store) is not online.
 */
export function onlineFromStore(a: AgentRecord, now: number): boolean {
  const interval = a.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  return a.connected && a.lastSeenAt !== null && now - a.lastSeenAt < 3.5 * interval + 5_000;
}

export async function runAgentsList(p: ParsedCommand, io: CliIo): Promise<number> {
  // The API's view (with its zod schemas) loads here, not with this module: `handrail --help` loads every command's module.
  const { agentView } = await import('../../web/api/agents.js');
  return withDataDir(p, io, async (data) => {
    const now = io.now();
    const agents = (await data.registry.list()).map((a) => agentView(a, onlineFromStore(a, now)));
    if (bool(p.values, 'json')) {
      io.out(JSON.stringify({ agents }) + '\n');
      return 0;
    }
    printTable(
      io,
      ['ID', 'NAME', 'STATUS', 'LAST SEEN', 'VERSION', 'CERT EXPIRES', 'LABELS'],
      agents.map((a) => [a.id, a.name, a.status, ago(a.lastSeen ? Date.parse(a.lastSeen) : null, now), a.version ?? '', a.certificateExpires, formatLabels(a.labels)]),
    );
    return 0;
  });
}

export const agentsRevoke: CommandSpec = {
  name: 'agents revoke',
  usage: 'agents revoke AGENT_ID [--reason TEXT]',
  summary: 'Revoke an agent: its live stream is cut within a second and every later connection is refused.',
  options: { 'data-dir': DATA_DIR, reason: { type: 'string', default: 'revoked by an administrator', placeholder: 'TEXT', description: 'recorded in the audit log' } },
  allowPositionals: true,
};

export async function runAgentsRevoke(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the agent id (see `handrail agents ls`)');
  return withDataDir(p, io, async (data) => {
    const changed = await data.registry.revoke(id, str(p.values, 'reason') as string, { kind: 'cli', id: io.env['USER'] ?? 'cli' }, io.now());
    io.out(changed ? `agent ${id} revoked\n` : `agent ${id} was already revoked\n`);
    return 0;
  });
}
