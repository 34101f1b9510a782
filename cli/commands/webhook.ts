/**
 * `handrail webhook add|ls|rm|rotate`: inbound webhooks, through the API as an admin. `add` and
 * `rotate` print the hook's secret once, on stdout (for a pipe or a secret store); nothing else
 * ever shows it again.
 */
import type { WebhookView } from '../../coordinator/webhooks/webhook-admin.js';
import { apiClientFor } from '../api-client.js';
import { printTable, type CliIo } from '../io.js';
import { bool, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';
import { parseOpts } from './run.js';

const many = (p: ParsedCommand, name: string): string[] => {
  const v = p.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
};

export const webhookAdd: CommandSpec = {
  name: 'webhook add',
  usage: 'webhook add --runbook ID --run-as USER [--map OPTION=JSONPATH]... [--default OPTION=VALUE]... [--set OPTION=VALUE]... [--target LABEL=JSONPATH] [--description TEXT] [--json]',
  summary: 'Define an inbound webhook that runs a runbook as a service user (admin). Prints its secret once.',
  options: {
    ...API_OPTIONS,
    runbook: { type: 'string', placeholder: 'ID', description: 'the runbook the hook starts' },
    'run-as': { type: 'string', placeholder: 'USER', description: 'the service user it runs as (policy decides what that user may run)' },
    map: { type: 'string', multiple: true, placeholder: 'OPTION=JSONPATH', description: 'an option from a payload field, e.g. host=$.alerts[0].labels.instance (repeatable)' },
    default: { type: 'string', multiple: true, placeholder: 'OPTION=VALUE', description: 'the value of a mapped option when the payload lacks the field (repeatable)' },
    set: { type: 'string', multiple: true, placeholder: 'OPTION=VALUE', description: 'a fixed option value (repeatable)' },
    target: { type: 'string', placeholder: 'LABEL=JSONPATH', description: 'narrow the targets to LABEL=<value of the field>, e.g. host=$.alerts[0].labels.host' },
    description: { type: 'string', placeholder: 'TEXT', description: 'what the hook is for' },
    json: JSON_OUTPUT,
  },
};

type WithSecret = { webhook: WebhookView; secret: string; url: string };

export async function runWebhookAdd(p: ParsedCommand, io: CliIo): Promise<number> {
  const runbook = str(p.values, 'runbook');
  const runAs = str(p.values, 'run-as');
  if (!runbook || !runAs) throw new UsageError("give --runbook ID and --run-as USER, e.g. handrail webhook add --runbook diagnostics-bundle --run-as alertmanager --map 'ticket=$.alerts[0].labels.alertname'");
  const defaults = parseOpts(many(p, 'default'));
  const options: Record<string, { path: string; default?: string } | { value: string }> = {};
  for (const [name, path] of Object.entries(parseOpts(many(p, 'map')))) options[name] = { path, ...(defaults[name] !== undefined ? { default: defaults[name] } : {}) };
  for (const name of Object.keys(defaults)) if (!options[name]) throw new UsageError(`--default ${name}=… has no --map ${name}=JSONPATH to be the default of`);
  for (const [name, value] of Object.entries(parseOpts(many(p, 'set')))) {
    if (options[name]) throw new UsageError(`option "${name}" is both mapped (--map) and fixed (--set): choose one`);
    options[name] = { value };
  }
  const targetText = str(p.values, 'target');
  let target: { label: string; path: string } | undefined;
  if (targetText !== undefined) {
    const eq = targetText.indexOf('=');
    if (eq <= 0) throw new UsageError(`--target "${targetText}" must look like LABEL=JSONPATH`);
    target = { label: targetText.slice(0, eq), path: targetText.slice(eq + 1) };
  }
  const description = str(p.values, 'description');
  const r = await apiClientFor(p).request<WithSecret>('POST', '/api/v1/webhooks', { runbook, runAs, mapping: { options, ...(target ? { target } : {}) }, ...(description ? { description } : {}) });
  return printSecret(r, p, io, 'defined');
}

function printSecret(r: WithSecret, p: ParsedCommand, io: CliIo, what: string): number {
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(r) + '\n');
    return 0;
  }
  io.out(`${r.secret}\n`);
  io.err(
    `webhook ${r.webhook.id} ${what}: POST ${r.url} runs ${r.webhook.runbookId} as ${r.webhook.runAs}\n` +
      `  the line above is its secret, shown once: sign each delivery with it (see the README, "Inbound webhooks")\n` +
      (r.webhook.previousSecretValidUntil ? `  the previous secret is still accepted until ${r.webhook.previousSecretValidUntil}\n` : ''),
  );
  return 0;
}

export const webhookList: CommandSpec = {
  name: 'webhook ls',
  usage: 'webhook ls [--json]',
  summary: 'List inbound webhooks (admin): id, runbook, run-as user, mapping. Never their secrets.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
};

export async function runWebhookList(p: ParsedCommand, io: CliIo): Promise<number> {
  const r = await apiClientFor(p).request<{ webhooks: WebhookView[] }>('GET', '/api/v1/webhooks');
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(r) + '\n');
    return 0;
  }
  if (r.webhooks.length === 0) {
    io.err('no webhooks (define one with `handrail webhook add`)\n');
    return 0;
  }
  printTable(
    io,
    ['ID', 'RUNBOOK', 'RUN AS', 'CREATED', 'PREVIOUS SECRET UNTIL', 'MAPPING'],
    r.webhooks.map((h) => [h.id, h.runbookId, h.runAs, h.createdAt, h.previousSecretValidUntil ?? '-', JSON.stringify(h.mapping)]),
  );
  return 0;
}

const oneId = (p: ParsedCommand, usage: string): string => {
  const id = p.positionals[0];
  if (!id || p.positionals.length > 1) throw new UsageError(`give one webhook id, e.g. handrail ${usage} whk-0123456789abcdef (see \`handrail webhook ls\`)`);
  return id;
};

export const webhookRemove: CommandSpec = {
  name: 'webhook rm',
  usage: 'webhook rm ID',
  summary: 'Remove an inbound webhook (admin): its deliveries are refused from then on.',
  options: { ...API_OPTIONS },
  allowPositionals: true,
};

export async function runWebhookRemove(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = oneId(p, 'webhook rm');
  await apiClientFor(p).request('DELETE', `/api/v1/webhooks/${encodeURIComponent(id)}`);
  io.err(`webhook ${id} removed\n`);
  return 0;
}

export const webhookRotate: CommandSpec = {
  name: 'webhook rotate',
  usage: 'webhook rotate ID [--revoke-previous] [--json]',
  summary: 'Give a webhook a new secret (admin), printed once; the old one is accepted for 24 hours more unless --revoke-previous.',
  options: { ...API_OPTIONS, 'revoke-previous': { type: 'boolean', description: 'refuse the old secret at once (it leaked) instead of for 24 hours more' }, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runWebhookRotate(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = oneId(p, 'webhook rotate');
  const r = await apiClientFor(p).request<WithSecret>('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`, bool(p.values, 'revoke-previous') ? { keepPrevious: false } : undefined);
  return printSecret(r, p, io, 'has a new secret');
}
