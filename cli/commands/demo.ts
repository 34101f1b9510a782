/**
 * `handrail demo`: a working local installation in one command — CA, coordinator with its
 * embedded store, three local agents as real processes, demo users with API tokens, and the
 * example runbooks. State lives in --dir (default ./demo); run it again to resume.
 */
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { initCa } from '../../coordinator/pki/ca.js';
import { startServer } from '../../server/server.js';
import { openDataDir } from '../../coordinator/data-dir.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';
import { parseListen } from '../listen-address.js';
import { str, type CommandSpec, type ParsedCommand } from '../options.js';
import { LOG_LEVEL } from '../settings.js';

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
  },
};

const DEMO_AGENTS = [
  { name: 'web-1', labels: 'role=web,env=demo,zone=a' },
  { name: 'web-2', labels: 'role=web,env=demo,zone=b' },
  { name: 'db-1', labels: 'role=db,env=demo,zone=a' },
];

export const DEMO_USERS = [
  { name: 'admin', groups: ['admins', 'ops-admins'], password: 'admin-demo-pass', role: 'ops admin' },
  { name: 'alice', groups: ['support'], password: 'alice-demo-pass', role: 'support (L1)' },
  { name: 'bob', groups: ['web-leads'], password: 'bob-demo-pass', role: 'approver (web leads)' },
];

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

export async function runDemo(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = resolve(str(p.values, 'dir') as string);
  const certsDir = join(dir, 'certs');
  const dataDir = join(dir, 'data');
  const log = createLogger(str(p.values, 'log-level') as string, 'demo');
  if (!(await exists(join(certsDir, 'ca.pem')))) await initCa({ certsDir });

  const fresh = !(await exists(join(dataDir, 'handrail.db')));
  const tokens: Record<string, string> = {};
  if (fresh) {
    const data = await openDataDir(dataDir, io.now);
    try {
      for (const u of DEMO_USERS) {
        await data.users.add(u.name, u.groups, { kind: 'cli', id: 'demo' }, io.now());
        await data.users.setPassword(u.name, u.password, { kind: 'cli', id: 'demo' });
      }
    } finally {
      await data.close();
    }
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
  for (const u of DEMO_USERS) {
    const t = await server.coordinator.data.users.issueToken(u.name, 7 * 86_400_000, 'demo session', { kind: 'cli', id: 'demo' }, io.now());
    tokens[u.name] = t.token;
  }
  const children: ChildProcess[] = [];
  const cliPath = resolve(process.argv[1] ?? 'dist/cli/main.js');
  for (const a of DEMO_AGENTS) {
    const stateDir = join(dir, 'agents', a.name);
    const args = [cliPath, 'agent', '--coordinator', `127.0.0.1:${server.grpcPort}`, '--state-dir', stateDir, '--name', a.name, '--labels', a.labels, '--allow-adhoc', '--log-level', 'warn'];
    if (!(await exists(join(stateDir, 'identity', 'agent.pem')))) {
      const t = await server.coordinator.data.tokens.create({ labels: { env: 'demo' }, ttlMs: 600_000, uses: 1, namePattern: a.name, description: `demo agent ${a.name}`, createdBy: 'demo' }, io.now());
      args.push('--token', t.token, '--ca', join(certsDir, 'ca.pem'));
    }
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...io.env, HANDRAIL_DEMO_ROOT: join(dir, 'hosts', a.name) } });
    children.push(child);
  }
  const deadline = io.now() + 30_000;
  while (server.coordinator.gateway.onlineCount() < DEMO_AGENTS.length && io.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const url = `http://${httpListen.host}:${server.httpPort}`;
  io.out(
    [
      '',
      `Handrail demo is running (state in ${dir}).`,
      '',
      `  REST API         ${url}/api/v1`,
      `  agent port       ${grpcListen.host}:${server.grpcPort}   (${server.coordinator.gateway.onlineCount()} of ${DEMO_AGENTS.length} demo agents online)`,
      '',
      '  users (password)                      API token',
      ...DEMO_USERS.map((u) => `  ${`${u.name} (${u.password})`.padEnd(26)} ${u.role.padEnd(22)} ${tokens[u.name]}`),
      '',
      'Try, in another terminal (handrail = node dist/cli/main.js):',
      `  export HANDRAIL_SERVER=${url}`,
      `  HANDRAIL_TOKEN=${tokens['alice']} handrail run diagnostics-bundle --follow`,
      `  HANDRAIL_TOKEN=${tokens['alice']} handrail run restart-web --opt reason="deploy 42"   # waits for a web lead`,
      `  HANDRAIL_TOKEN=${tokens['bob']} handrail approvals`,
      `  HANDRAIL_TOKEN=${tokens['bob']} handrail executions approve <EXECUTION_ID>`,
      `  HANDRAIL_TOKEN=${tokens['alice']} handrail executions ls`,
      `  handrail agents ls --data-dir ${dataDir}`,
      `  handrail policy explain --user alice --runbook rollback-release --data-dir ${dataDir}`,
      `  handrail audit verify --data-dir ${dataDir} --certs-dir ${certsDir}`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((r) => {
    process.once('SIGINT', () => r());
    process.once('SIGTERM', () => r());
  });
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  await server.stop();
  return 0;
}
