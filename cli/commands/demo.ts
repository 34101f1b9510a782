/**
 * `handrail demo`: a working local installation in one command — CA, coordinator with its
 * embedded store, three local agents as real processes, demo users with portal passwords and API
 * tokens, and the example runbooks; the banner says which URL to open. State lives in --dir (default ./demo, git-ignored); run it again to resume:
 * the same CA, store, agents and API tokens, and executions in progress carry on.
 */
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { UserStore } from '../../coordinator/auth/user-store.js';
import type { SessionStore } from '../../coordinator/auth/session-store.js';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import type { CliIo } from '../io.js';
import type { LogFormat } from '../logger.js';
import { parseListen } from '../listen-address.js';
import { bool, str, type CommandSpec, type ParsedCommand } from '../options.js';
import { LOG_FORMAT, LOG_LEVEL } from '../settings.js';

export const demoCommand: CommandSpec = {
  name: 'demo',
  usage: 'demo [--dir ./demo] [--http-listen 127.0.0.1:8080] [--grpc-listen 127.0.0.1:7443]',
  summary: 'Start a complete local demo: coordinator, three agents, example runbooks and demo users.',
  options: {
    dir: { type: 'string', env: 'HANDRAIL_DEMO_DIR', default: './demo', placeholder: 'DIR', description: 'where the demo keeps its CA, store and agent state' },
    'http-listen': { type: 'string', env: 'HANDRAIL_HTTP_LISTEN', default: '127.0.0.1:8080', placeholder: 'HOST:PORT', description: 'REST API (/api/v1)' },
    'grpc-listen': { type: 'string', env: 'HANDRAIL_GRPC_LISTEN', default: '127.0.0.1:7443', placeholder: 'HOST:PORT', description: 'agent port' },
    'runbooks-dir': { type: 'string', env: 'HANDRAIL_RUNBOOKS_DIR', default: './runbooks', placeholder: 'DIR', description: 'example runbooks and policy' },
    'log-level': { ...LOG_LEVEL, default: 'warn' },
    'log-format': LOG_FORMAT,
    'allow-keys-in-git': ALLOW_KEYS_IN_GIT,
  },
};

const DEMO_AGENTS = [
  { name: 'web-1', labels: 'role=web,env=demo,zone=a' },
  { name: 'web-2', labels: 'role=web,env=demo,zone=b' },
  { name: 'db-1', labels: 'role=db,env=demo,zone=a' },
];

/** The demo's people, one per role, as the example policy (runbooks/policy.yaml) knows them. */
export const DEMO_USERS = [
  { name: 'alice', groups: ['support'], role: 'support (L1)' },
  { name: 'bob', groups: ['web-leads'], role: 'approver (web leads)' },
  { name: 'carol', groups: ['security'], role: 'security (views all)' },
  { name: 'admin', groups: ['admins', 'ops-admins'], role: 'ops admin' },
];

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** The demo users' API tokens, kept in the demo dir (0600, git-ignored) so a restart reuses them. */
const TOKENS_FILE = 'api-tokens.json';
const TOKEN_TTL_MS = 7 * 86_400_000;
/** A saved token with less time left than this is replaced. */
const TOKEN_MIN_LEFT_MS = 86_400_000;
const DEMO_TOKEN_DESCRIPTION = 'demo session';
/** How long a stopping demo agent lets running steps go on (the coordinator is already down: results are spooled). */
const DEMO_STOP_GRACE = '10s';

type SavedTokens = Record<string, { id: string; token: string }>;

/** The demo users' portal passwords, kept beside the tokens (0600, git-ignored) so a restart reuses them. */
const PASSWORDS_FILE = 'portal-passwords.json';

async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function writeSecretFile(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
}

/**
 * One portal password per demo user: the saved one while it still logs that user in, else a
 * newly generated one (which ends the user's portal sessions, as `user password` does).
 */
