/** `handrail executions ls|show|follow|cancel`: execution history and control, through the HTTP API. */
import { apiClientFor } from '../api-client.js';
import { printTable, type CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';
import type { ExecutionSummary, ExecutionView } from '../../coordinator/store/execution-queries.js';
import { EXECUTION_STATES } from '../../core/execution-state.js';
import { followExecution } from '../follow.js';

export const executionsList: CommandSpec = {
  name: 'executions ls',
  usage: 'executions ls [--state S] [--runbook ID] [--user NAME] [--team TEAM] [--from WHEN] [--to WHEN] [--limit 20] [--json]',
  summary: 'List executions, newest first.',
  options: {
    ...API_OPTIONS,
    state: { type: 'string', placeholder: 'STATE', choices: EXECUTION_STATES, description: 'only executions in this state' },
    runbook: { type: 'string', placeholder: 'ID', description: 'only this runbook' },
    user: { type: 'string', placeholder: 'NAME', description: 'only executions this user requested' },
    team: { type: 'string', placeholder: 'TEAM', description: 'only runbooks this team owned when they were requested' },
    from: { type: 'string', placeholder: 'WHEN', description: 'requested at or after: a UTC date (YYYY-MM-DD) or a time (2026-11-23T09:30Z)' },
    to: { type: 'string', placeholder: 'WHEN', description: 'requested before: a time, or a UTC date (that whole day included)' },
    limit: { type: 'string', default: '20', placeholder: 'N', description: 'how many' },
    before: { type: 'string', placeholder: 'CURSOR', description: 'the page after this cursor (printed by the previous page)' },
    json: JSON_OUTPUT,
  },
};

export async function runExecutionsList(p: ParsedCommand, io: CliIo): Promise<number> {
  const q = new URLSearchParams();
  for (const [flag, param] of [['state', 'state'], ['runbook', 'runbook'], ['user', 'user'], ['team', 'team'], ['from', 'from'], ['to', 'to'], ['limit', 'limit'], ['before', 'before']] as const) {
    const v = str(p.values, flag);
    if (v) q.set(param, v);
  }
  const res = await apiClientFor(p).request<{ executions: ExecutionSummary[]; next: string | null }>('GET', `/api/v1/executions?${q.toString()}`);
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(res) + '\n');
    return 0;
  }
  printTable(io, ['ID', 'STATE', 'RUNBOOK', 'BY', 'CREATED', 'TARGETS'], res.executions.map((e) => [e.id, e.state, e.runbookId ?? `(${e.kind})`, e.requestedBy, e.createdAt, e.targets.length > 40 ? `${e.targets.slice(0, 37)}...` : e.targets]));
  if (res.next) io.err(`more: --before ${res.next}\n`);
  return 0;
}

export const executionsShow: CommandSpec = {
  name: 'executions show',
  usage: 'executions show EXECUTION_ID [--output] [--json]',
  summary: 'Show an execution: per-node and per-step state, exit codes, errors; --output prints stored output.',
  options: { ...API_OPTIONS, output: { type: 'boolean', description: 'print each step\'s stored stdout/stderr' }, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runExecutionsShow(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the execution id (see `handrail executions ls`)');
  const client = apiClientFor(p);
  const v = await client.request<ExecutionView>('GET', `/api/v1/executions/${encodeURIComponent(id)}`);
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(v) + '\n');
    return 0;
  }
  for (const line of describeExecution(v)) io.out(`${line}\n`);
  io.out('\n');
  printTable(io, ['NODE', 'STATE', 'REASON'], v.nodes.map((n) => [n.agentName, n.state, n.reason ?? '']));
  io.out('\n');
  const names = new Map(v.nodes.map((n) => [n.agentId, n.agentName]));
  printTable(
    io,
    ['STEP', 'NODE', 'ATTEMPT', 'STATE', 'EXIT', 'OUT/ERR BYTES', 'ERROR'],
    v.steps.map((s) => [`${s.handler ? 'onFailure: ' : ''}${s.name}`, names.get(s.agentId ?? '') ?? s.agentId ?? '(coordinator)', String(s.attempt), s.state, s.exitCode === null ? '' : String(s.exitCode), `${s.stdoutBytes}/${s.stderrBytes}`, s.error ?? '']),
  );
  const notes = v.steps.flatMap((s) =>
    (['stdout', 'stderr'] as const)
      .filter((stream) => (stream === 'stdout' ? s.stdoutTruncated : s.stderrTruncated) === true)
      .map((stream) => {
        const kept = stream === 'stdout' ? (s.stdoutReportedBytes ?? s.stdoutBytes) : (s.stderrReportedBytes ?? s.stderrBytes);
        return `note: ${s.name} on ${names.get(s.agentId ?? '') ?? s.agentId ?? '(coordinator)'}: ${stream} was truncated at the output limit; only its first ${kept} bytes were kept\n`;
      }),
  );
  if (notes.length) io.out(`\n${notes.join('')}`);
  if (bool(p.values, 'output')) {
    for (const s of v.steps) {
      if (s.stdoutBytes + s.stderrBytes === 0) continue;
      io.out(`\n--- ${s.name} on ${names.get(s.agentId ?? '') ?? s.agentId}\n`);
      for (const stream of ['stdout', 'stderr'] as const) {
        const r = await client.raw('GET', `/api/v1/executions/${v.id}/steps/${s.id}/output?stream=${stream}`, undefined, 'application/octet-stream');
        const text = await r.text();
        if (text) (stream === 'stdout' ? io.out : io.err)(text.endsWith('\n') ? text : `${text}\n`);
      }
    }
  }
  return v.state === 'failed' || v.state === 'timed_out' ? 1 : 0;
}

