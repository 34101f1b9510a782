/** `handrail executions approve|deny ID [--comment TEXT]` and `handrail approvals` (the inbox). */
import { apiClientFor } from '../api-client.js';
import { printTable, type CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';
import type { PendingApproval } from '../../web/api/approvals.js';

const spec = (decision: 'approve' | 'deny'): CommandSpec => ({
  name: `executions ${decision}`,
  usage: `executions ${decision} EXECUTION_ID [--comment TEXT]`,
  summary: decision === 'approve' ? 'Approve an execution waiting for approval (not your own).' : 'Deny an execution waiting for approval; it is canceled.',
  options: { ...API_OPTIONS, comment: { type: 'string', placeholder: 'TEXT', description: 'recorded with the decision' } },
  allowPositionals: true,
});

export const executionsApprove = spec('approve');
export const executionsDeny = spec('deny');

const decide = (decision: 'approve' | 'deny') => async (p: ParsedCommand, io: CliIo): Promise<number> => {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the execution id (see `handrail approvals`)');
  const api = apiClientFor(p);
  const r = await api.request<{ state: string; remaining: number }>('POST', `/api/v1/executions/${encodeURIComponent(id)}/${decision}`, { comment: str(p.values, 'comment') ?? '' });
  io.out(`execution ${id}: ${r.state}${r.state === 'awaiting_approval' ? ` (${r.remaining} more approval(s) needed)` : ''}\n`);
  return 0;
};

export const runExecutionsApprove = decide('approve');
export const runExecutionsDeny = decide('deny');

export const approvalsList: CommandSpec = {
  name: 'approvals',
  usage: 'approvals [--json]',
  summary: 'List executions waiting for an approval you may give.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
};

export async function runApprovalsList(p: ParsedCommand, io: CliIo): Promise<number> {
  const api = apiClientFor(p);
  const r = await api.request<{ approvals: PendingApproval[] }>('GET', '/api/v1/approvals');
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else printTable(io, ['EXECUTION', 'RUNBOOK', 'BY', 'TARGETS', 'APPROVALS', 'REASON', 'OPTIONS'], r.approvals.map((a) => [a.executionId, a.runbookId ?? '', a.requestedBy, a.targets, `${a.approvals.length}/${a.required}`, a.reason ?? '', formatOptions(a.options)]));
  return 0;
}

/** `k=v` pairs as given (secrets already masked by the API), so an approver sees what would run. */
function formatOptions(options: Record<string, string>): string {
  return Object.entries(options).map(([k, v]) => `${k}=${v}`).join(' ');
}
