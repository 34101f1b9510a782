/** `handrail agent install-command`: the one line that installs and enrolls an agent on a host. */
import { apiClientFor } from '../api-client.js';
import { parseLabelList } from '../../core/labels.js';
import type { CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';

export const agentInstallCommand: CommandSpec = {
  name: 'agent install-command',
  usage: 'agent install-command --labels k=v,... [--ttl 1h] [--name-pattern GLOB] [--uses N] [--server URL --token T]',
  summary:
    'Print one line to paste on a host (as root or a sudo user): it downloads the bundled agent from the coordinator with its CA pinned, checks its SHA-256, installs it as a hardened systemd service and enrolls it with a fresh one-time token pinned to the labels. Re-running the line upgrades the agent and keeps its identity. Needs an admin API token; with an https --server signed by the Handrail CA, set NODE_EXTRA_CA_CERTS=ca.pem for this command.',
  options: {
    labels: { type: 'string', placeholder: 'k=v,...', description: 'labels pinned on the agent (they override its own)' },
    ttl: { type: 'string', default: '1h', placeholder: 'DURATION', description: 'how long the line\'s token is valid (at most 7d)' },
    'name-pattern': { type: 'string', placeholder: 'GLOB', description: 'glob the agent name (by default the host name) must match, e.g. "web-*"' },
    uses: { type: 'string', default: '1', placeholder: 'N', description: 'how many hosts may enroll with the line' },
    'public-url': { type: 'string', placeholder: 'URL', description: 'the https:// address hosts reach the coordinator\'s web port at (default: its --public-url, else --server)' },
    'agent-address': { type: 'string', placeholder: 'HOST:PORT', description: 'the agent port as hosts reach it (default: its --agent-address, else the public URL\'s host)' },
    ...API_OPTIONS,
    json: JSON_OUTPUT,
  },
};

interface Answer {
  line: string;
  tokenId: string;
  expiresAt: string;
  uses: number;
  labels: Record<string, string>;
  server: string;
  coordinator: string;
  caSha256: string;
  bundleSha256: string;
  version: string;
}

export async function runAgentInstallCommand(p: ParsedCommand, io: CliIo): Promise<number> {
  let labels: Record<string, string>;
  try {
    labels = parseLabelList(str(p.values, 'labels') ?? '');
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  const uses = Number(str(p.values, 'uses'));
  if (!Number.isInteger(uses) || uses < 1 || uses > 100_000) throw new UsageError('--uses must be a whole number from 1 to 100000');
  const body = {
    labels,
    ttl: str(p.values, 'ttl') as string,
    uses,
    ...(str(p.values, 'name-pattern') ? { namePattern: str(p.values, 'name-pattern') as string } : {}),
    ...(str(p.values, 'public-url') ? { server: str(p.values, 'public-url') as string } : {}),
    ...(str(p.values, 'agent-address') ? { coordinator: str(p.values, 'agent-address') as string } : {}),
  };
  const api = apiClientFor(p);
  const a = await api.request<Answer>('POST', '/api/v1/agents/install-command', body);
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(a) + '\n');
    return 0;
  }
  io.out(`${a.line}\n`);
  const pinned = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(',');
  io.err(`token ${a.tokenId}: ${a.uses} use(s), expires ${a.expiresAt}${pinned ? `, labels ${pinned}` : ''}; agent ${a.version} from ${a.server}, agent port ${a.coordinator}, CA sha256 ${a.caSha256}\n`);
  return 0;
}
