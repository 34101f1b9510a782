/**
 * `handrail run RUNBOOK --opt k=v --targets SEL [--follow] [--json]`: start an execution as
 * a user; with --follow, print per-node progress and every output line (cli/follow.ts: from the
 * start, reconnecting if the stream drops) until it ends. Exits 0 only when the execution
 * succeeded.
 */
import { apiClientFor } from '../api-client.js';
import { followExecution } from '../follow.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';
import type { ExecutionView } from '../../coordinator/store/execution-queries.js';

export const runCommand: CommandSpec = {
  name: 'run',
  usage: 'run RUNBOOK [--opt NAME=VALUE]... [--targets SELECTOR] [--reason TEXT] [--follow] [--json]',
  summary: 'Run a runbook as the API token\'s user; policy, option validation and approvals apply.',
  options: {
    ...API_OPTIONS,
    opt: { type: 'string', multiple: true, placeholder: 'NAME=VALUE', description: 'an option value (repeatable); values are passed as env vars or whole arguments, never through a shell' },
    targets: { type: 'string', placeholder: 'SELECTOR', description: 'narrow the runbook\'s targets, e.g. "zone=a,!canary"' },
    reason: { type: 'string', placeholder: 'TEXT', description: 'why (recorded with the execution)' },
    follow: { type: 'boolean', short: 'f', description: 'show per-node progress and live output until the execution ends' },
    wait: { type: 'boolean', description: 'wait for the end without printing output' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

export function parseOpts(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) {
      const example = eq === 0 || v === '' ? 'reason="disk full"' : `${v}=VALUE`;
      throw new UsageError(`--opt "${v.slice(0, 80)}" must look like NAME=VALUE, e.g. --opt ${example} (see the runbook's options: handrail runbooks show RUNBOOK)`);
    }
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

const DONE = new Set(['succeeded', 'failed', 'canceled', 'timed_out']);

export async function runRun(p: ParsedCommand, io: CliIo): Promise<number> {
  const runbook = p.positionals[0];
  if (!runbook) throw new UsageError('give the runbook id, e.g. handrail run restart-web --opt reason="deploy"');
  if (p.positionals.length > 1) throw new UsageError(`unexpected argument "${p.positionals[1]}" (options go in --opt NAME=VALUE)`);
  // --opt values may contain commas: take them whole rather than splitting.
  const raw = p.values['opt'];
  const opts = parseOpts(Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : list(p.values, 'opt'));
  const api = apiClientFor(p);
  const started = await api.request<{ executionId: string; state: string }>('POST', '/api/v1/executions', {
    runbook,
    options: opts,
    ...(str(p.values, 'targets') ? { targets: str(p.values, 'targets') } : {}),
    ...(str(p.values, 'reason') ? { reason: str(p.values, 'reason') } : {}),
  });
  const json = bool(p.values, 'json');
  if (!bool(p.values, 'follow') && !bool(p.values, 'wait')) {
    io.out(json ? JSON.stringify(started) + '\n' : `execution ${started.executionId} ${started.state}\n`);
    return 0;
  }
  if (!json) io.err(`execution ${started.executionId} ${started.state}\n`);
  let final: ExecutionView | undefined;
  if (bool(p.values, 'follow') && !json) final = await followExecution(api, started.executionId, io);
  while (!final || !DONE.has(final.state)) {
    final = await api.request<ExecutionView>('GET', `/api/v1/executions/${started.executionId}?wait=30s`);
  }
  if (json) io.out(JSON.stringify(final) + '\n');
  else io.out(`execution ${final.id} ${final.state}${final.stateReason ? `: ${final.stateReason}` : ''}\n`);
  return final.state === 'succeeded' ? 0 : 1;
}
