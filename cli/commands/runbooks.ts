/**
 * `handrail runbooks ls|show` (what the token's user may see and run, through the API),
 * `handrail runbooks lint DIR` (for a runbook repository's CI) and `handrail runbooks reload`.
 */
import { dirname } from 'node:path';
import type { RunbookView } from '../../web/api/runbooks.js';
import { apiClientFor } from '../api-client.js';
import { agentsMatching, type FleetAgent } from '../agent-targets.js';
import { printTable, type CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT, RUNBOOKS_DIR } from '../settings.js';
import { stat } from 'node:fs/promises';
// Heavier modules (node-forge, SQLite, YAML, codecs) load with `await import` in the functions
// that use them, not with this module: `handrail --help` loads every command's module.

export const runbooksList: CommandSpec = {
  name: 'runbooks ls',
  usage: 'runbooks ls [--json]',
  summary: 'List the runbooks you may see: id, title, owner, whether you may run them, whether a run needs approval, and their targets.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
};

const approvalText = (a: RunbookView['approval']): string => (a === null || a.required === 0 ? 'no' : `${a.required} from ${a.from.join(', ') || 'anyone'}`);

export async function runRunbooksList(p: ParsedCommand, io: CliIo): Promise<number> {
  const r = await apiClientFor(p).request<{ runbooks: RunbookView[] }>('GET', '/api/v1/runbooks');
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(r) + '\n');
    return 0;
  }
  if (r.runbooks.length === 0) {
    io.err('no runbooks you may see (policy decides: ask an admin, or check `handrail policy explain`)\n');
    return 0;
  }
  printTable(
    io,
    ['ID', 'YOU', 'APPROVAL', 'OWNER', 'TARGETS', 'TITLE'],
    r.runbooks.map((b) => [b.id, b.canRun ? 'run' : 'view', approvalText(b.approval), b.owner, b.targets, b.title]),
  );
  io.err('details and options: handrail runbooks show ID\n');
  return 0;
}

export const runbooksShow: CommandSpec = {
  name: 'runbooks show',
  usage: 'runbooks show RUNBOOK_ID [--json]',
  summary: 'Show one runbook: its options (type, required, default, pattern, allowed values), the targets it may touch and the agents they match now, whether a run needs approval, and its steps.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
  allowPositionals: true,
};

/** What a value of an option must look like, in one cell. */
function allowed(o: RunbookView['options'][number]): string {
  const parts: string[] = [];
  if (o.values) parts.push(`one of ${o.values.join(', ')}`);
  if (o.pattern) parts.push(`pattern ${o.pattern}`);
  if (o.min !== null && o.max !== null) parts.push(`${o.min}..${o.max}`);
  else if (o.min !== null) parts.push(`>= ${o.min}`);
  else if (o.max !== null) parts.push(`<= ${o.max}`);
  return parts.join('; ');
}

