/**
 * `handrail notify add|ls|rm|enable|disable|rotate|deliveries`: outbound notification subscriptions, through the
 * coordinator's API (an admin action: policy decides, the audit log names the token's user).
 * `add` and `rotate` print the secret once, on stdout alone, so it can be piped into a vault.
 */
import type { DeliveryView, SubscriptionView } from '../../web/api/notifications.js';
import { apiClientFor } from '../api-client.js';
import { printTable, type CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { API_OPTIONS, JSON_OUTPUT } from '../settings.js';

const API = '/api/v1/notifications';
const EVENTS = ['execution.started', 'execution.waiting_approval', 'execution.finished'];
const scopeText = (s: SubscriptionView): string => (s.scope === 'all' ? 'all' : s.scope === 'runbook' ? `runbook:${s.runbook ?? ''}` : `team:${s.team ?? ''}`);

function idArg(p: ParsedCommand): string {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the subscription id (see `handrail notify ls`)');
  return id;
}

export const notifyAdd: CommandSpec = {
  name: 'notify add',
  usage: 'notify add URL [--runbook ID | --team TEAM] [--event EVENT]... [--disabled] [--description TEXT]',
  summary: 'Subscribe a URL to signed execution notifications (HMAC-SHA256). Prints the secret once.',
  options: {
    ...API_OPTIONS,
    runbook: { type: 'string', placeholder: 'ID', description: 'only executions of this runbook' },
    team: { type: 'string', placeholder: 'TEAM', description: 'only executions of runbooks this team owns (metadata.owner)' },
    event: { type: 'string', multiple: true, placeholder: 'EVENT', description: `${EVENTS.join(', ')} (repeatable; default execution.finished and execution.waiting_approval)` },
    disabled: { type: 'boolean', description: 'create it switched off' },
    description: { type: 'string', placeholder: 'TEXT', description: 'what it is for' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

export async function runNotifyAdd(p: ParsedCommand, io: CliIo): Promise<number> {
  const url = p.positionals[0];
  if (!url) throw new UsageError('give the receiver URL, e.g. handrail notify add https://hooks.example.com/handrail --team team-web');
  const events = list(p.values, 'event');
  for (const e of events) if (!EVENTS.includes(e)) throw new UsageError(`--event "${e}" is not one of ${EVENTS.join(', ')}`);
  const body = {
    url,
    ...(str(p.values, 'runbook') !== undefined ? { runbook: str(p.values, 'runbook') } : {}),
    ...(str(p.values, 'team') !== undefined ? { team: str(p.values, 'team') } : {}),
    ...(events.length > 0 ? { events } : {}),
    ...(bool(p.values, 'disabled') ? { enabled: false } : {}),
    ...(str(p.values, 'description') !== undefined ? { description: str(p.values, 'description') } : {}),
  };
  const r = await apiClientFor(p).request<{ subscription: SubscriptionView; secret: string }>('POST', API, body);
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else {
    io.out(`${r.secret}\n`);
    io.err(`subscription ${r.subscription.id}: ${r.subscription.events.join(', ')} for ${scopeText(r.subscription)} to ${r.subscription.url}${r.subscription.enabled ? '' : ' (disabled)'}\nthe secret above is shown only now: give it to the receiver to verify x-handrail-signature\n`);
  }
  return 0;
}

export const notifyList: CommandSpec = {
  name: 'notify ls',
  usage: 'notify ls [--json]',
  summary: 'List notification subscriptions (never their secrets).',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
};

export async function runNotifyList(p: ParsedCommand, io: CliIo): Promise<number> {
  const r = await apiClientFor(p).request<{ subscriptions: SubscriptionView[] }>('GET', API);
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else printTable(io, ['ID', 'SCOPE', 'EVENTS', 'STATE', 'URL'], r.subscriptions.map((s) => [s.id, scopeText(s), s.events.join(','), s.enabled ? 'enabled' : 'disabled', s.url]));
  return 0;
}

export const notifyRemove: CommandSpec = {
  name: 'notify rm',
  usage: 'notify rm SUBSCRIPTION_ID',
  summary: 'Remove a subscription; deliveries still pending for it are canceled.',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runNotifyRemove(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = idArg(p);
  const r = await apiClientFor(p).request<{ id: string; canceledDeliveries: number }>('DELETE', `${API}/${encodeURIComponent(id)}`);
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else io.out(`subscription ${id} removed${r.canceledDeliveries > 0 ? ` (${r.canceledDeliveries} pending deliveries canceled)` : ''}\n`);
  return 0;
}

function switchSpec(on: boolean): CommandSpec {
  return {
    name: `notify ${on ? 'enable' : 'disable'}`,
    usage: `notify ${on ? 'enable' : 'disable'} SUBSCRIPTION_ID`,
    summary: on ? 'Switch a subscription back on: events queue deliveries for it again.' : 'Switch a subscription off: events queue no deliveries for it (those already queued still go out).',
    options: { ...API_OPTIONS, json: JSON_OUTPUT },
    allowPositionals: true,
  };
}

export const notifyEnable = switchSpec(true);
export const notifyDisable = switchSpec(false);

async function runSwitch(p: ParsedCommand, io: CliIo, enabled: boolean): Promise<number> {
  const id = idArg(p);
  const r = await apiClientFor(p).request<SubscriptionView>('PATCH', `${API}/${encodeURIComponent(id)}`, { enabled });
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else io.out(`subscription ${id} ${r.enabled ? 'enabled' : 'disabled'}\n`);
  return 0;
}

export const runNotifyEnable = (p: ParsedCommand, io: CliIo): Promise<number> => runSwitch(p, io, true);
export const runNotifyDisable = (p: ParsedCommand, io: CliIo): Promise<number> => runSwitch(p, io, false);

export const notifyRotate: CommandSpec = {
  name: 'notify rotate',
  usage: 'notify rotate SUBSCRIPTION_ID',
  summary: 'Replace a subscription\'s secret at once and print the new one (once).',
  options: { ...API_OPTIONS, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runNotifyRotate(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = idArg(p);
  const r = await apiClientFor(p).request<{ subscription: SubscriptionView; secret: string }>('POST', `${API}/${encodeURIComponent(id)}/rotate-secret`);
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else {
    io.out(`${r.secret}\n`);
    io.err(`subscription ${id}: new secret above, in use from now on (shown only now)\n`);
  }
  return 0;
}

export const notifyDeliveries: CommandSpec = {
  name: 'notify deliveries',
  usage: 'notify deliveries SUBSCRIPTION_ID [--limit N] [--json]',
  summary: 'Recent deliveries of one subscription, newest first: state, attempts, last status or error.',
  options: { ...API_OPTIONS, limit: { type: 'string', default: '20', placeholder: 'N', description: 'how many (at most 500)' }, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runNotifyDeliveries(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = idArg(p);
  const limit = str(p.values, 'limit') as string;
  if (!/^[0-9]{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 500) throw new UsageError('--limit must be a whole number from 1 to 500');
  const r = await apiClientFor(p).request<{ deliveries: DeliveryView[] }>('GET', `${API}/${encodeURIComponent(id)}/deliveries?limit=${limit}`);
  if (bool(p.values, 'json')) io.out(JSON.stringify(r) + '\n');
  else {
    printTable(
      io,
      ['ID', 'EVENT', 'EXECUTION', 'STATE', 'ATTEMPTS', 'LAST', 'CREATED'],
      r.deliveries.map((d) => [d.id, d.event, d.executionId, d.state === 'pending' && d.nextAttemptAt ? `pending (next ${d.nextAttemptAt})` : d.state, String(d.attempts), d.lastError ?? (d.lastStatus === null ? '-' : `HTTP ${d.lastStatus}`), d.createdAt]),
    );
  }
  return 0;
}
