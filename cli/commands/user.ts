/** `handrail user add|token|ls|password|…`: users, groups, portal passwords and API tokens (on the coordinator host). */
import { generatePassword } from '../../coordinator/auth/user-store.js';
import { withDataDir } from '../data-dir.js';
import { printTable, type CliIo } from '../io.js';
import { bool, durationSetting, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR, JSON_OUTPUT } from '../settings.js';

const actor = (io: CliIo): { kind: 'cli'; id: string } => ({ kind: 'cli', id: io.env['USER'] ?? 'cli' });

export const userAdd: CommandSpec = {
  name: 'user add',
  usage: 'user add NAME --group GROUP [--group GROUP]...',
  summary: 'Add a user and their groups (policies grant actions to users and groups).',
  options: { 'data-dir': DATA_DIR, group: { type: 'string', multiple: true, placeholder: 'GROUP', description: 'group membership (repeatable or comma-separated)' } },
  allowPositionals: true,
};

export async function runUserAdd(p: ParsedCommand, io: CliIo): Promise<number> {
  const name = p.positionals[0];
  if (!name) throw new UsageError('give the user name', 'e.g. handrail user add alice --group ops');
  return withDataDir(p, io, async (data) => {
    const u = await data.users.add(name, list(p.values, 'group'), actor(io), io.now());
    io.out(`user ${u.name} added${u.groups.length ? ` (groups: ${u.groups.join(', ')})` : ''}\n`);
    return 0;
  });
}

export const userPassword: CommandSpec = {
  name: 'user password',
  usage: 'user password NAME (--generate | < FILE)',
  summary:
    'Set the password a user logs in to the portal with: read from standard input (one line; pipe it, e.g. `printf %s "$PW" | handrail user password alice`), or --generate prints a new random one once. Ends the user\'s portal sessions.',
  options: { 'data-dir': DATA_DIR, generate: { type: 'boolean', description: 'make a random password and print it (once)' } },
  allowPositionals: true,
};

export async function runUserPassword(p: ParsedCommand, io: CliIo): Promise<number> {
  const name = p.positionals[0];
  if (!name) throw new UsageError('give the user name', 'e.g. handrail user password alice');
  const generate = bool(p.values, 'generate');
  let password: string;
  if (generate) password = generatePassword();
  else {
    if (!io.readStdin) throw new UsageError('pipe the password on standard input, or use --generate', 'e.g. printf %s "$PASSWORD" | handrail user password NAME');
    password = (await io.readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw new UsageError('no password on standard input', 'pipe one in, or use --generate');
    if (password.includes('\n')) throw new UsageError('the password must be one line');
  }
  return withDataDir(p, io, async (data) => {
    await data.users.setPassword(name, password, actor(io));
    const ended = await data.sessions.endAll(name, 'revoked', actor(io), io.now());
    if (generate) io.out(`${password}\n`);
    io.err(`password for ${name} set${ended > 0 ? `; ${ended} portal session${ended === 1 ? '' : 's'} ended` : ''}\n`);
    return 0;
  });
}

export const userToken: CommandSpec = {
  name: 'user token',
  usage: 'user token NAME [--ttl 30d] [--description TEXT]',
  summary: 'Issue an API token for a user (printed once; stored hashed). Use it with --token / HANDRAIL_TOKEN.',
  options: {
    'data-dir': DATA_DIR,
    ttl: { type: 'string', default: '30d', placeholder: 'DURATION', description: 'token lifetime' },
    description: { type: 'string', placeholder: 'TEXT', description: 'what the token is for' },
    json: JSON_OUTPUT,
  },
  allowPositionals: true,
};

export async function runUserToken(p: ParsedCommand, io: CliIo): Promise<number> {
  const name = p.positionals[0];
  if (!name) throw new UsageError('give the user name', 'e.g. handrail user token alice');
  const ttl = durationSetting(p, 'ttl', 1_000);
  return withDataDir(p, io, async (data) => {
    const t = await data.users.issueToken(name, ttl, str(p.values, 'description') ?? null, actor(io), io.now());
    if (bool(p.values, 'json')) io.out(JSON.stringify({ id: t.id, token: t.token, expiresAt: new Date(t.expiresAt).toISOString() }) + '\n');
    else {
      io.out(`${t.token}\n`);
      io.err(`API token ${t.id} for ${name}, expires ${new Date(t.expiresAt).toISOString()}\n`);
    }
    return 0;
  });
}

export const userList: CommandSpec = {
  name: 'user ls',
  usage: 'user ls [--json]',
  summary: 'List users and their groups.',
  options: { 'data-dir': DATA_DIR, json: JSON_OUTPUT },
};

export async function runUserList(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    const users = await data.users.list();
    if (bool(p.values, 'json')) io.out(JSON.stringify({ users }) + '\n');
    else printTable(io, ['NAME', 'GROUPS', 'STATE', 'PASSWORD'], users.map((u) => [u.name, u.groups.join(','), u.disabled ? 'disabled' : 'active', u.hasPassword ? 'set' : '-']));
    return 0;
  });
}

export const userTokens: CommandSpec = {
  name: 'user tokens',
  usage: 'user tokens [NAME] [--json]',
  summary: 'List API tokens (never their secrets): id, user, expiry, last use, revoked.',
  options: { 'data-dir': DATA_DIR, json: JSON_OUTPUT },
  allowPositionals: true,
};

export async function runUserTokens(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    const tokens = await data.users.tokens(p.positionals[0]);
    const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());
    if (bool(p.values, 'json')) io.out(JSON.stringify({ tokens }) + '\n');
    else printTable(io, ['ID', 'USER', 'EXPIRES', 'LAST USED', 'REVOKED', 'DESCRIPTION'], tokens.map((t) => [t.id, t.userName, iso(t.expiresAt), iso(t.lastUsedAt), iso(t.revokedAt), t.description ?? '']));
    return 0;
  });
}

export const userRevokeToken: CommandSpec = {
  name: 'user revoke-token',
  usage: 'user revoke-token TOKEN_ID',
  summary: 'Revoke an API token at once (see `handrail user tokens`).',
  options: { 'data-dir': DATA_DIR },
  allowPositionals: true,
};

export async function runUserRevokeToken(p: ParsedCommand, io: CliIo): Promise<number> {
  const id = p.positionals[0];
  if (!id) throw new UsageError('give the token id (see `handrail user tokens`)');
  return withDataDir(p, io, async (data) => {
    await data.users.revokeToken(id, actor(io), io.now());
    io.out(`API token ${id} revoked\n`);
    return 0;
  });
}