export async function runRunbooksShow(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the runbook id (see `handrail runbooks ls`)');
  if (p.positionals.length > 1) throw new UsageError(`unexpected argument "${p.positionals[1]}"`);
  const api = apiClientFor(p);
  const b = await api.request<RunbookView>('GET', `/api/v1/runbooks/${encodeURIComponent(id)}`);
  // The agents the targets match now (a listing failure only loses this line).
  const fleet = await api.request<{ agents: FleetAgent[] }>('GET', '/api/v1/agents').then(
    (r) => agentsMatching(r.agents, b.targets),
    () => undefined,
  );
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify({ ...b, ...(fleet ? { matchingAgents: fleet.map((a) => ({ id: a.id, name: a.name, status: a.status })) } : {}) }) + '\n');
    return 0;
  }
  const row = (k: string, v: string): void => io.out(`${k.padEnd(10)}${v}\n`);
  row('runbook', `${b.id}  ${b.title}`);
  if (b.description) row('', b.description.trim().split('\n').join(`\n${' '.repeat(10)}`));
  row('owner', `${b.owner}${b.tags.length ? `  (tags ${b.tags.join(', ')})` : ''}`);
  row('version', `${b.file}  sha256:${b.digest.slice(0, 16)}…`);
  row('you', b.canRun ? 'may run it' : 'may view it, not run it');
  row('approval', b.approval === null || b.approval.required === 0 ? 'not needed' : `needed: ${b.approval.required} approval(s) from ${b.approval.from.join(', ') || 'anyone'} (not the requester)`);
  row('targets', `${b.targets}  (the widest set it may touch; --targets narrows it)`);
  if (fleet) row('', fleet.length === 0 ? 'no enrolled agent matches now' : `matches now: ${fleet.map((a) => `${a.name}${a.status === 'online' ? '' : ` (${a.status})`}`).join(', ')}`);
  row('strategy', `${b.strategy}, concurrency ${b.concurrency}, at most ${b.maxErrors} failed node(s)`);
  io.out('\nOptions:\n');
  if (b.options.length === 0) io.out('  (none)\n');
  else {
    printTable(
      io,
      ['  NAME', 'TYPE', 'REQUIRED', 'DEFAULT', 'ALLOWED', 'DESCRIPTION'],
      b.options.map((o) => [`  ${o.name}`, o.type, o.required ? 'yes' : 'no', o.default ?? '', allowed(o), o.description ?? o.label ?? '']),
    );
  }
  io.out('\nSteps:\n');
  b.steps.forEach((s, i) => io.out(`  ${i + 1}. ${s.name}  [${s.kind}] ${s.detail}${s.retries ? `  (retries ${s.retries})` : ''}\n`));
  if (b.onFailure.length) {
    io.out('\nOn failure (per failed node):\n');
    b.onFailure.forEach((s, i) => io.out(`  ${i + 1}. ${s.name}  [${s.kind}] ${s.detail}\n`));
  }
  const example = b.options.filter((o) => o.required && o.default === null).map((o) => ` --opt ${o.name}=…`).join('');
  io.out(`\nRun: handrail run ${b.id}${example} [--targets SELECTOR] --follow\n`);
  return 0;
}

export const runbooksLint: CommandSpec = {
  name: 'runbooks lint',
  usage: 'runbooks lint [DIR] [--json]',
  summary: 'Check every runbook and policy file under DIR: prints file:line:col message for each problem and exits 1 if there is any.',
  options: { 'runbooks-dir': RUNBOOKS_DIR, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runRunbooksLint(p: ParsedCommand, io: CliIo): Promise<number> {
  const { lintDirectory } = await import('../../coordinator/runbooks/catalog.js');
  const dir = p.positionals[0] ?? (str(p.values, 'runbooks-dir') as string);
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new UsageError(`${dir}: no such directory`, 'give the directory that holds your runbooks and policies, e.g. handrail runbooks lint runbooks/ (or --runbooks-dir / HANDRAIL_RUNBOOKS_DIR)');
  if (!st.isDirectory()) throw new UsageError(`${dir} is a file; runbooks lint checks a directory (every .yaml file under it, policies included)`, `give its directory: handrail runbooks lint ${dirname(dir)}`);
  const r = await lintDirectory(dir);
  if (bool(p.values, 'json')) io.out(JSON.stringify({ ok: r.lines.length === 0, runbooks: r.runbooks, policies: r.policies, problems: r.lines }) + '\n');
  else {
    // Problems and the summary on one stream, the summary apart (as eslint and tsc print them):
    // a CI log that joins stdout and stderr cannot glue it to the last problem.
    for (const l of r.lines) io.out(l + '\n');
    io.out(`${r.lines.length ? '\n' : ''}${r.runbooks} runbook(s), ${r.policies} polic${r.policies === 1 ? 'y' : 'ies'}, ${r.lines.length === 0 ? 'no problems' : `${r.lines.length} problem(s)`}\n`);
  }
  return r.lines.length === 0 ? 0 : 1;
}

export const runbooksReload: CommandSpec = {
  name: 'runbooks reload',
  usage: 'runbooks reload',
  summary: 'Make the coordinator reload runbooks and policies now (it also reloads when files change). A broken file never replaces the good version.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
};

export async function runRunbooksReload(p: ParsedCommand, io: CliIo): Promise<number> {
  const api = apiClientFor(p);
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