async function demoPasswords(data: { users: UserStore; sessions: SessionStore }, file: string, now: number): Promise<{ passwords: Record<string, string>; reused: number }> {
  const { generatePassword } = await import('../../coordinator/auth/user-store.js');
  const saved = await readJsonObject(file);
  const actor = { kind: 'cli', id: 'demo' } as const;
  const passwords: Record<string, string> = {};
  let reused = 0;
  for (const u of DEMO_USERS) {
    const s = saved[u.name];
    if (typeof s === 'string' && (await data.users.checkPassword(u.name, s))?.name === u.name) {
      passwords[u.name] = s;
      reused++;
      continue;
    }
    const fresh = generatePassword();
    await data.users.setPassword(u.name, fresh, actor);
    await data.sessions.endAll(u.name, 'revoked', actor, now);
    passwords[u.name] = fresh;
  }
  await writeSecretFile(file, passwords);
  return { passwords, reused };
}

async function readSavedTokens(file: string): Promise<SavedTokens> {
  const out: SavedTokens = {};
  for (const [name, t] of Object.entries(await readJsonObject(file))) {
    const x = t as { id?: unknown; token?: unknown } | null;
    if (typeof x?.id === 'string' && typeof x.token === 'string') out[name] = { id: x.id, token: x.token };
  }
  return out;
}

/**
 * One current API token per demo user: the saved one while it has a day left, else a new one;
 * every other demo-session token of that user is revoked, so restarts do not pile them up.
 */
async function demoTokens(users: UserStore, file: string, now: number): Promise<{ tokens: Record<string, { token: string; expiresAt: number }>; reused: number; revoked: number }> {
  const saved = await readSavedTokens(file);
  const actor = { kind: 'cli', id: 'demo' } as const;
  const tokens: Record<string, { token: string; expiresAt: number }> = {};
  const keep: SavedTokens = {};
  let reused = 0;
  let revoked = 0;
  for (const u of DEMO_USERS) {
    const current = (await users.tokens(u.name)).filter((t) => t.revokedAt === null && t.expiresAt > now);
    const s = saved[u.name];
    const still = s ? current.find((t) => t.id === s.id && t.expiresAt - now >= TOKEN_MIN_LEFT_MS) : undefined;
    const authenticated = s && still ? (await users.authenticateToken(s.token, now))?.name === u.name : false;
    let chosen: { id: string; token: string; expiresAt: number };
    if (s && still && authenticated) {
      chosen = { id: s.id, token: s.token, expiresAt: still.expiresAt };
      reused++;
    } else {
      chosen = await users.issueToken(u.name, TOKEN_TTL_MS, DEMO_TOKEN_DESCRIPTION, actor, now);
    }
    for (const t of current) {
      if (t.id === chosen.id || t.description !== DEMO_TOKEN_DESCRIPTION) continue;
      await users.revokeToken(t.id, actor, now);
      revoked++;
    }
    tokens[u.name] = { token: chosen.token, expiresAt: chosen.expiresAt };
    keep[u.name] = { id: chosen.id, token: chosen.token };
  }
  await writeSecretFile(file, keep);
  return { tokens, reused, revoked };
}

