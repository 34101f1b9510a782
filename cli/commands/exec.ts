/**
 * `handrail exec --agent NAME|ID --targets SELECTOR -- CMD ARGS…`: an ad-hoc command on the
 * agents named or selected (resolved through GET /api/v1/agents); an admin action.
 */
import { apiClientFor } from '../api-client.js';
import { resolveAgents, type FleetAgent } from '../agent-targets.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';
import type { ExecutionView } from '../../coordinator/store/execution-queries.js';

export const execCommand: CommandSpec = {
  name: 'exec',
  usage: 'exec (--agent NAME|ID)... | --targets SELECTOR [--timeout 60s] -- COMMAND [ARG]...',
  summary: 'Run one command (no shell) on the agents named (by name or id) or selected by labels, wait, and print each agent\'s output. Agents must allow ad-hoc commands.',
  options: {
    ...API_OPTIONS,
    agent: { type: 'string', multiple: true, placeholder: 'NAME|ID', description: 'target agent, by name or id (repeatable)' },
    targets: { type: 'string', placeholder: 'SELECTOR', description: 'target the agents whose labels (or name, id) match, e.g. "role=web,zone=a"' },
    timeout: { type: 'string', default: '60s', placeholder: 'DURATION', description: 'step timeout on the agent' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

export async function runExec(p: ParsedCommand, io: CliIo): Promise<number> {
  const refs = list(p.values, 'agent');
  const selector = str(p.values, 'targets');
  if (refs.length === 0 && !selector) throw new UsageError('name the agents: --agent NAME (repeatable) or --targets SELECTOR', 'e.g. handrail exec --agent web-1 -- uptime, or handrail exec --targets role=web -- uptime');
  if (p.positionals.length === 0) throw new UsageError('give the command after --, e.g. handrail exec --agent web-1 -- uptime');
  const api = apiClientFor(p);
  const fleet = await api.request<{ agents: FleetAgent[] }>('GET', '/api/v1/agents');
  const agents = resolveAgents(fleet.agents, refs, selector);
  const names = new Map(fleet.agents.map((a) => [a.id, a.name]));
  const started = await api.request<{ executionId: string }>('POST', '/api/v1/adhoc', { agents, argv: p.positionals, timeout: str(p.values, 'timeout') });
  let view: ExecutionView;
  for (;;) {
    view = await api.request<ExecutionView>('GET', `/api/v1/executions/${started.executionId}?wait=30s`);
    if (view.state !== 'running' && view.state !== 'queued') break;
  }
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(view) + '\n');
  } else {
    for (const s of view.steps) {
      io.out(`--- ${names.get(s.agentId ?? '') ?? s.agentId} (${s.agentId ?? ''}): ${s.state}${s.exitCode !== null ? ` (exit ${s.exitCode})` : ''}${s.error ? ` ${s.error}` : ''}\n`);
      const out = await api.raw('GET', `/api/v1/executions/${view.id}/steps/${s.id}/output?stream=stdout`, undefined, 'application/octet-stream');
      io.out(await out.text());
      const err = await api.raw('GET', `/api/v1/executions/${view.id}/steps/${s.id}/output?stream=stderr`, undefined, 'application/octet-stream');
      const errText = await err.text();
      if (errText) io.err(errText);
    }
  }
  return view.state === 'succeeded' ? 0 : 1;
}
