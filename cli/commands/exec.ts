/** `handrail exec --agent ID -- CMD ARGS…`: an ad-hoc command on named agents (admin action). */
import { ApiClient } from '../api-client.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_TOKEN, JSON_OUTPUT, SERVER } from '../settings.js';
import type { ExecutionView } from '../../coordinator/engine/execution-queries.js';

export const execCommand: CommandSpec = {
  name: 'exec',
  usage: 'exec --agent ID [--agent ID]... [--timeout 60s] -- COMMAND [ARG]...',
  summary: 'Run one command (no shell) on the named agents, wait, and print each agent\'s output. Agents must allow ad-hoc commands.',
  options: {
    server: SERVER,
    token: API_TOKEN,
    agent: { type: 'string', multiple: true, placeholder: 'ID', description: 'target agent id (repeatable)' },
    timeout: { type: 'string', default: '60s', placeholder: 'DURATION', description: 'step timeout on the agent' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

export async function runExec(p: ParsedCommand, io: CliIo): Promise<number> {
  const agents = list(p.values, 'agent');
  if (agents.length === 0) throw new UsageError('name at least one --agent');
  if (p.positionals.length === 0) throw new UsageError('give the command after --, e.g. handrail exec --agent agt-1 -- uptime');
  const api = new ApiClient(str(p.values, 'server') as string, str(p.values, 'token'));
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
      io.out(`--- ${s.agentId}: ${s.state}${s.exitCode !== null ? ` (exit ${s.exitCode})` : ''}${s.error ? ` ${s.error}` : ''}\n`);
      const out = await api.raw('GET', `/api/v1/executions/${view.id}/steps/${s.id}/output?stream=stdout`, undefined, 'application/octet-stream');
      io.out(await out.text());
      const err = await api.raw('GET', `/api/v1/executions/${view.id}/steps/${s.id}/output?stream=stderr`, undefined, 'application/octet-stream');
      const errText = await err.text();
      if (errText) io.err(errText);
    }
  }
  return view.state === 'succeeded' ? 0 : 1;
}