/** The head of `executions show`: what ran, who asked and why, who approved or denied it and why, how it ended. */
export function describeExecution(v: ExecutionView): string[] {
  const lines = [
    `execution ${v.id}  ${v.state}${v.stateReason ? ` (${v.stateReason})` : ''}`,
    `runbook   ${v.runbookId ?? `(${v.kind})`}${v.runbookDigest ? ` sha256:${v.runbookDigest.slice(0, 16)}…` : ''}`,
    `by        ${v.requestedBy} at ${v.createdAt}${v.finishedAt ? `, finished ${v.finishedAt}` : ''}`,
  ];
  if (v.reason) lines.push(`reason    ${v.reason}`);
  lines.push(`targets   ${v.targets}`);
  if (Object.keys(v.options).length) lines.push(`options   ${Object.entries(v.options).map(([k, x]) => `${k}=${String(x)}`).join(' ')}`);
  const gate = (g: number): string => (g < 0 ? '' : ` (approval step ${g + 1})`);
  for (const a of v.approvals) {
    lines.push(`${a.decision === 'approve' ? 'approved' : 'denied  '}  by ${a.approver} at ${a.decidedAt}${gate(a.gate)}${a.comment ? `: ${a.comment}` : ''}`);
  }
  if (v.pendingApproval) {
    const p = v.pendingApproval;
    lines.push(`waiting   for ${p.required - p.approvals} more approval(s)${p.from.length ? ` from ${p.from.join(', ')}` : ''}${gate(p.gate)}${p.message ? `: ${p.message}` : ''}`);
  }
  if (v.canceledBy) lines.push(`canceled  by ${v.canceledBy}`);
  return lines;
}

export const executionsFollow: CommandSpec = {
  name: 'executions follow',
  usage: 'executions follow EXECUTION_ID [--json]',
  summary: 'Print an execution\'s output and progress from its start until it ends (attaches to a running or a finished one); exits 0 only if it succeeded.',
  options: { ...API_OPTIONS, json: { type: 'boolean', description: 'print each event as a JSON line' } },
  allowPositionals: true,
};

export async function runExecutionsFollow(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the execution id (see `handrail executions ls`)');
  const client = apiClientFor(p);
  const json = bool(p.values, 'json');
  let final = await followExecution(client, id, io, { json });
  while (!final || ['queued', 'running', 'awaiting_approval'].includes(final.state)) {
    final = await client.request<ExecutionView>('GET', `/api/v1/executions/${encodeURIComponent(id)}?wait=30s`);
  }
  if (!json) io.out(`execution ${final.id} ${final.state}${final.stateReason ? `: ${final.stateReason}` : ''}\n`);
  return final.state === 'succeeded' ? 0 : 1;
}

export const executionsCancel: CommandSpec = {
  name: 'executions cancel',
  usage: 'executions cancel EXECUTION_ID',
  summary: 'Cancel an execution: no further dispatch, running steps are killed on their agents.',
  options: { ...API_OPTIONS },
  allowPositionals: true,
};

export async function runExecutionsCancel(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the execution id');
  await apiClientFor(p).request('POST', `/api/v1/executions/${encodeURIComponent(id)}/cancel`);
  io.out(`execution ${id}: cancel requested\n`);
  return 0;
}