export async function runDemo(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = resolve(str(p.values, 'dir') as string);
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  // The coordinator's modules and pino load here, not with this module: `handrail --help` loads every command's module.
  const [{ createLogger }, { initCa }, { openDataDir }, { startServer }, { listExecutions }] = await Promise.all([
    import('../logger.js'),
    import('../../coordinator/pki/ca.js'),
    import('../../coordinator/data-dir.js'),
    import('../../server/server.js'),
    import('../../coordinator/store/execution-queries.js'),
  ]);
  const log = createLogger(str(p.values, 'log-level') as string, 'demo', { format: str(p.values, 'log-format') as LogFormat });
  const freshCa = !(await exists(join(certsDir, 'ca.pem')));
  const fresh = !(await exists(join(dataDir, 'handrail.db')));
  // The demo keeps a CA key, signing keys and agent keys in DIR: git must ignore it (./demo is).
  if (freshCa || fresh) await refuseKeysInWorkTree([join(certsDir, 'ca.key'), join(dataDir, 'keys', 'dispatch', 'new.key'), join(dir, 'agents', 'agent.pem')], bool(p.values, 'allow-keys-in-git'));
  if (freshCa) await initCa({ certsDir });

  // Every start, not only the first: a demo dir made by an older release gains the users it lacks.
  const data = await openDataDir(dataDir, io.now);
  try {
    for (const u of DEMO_USERS) if ((await data.users.get(u.name)) === undefined) await data.users.add(u.name, u.groups, { kind: 'cli', id: 'demo' }, io.now());
  } finally {
    await data.close();
  }
  const httpListen = parseListen(str(p.values, 'http-listen') as string, '--http-listen');
  const grpcListen = parseListen(str(p.values, 'grpc-listen') as string, '--grpc-listen');
  const server = await startServer(
    {
      dataDir,
      certsDir,
      runbooksDir: resolve(str(p.values, 'runbooks-dir') as string),
      grpcListen,
      httpListen,
      agentCertTtlMs: 24 * 3_600_000,
      heartbeatIntervalMs: 5_000,
      requestTtlMs: 10 * 60_000,
      maxOutputBytes: 4 * 1024 * 1024,
      maxMessageBytes: 1024 * 1024,
      enrollAttemptsPerMinute: 30,
      checkpointIntervalMs: 10 * 60_000,
      offlineWaitMs: 15_000,
      lostAfterMs: 60_000,
    },
    log,
    io.now,
  );
  const { tokens, reused, revoked } = await demoTokens(server.coordinator.data.users, join(dir, TOKENS_FILE), io.now());
  const { passwords, reused: passwordsReused } = await demoPasswords(server.coordinator.data, join(dir, PASSWORDS_FILE), io.now());
  // What the coordinator picked up again: executions that were running or waiting for approval.
  const resumed = (
    await Promise.all(['running', 'awaiting_approval', 'queued'].map((state) => listExecutions(server.coordinator.data.db, { state, limit: 20 }, { all: true })))
  ).flatMap((r) => r.executions);
  const children: ChildProcess[] = [];
  const cliPath = resolve(process.argv[1] ?? 'bin/handrail.js');
  let enrolledBefore = 0;
  for (const a of DEMO_AGENTS) {
    const stateDir = join(dir, 'agents', a.name);
    const args = [
      cliPath, 'agent', '--coordinator', `127.0.0.1:${server.grpcPort}`, '--state-dir', stateDir, '--name', a.name, '--labels', a.labels, '--allow-adhoc', '--log-level', 'warn',
      '--stop-grace', DEMO_STOP_GRACE, '--stop-on-stdin-close', '--allow-keys-in-git',
    ];
    if (await exists(join(stateDir, 'identity', 'agent.pem'))) enrolledBefore++;
    else {
      const t = await server.coordinator.data.tokens.create({ labels: { env: 'demo' }, ttlMs: 600_000, uses: 1, namePattern: a.name, description: `demo agent ${a.name}`, createdBy: 'demo' }, io.now());
      args.push('--token', t.token, '--ca', join(certsDir, 'ca.pem'));
    }
    // Their own process group: the terminal's Ctrl-C reaches the demo alone, which stops the
    // coordinator first and then the agents; if the demo dies, their stdin closes and they stop.
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...args], {
      stdio: ['pipe', 'ignore', 'inherit'],
      detached: true,
      env: { ...io.env, HANDRAIL_DEMO_ROOT: join(dir, 'hosts', a.name) },
    });
    children.push(child);
  }
  const deadline = io.now() + 30_000;
  while (server.coordinator.gateway.onlineCount() < DEMO_AGENTS.length && io.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const url = `http://${httpListen.host}:${server.httpPort}`;
  const expires = new Date(Math.min(...Object.values(tokens).map((t) => t.expiresAt))).toISOString().slice(0, 10);
  const state = fresh
    ? ['  new demo: CA, store, users and agents created']
    : [
        `  resumed:         store and CA from an earlier run; ${enrolledBefore} of ${DEMO_AGENTS.length} agents were enrolled already`,
        resumed.length === 0
          ? '                   no execution was in progress'
          : `                   ${resumed.length} execution(s) in progress picked up again: ${resumed.map((e) => `${e.id} ${e.runbookId ?? e.kind} (${e.state})`).join(', ')}`,
        `                   API tokens: ${reused} of ${DEMO_USERS.length} reused${revoked ? `, ${revoked} older demo token(s) revoked` : ''}; portal passwords: ${passwordsReused} of ${DEMO_USERS.length} reused`,
      ];
  io.out(
    [
      '',
      `Handrail demo is running (state in ${dir}).`,
      ...state,
      '',
      `  Portal           ${url}/   <- open this in a browser and log in as a user below`,
      `  REST API         ${url}/api/v1`,
      `  agent port       ${grpcListen.host}:${server.grpcPort}   (${server.coordinator.gateway.onlineCount()} of ${DEMO_AGENTS.length} demo agents online)`,
      '',
      `  user    role                   portal password            API token (valid until ${expires})`,
      ...DEMO_USERS.map((u) => `  ${u.name.padEnd(7)} ${u.role.padEnd(22)} ${(passwords[u.name] ?? '').padEnd(26)} ${tokens[u.name]?.token ?? ''}`),
      `  (kept for the next start in ${join(dir, PASSWORDS_FILE)} and ${join(dir, TOKENS_FILE)}, mode 0600)`,
      '',
      `Try the portal (${url}/): log in as alice, run "Collect a diagnostics bundle" and watch its`,
      '  output arrive live; request "Restart the web service safely", then log in as bob (another',
      '  browser or a private window) to approve it under Approvals. History shows what you may see:',
      '  log in as carol (security) to see every run; she may start none. The last command below verifies',
      '  the audit log.',
      '',
      'Or the CLI, in another terminal (handrail = node bin/handrail.js):',
      `  export HANDRAIL_SERVER=${url}`,
      `  HANDRAIL_TOKEN=${tokens['alice']?.token ?? ''} handrail runbooks ls`,
      `  HANDRAIL_TOKEN=${tokens['alice']?.token ?? ''} handrail run diagnostics-bundle --follow`,
      `  HANDRAIL_TOKEN=${tokens['alice']?.token ?? ''} handrail run restart-web --opt reason="deploy 42"   # waits for a web lead`,
      `  HANDRAIL_TOKEN=${tokens['bob']?.token ?? ''} handrail approvals`,
      `  HANDRAIL_TOKEN=${tokens['bob']?.token ?? ''} handrail executions approve <EXECUTION_ID>`,
      `  HANDRAIL_TOKEN=${tokens['alice']?.token ?? ''} handrail executions ls`,
      `  handrail agents ls --data-dir ${dataDir}`,
      `  handrail policy explain --user alice --runbook rollback-release --data-dir ${dataDir}`,
      `  handrail audit verify --data-dir ${dataDir} --certs-dir ${certsDir}`,
      '',
      'Ctrl-C stops it: the coordinator first (executions stay as they are), then the agents;',
      `running steps get ${DEMO_STOP_GRACE} to finish. Running the demo again resumes.`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((r) => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => r());
  });
  io.err(`\nstopping the coordinator (executions in progress resume at the next start), then the agents (running steps get up to ${DEMO_STOP_GRACE}; Ctrl-C again to interrupt them)\n`);
  // Again: the agents interrupt running steps at once (they run again after the next start).
  const again = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  process.on('SIGINT', again);
  process.on('SIGTERM', again);
  await server.stop();
  const exited = children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))));
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(exited);
  process.off('SIGINT', again);
  process.off('SIGTERM', again);
  return 0;
}
