/** `handrail runbooks lint DIR` (for a runbook repository's CI) and `handrail runbooks reload`. */
import { lintDirectory } from '../../coordinator/runbooks/catalog.js';
import { ApiClient } from '../api-client.js';
import type { CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_TOKEN, JSON_OUTPUT, RUNBOOKS_DIR, SERVER } from '../settings.js';
import { stat } from 'node:fs/promises';

export const runbooksLint: CommandSpec = {
  name: 'runbooks lint',
  usage: 'runbooks lint [DIR] [--json]',
  summary: 'Check every runbook and policy file under DIR: prints file:line:col message for each problem and exits 1 if there is any.',
  options: { 'runbooks-dir': RUNBOOKS_DIR, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runRunbooksLint(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = p.positionals[0] ?? (str(p.values, 'runbooks-dir') as string);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error();
  } catch {
    throw new UsageError(`${dir} is not a directory`);
  }
  const r = await lintDirectory(dir);
  if (bool(p.values, 'json')) io.out(JSON.stringify({ ok: r.lines.length === 0, runbooks: r.runbooks, policies: r.policies, problems: r.lines }) + '\n');
  else {
    for (const l of r.lines) io.out(l + '\n');
    io.err(`${r.runbooks} runbook(s), ${r.policies} polic${r.policies === 1 ? 'y' : 'ies'}, ${r.lines.length} problem(s)\n`);
  }
  return r.lines.length === 0 ? 0 : 1;
}

export const runbooksReload: CommandSpec = {
  name: 'runbooks reload',
  usage: 'runbooks reload',
  summary: 'Make the coordinator reload runbooks and policies now (it also reloads when files change). A broken file never replaces the good version.',
  options: { server: SERVER, token: API_TOKEN, json: JSON_OUTPUT },
};

export async function runRunbooksReload(p: ParsedCommand, io: CliIo): Promise<number> {
  const api = new ApiClient(str(p.values, 'server') as string, str(p.values, 'token'));
  const r = await api.request<{ added: Array<{ id: string }>; updated: Array<{ id: string }>; removed: string[]; kept: string[]; problems: string[] }>('POST', '/api/v1/runbooks/reload');
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(r) + '\n');
  } else {
    io.out(`added ${r.added.map((x) => x.id).join(', ') || '-'}; updated ${r.updated.map((x) => x.id).join(', ') || '-'}; removed ${r.removed.join(', ') || '-'}\n`);
    if (r.kept.length) io.out(`kept the previous version of ${r.kept.join(', ')} (the new one has problems)\n`);
    for (const l of r.problems) io.err(l + '\n');
  }
  return r.problems.length === 0 ? 0 : 1;
}
