/** `handrail token create|ls|revoke`: bootstrap tokens for enrolling agents. */
import { withDataDir } from '../data-dir.js';
import type { BootstrapTokenRow } from '../../coordinator/registry/bootstrap-token.js';
import { formatLabels, parseLabelList } from '../../core/labels.js';
import { printTable, type CliIo } from '../io.js';
import { bool, durationSetting, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR, JSON_OUTPUT } from '../settings.js';

export const tokenCreate: CommandSpec = {
  name: 'token create',
  usage: 'token create [--labels k=v,...] [--ttl 1h] [--uses 1] [--name PATTERN]',
  summary: 'Print a one-time bootstrap token for enrolling agents. Only its hash is stored.',
  options: {
    'data-dir': DATA_DIR,
    labels: { type: 'string', placeholder: 'k=v,...', description: 'labels pinned on every agent enrolled with this token (they override the agent\'s own)' },
    ttl: { type: 'string', default: '1h', placeholder: 'DURATION', description: 'how long the token is valid' },
    uses: { type: 'string', default: '1', placeholder: 'N', description: 'how many agents may enroll with it' },
    name: { type: 'string', placeholder: 'PATTERN', description: 'glob the agent name (CSR common name) must match, e.g. "web-*"' },
    description: { type: 'string', placeholder: 'TEXT', description: 'a note shown by `token ls`' },
    json: JSON_OUTPUT,
  },
};

export async function runTokenCreate(p: ParsedCommand, io: CliIo): Promise<number> {
  let labels: Record<string, string> = {};
  try {
    labels = parseLabelList(str(p.values, 'labels') ?? '');
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  const ttlMs = durationSetting(p, 'ttl', 1_000);
  const uses = Number(str(p.values, 'uses'));
  if (!Number.isInteger(uses) || uses < 1 || uses > 100_000) throw new UsageError('--uses must be a whole number from 1 to 100000');
  const namePattern = str(p.values, 'name') ?? null;
  if (namePattern !== null && !/^[A-Za-z0-9._*?-]{1,63}$/.test(namePattern)) throw new UsageError('--name must be a glob of letters, digits, . _ - * ?');
  return withDataDir(p, io, async (data) => {
    const t = await data.tokens.create({ labels, ttlMs, uses, namePattern, description: str(p.values, 'description') ?? null, createdBy: io.env['USER'] ?? 'cli' }, io.now());
    if (bool(p.values, 'json')) {
      io.out(JSON.stringify({ id: t.id, token: t.token, expiresAt: new Date(t.expiresAt).toISOString(), uses, labels, namePattern }) + '\n');
    } else {
      io.out(`${t.token}\n`);
      io.err(`token ${t.id}: ${uses} use(s), expires ${new Date(t.expiresAt).toISOString()}${Object.keys(labels).length ? `, labels ${formatLabels(labels)}` : ''}${namePattern ? `, names ${namePattern}` : ''}\n`);
    }
    return 0;
  });
}

export type TokenState = 'revoked' | 'used' | 'expired' | 'active';

/**
 * What became of a token, first things first: revoked, else used up (a spent token stays
 * "used" after its expiry passes), else expired, else active.
 */
export function tokenState(t: Pick<BootstrapTokenRow, 'revokedAt' | 'expiresAt' | 'uses' | 'usesAllowed'>, now: number): TokenState {
  if (t.revokedAt !== null) return 'revoked';
  if (t.uses >= t.usesAllowed) return 'used';
  if (t.expiresAt <= now) return 'expired';
  return 'active';
}

export const tokenList: CommandSpec = {
  name: 'token ls',
  usage: 'token ls [--json]',
  summary: 'List bootstrap tokens (never their secrets).',
  options: { 'data-dir': DATA_DIR, json: JSON_OUTPUT },
};

export async function runTokenList(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    const tokens = await data.tokens.list();
    const now = io.now();
    const state = (t: (typeof tokens)[number]): TokenState => tokenState(t, now);
    if (bool(p.values, 'json')) {
      io.out(JSON.stringify({ tokens: tokens.map((t) => ({ id: t.id, state: state(t), uses: t.uses, usesAllowed: t.usesAllowed, expiresAt: new Date(t.expiresAt).toISOString(), labels: t.labels, namePattern: t.namePattern, description: t.description })) }) + '\n');
    } else {
      printTable(io, ['ID', 'STATE', 'USES', 'EXPIRES', 'LABELS', 'NAMES'], tokens.map((t) => [t.id, state(t), `${t.uses}/${t.usesAllowed}`, new Date(t.expiresAt).toISOString(), formatLabels(t.labels), t.namePattern ?? '*']));
    }
    return 0;
  });
}

export const tokenRevoke: CommandSpec = {
  name: 'token revoke',
  usage: 'token revoke TOKEN_ID',
  summary: 'Revoke a bootstrap token so no further agent can enroll with it.',
  options: { 'data-dir': DATA_DIR },
  allowPositionals: true,
};

export async function runTokenRevoke(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the token id (see `handrail token ls`)');
  return withDataDir(p, io, async (data) => {
    if (!(await data.tokens.revoke(id, io.env['USER'] ?? 'cli', io.now()))) throw new UsageError(`no active token ${id}`);
    io.out(`token ${id} revoked\n`);
    return 0;
  });
}
