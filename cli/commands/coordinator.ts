/** `handrail coordinator`: run the coordinator (agent gateway, API, engine) until SIGINT/SIGTERM. */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import type { CliIo } from '../io.js';
import type { LogFormat } from '../logger.js';
import { parseListen } from '../listen-address.js';
import { bool, durationSetting, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR, GRPC_LISTEN, HTTP_LISTEN, LOG_FORMAT, LOG_LEVEL, RUNBOOKS_DIR } from '../settings.js';

export const coordinatorCommand: CommandSpec = {
  name: 'coordinator',
  usage: 'coordinator [options]',
  summary: 'Run the coordinator: the mTLS agent gateway, the HTTP API and the execution engine, with the embedded SQLite store.',
  options: {
    'data-dir': DATA_DIR,
    'certs-dir': CERTS_DIR,
    'runbooks-dir': RUNBOOKS_DIR,
    'grpc-listen': GRPC_LISTEN,
    'http-listen': HTTP_LISTEN,
    'agent-cert-ttl': { type: 'string', env: 'HANDRAIL_AGENT_CERT_TTL', configKey: 'agentCertTtl', default: '24h', placeholder: 'DURATION', description: 'lifetime of agent certificates (agents renew at two thirds)' },
    'heartbeat-interval': { type: 'string', env: 'HANDRAIL_HEARTBEAT_INTERVAL', configKey: 'heartbeatInterval', default: '10s', placeholder: 'DURATION', description: 'how often agents send heartbeats' },
    'request-ttl': { type: 'string', env: 'HANDRAIL_REQUEST_TTL', configKey: 'requestTtl', default: '10m', placeholder: 'DURATION', description: 'how long a signed step stays deliverable' },
    'max-output': { type: 'string', env: 'HANDRAIL_MAX_OUTPUT', configKey: 'maxOutputBytes', default: '4194304', placeholder: 'BYTES', description: 'stored output per stream per step, at most' },
    'enroll-rate-limit': { type: 'string', env: 'HANDRAIL_ENROLL_RATE_LIMIT', configKey: 'enrollRateLimit', default: '30', placeholder: 'N', description: 'enrollment attempts per remote address per minute (0: no limit)' },
    'checkpoint-interval': { type: 'string', env: 'HANDRAIL_CHECKPOINT_INTERVAL', configKey: 'checkpointInterval', default: '10m', placeholder: 'DURATION', description: 'how often a signed audit checkpoint is written and logged (event audit.checkpoint)' },
    'lost-after': { type: 'string', env: 'HANDRAIL_LOST_AFTER', configKey: 'lostAfter', default: '60s', placeholder: 'DURATION', description: 'grace after a step\'s timeout (or, untaken, its request\'s expiry) before a silent agent\'s step is given up as lost' },
    'offline-wait': { type: 'string', env: 'HANDRAIL_OFFLINE_WAIT', configKey: 'offlineWait', default: '15s', placeholder: 'DURATION', description: 'how long a step waits for an offline agent before its node fails' },
    'public-url': { type: 'string', env: 'HANDRAIL_PUBLIC_URL', configKey: 'publicUrl', placeholder: 'URL', description: 'the web port as users and fleet hosts reach it: notifications link to URL/executions/ID, install lines fetch the agent from it (https:// needed) (default: --http-listen, https:// with --http-tls)' },
    'notify-timeout': { type: 'string', env: 'HANDRAIL_NOTIFY_TIMEOUT', configKey: 'notifyTimeout', default: '10s', placeholder: 'DURATION', description: 'how long one notification attempt may take before it counts as failed (and is retried)' },
    'http-tls': { type: 'boolean', env: 'HANDRAIL_HTTP_TLS', configKey: 'httpTls', description: 'serve the web port over HTTPS with the server certificate in the certs dir (needed for agent install lines)' },
    'agent-address': { type: 'string', env: 'HANDRAIL_AGENT_ADDRESS', configKey: 'agentAddress', placeholder: 'HOST:PORT', description: 'the agent port as fleet hosts reach it, for install lines (default: the public URL\'s host and the agent port)' },
    'allow-keys-in-git': ALLOW_KEYS_IN_GIT,
    'trust-proxy': { type: 'boolean', env: 'HANDRAIL_TRUST_PROXY', configKey: 'trustProxy', description: 'the portal is behind a reverse proxy that terminates TLS: believe its X-Forwarded-Proto/-Host/-For (secure cookies, origin checks, client addresses)' },
    'session-idle': { type: 'string', env: 'HANDRAIL_SESSION_IDLE', configKey: 'sessionIdle', default: '30m', placeholder: 'DURATION', description: 'a portal login ends after this long without a request' },
    'session-max': { type: 'string', env: 'HANDRAIL_SESSION_MAX', configKey: 'sessionMax', default: '12h', placeholder: 'DURATION', description: 'a portal login ends this long after it started, however busy' },
    'log-level': LOG_LEVEL,
    'log-format': LOG_FORMAT,
  },
};

/** The base of links in notifications: an absolute http(s) URL. */
function checkPublicUrl(text: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || url.search !== '' || url.hash !== '') {
    throw new UsageError(`--public-url "${text}" is not an http(s) base URL`, 'give the portal address as users reach it, e.g. --public-url https://handrail.example.com');
  }
}

export async function runCoordinator(p: ParsedCommand, io: CliIo): Promise<number> {
  // The server (store, engine, API, gateway) and pino load here, not with this module: `handrail
  // --help` loads every command's module.
  const { createLogger } = await import('../logger.js');
  const log = createLogger(str(p.values, 'log-level') as string, 'coordinator', { format: str(p.values, 'log-format') as LogFormat });
  const enrollRate = Number(str(p.values, 'enroll-rate-limit'));
  if (!Number.isInteger(enrollRate) || enrollRate < 0) throw new UsageError('--enroll-rate-limit must be a whole number (0 for no limit)');
  const maxOutput = Number(str(p.values, 'max-output'));
  if (!Number.isInteger(maxOutput) || maxOutput <= 0) throw new UsageError('--max-output must be a positive number of bytes');
  const dataDir = str(p.values, 'data-dir') as string;
  const publicUrl = str(p.values, 'public-url');
  if (publicUrl !== undefined) checkPublicUrl(publicUrl);
  // The first start makes the signing keys (dispatch, audit) under DATA_DIR/keys.
  const keysDir = join(dataDir, 'keys');
  if (!(await access(keysDir).then(() => true, () => false))) await refuseKeysInWorkTree([join(keysDir, 'dispatch', 'new.key')], bool(p.values, 'allow-keys-in-git'));
  const { startServer } = await import('../../server/server.js');
  const server = await startServer(
    {
      dataDir,
      certsDir: str(p.values, 'certs-dir') as string,
      runbooksDir: str(p.values, 'runbooks-dir') as string,
      grpcListen: parseListen(str(p.values, 'grpc-listen') as string, '--grpc-listen'),
      httpListen: parseListen(str(p.values, 'http-listen') as string, '--http-listen'),
      httpTls: bool(p.values, 'http-tls'),
      ...(str(p.values, 'agent-address') ? { agentAddress: str(p.values, 'agent-address') as string } : {}),
      agentCertTtlMs: durationSetting(p, 'agent-cert-ttl', 10_000),
      heartbeatIntervalMs: durationSetting(p, 'heartbeat-interval', 100),
      requestTtlMs: durationSetting(p, 'request-ttl', 1_000),
      maxOutputBytes: maxOutput,
      maxMessageBytes: 1024 * 1024,
      enrollAttemptsPerMinute: enrollRate,
      checkpointIntervalMs: durationSetting(p, 'checkpoint-interval'),
      offlineWaitMs: durationSetting(p, 'offline-wait'),
      lostAfterMs: durationSetting(p, 'lost-after', 1_000),
      portal: { trustProxy: bool(p.values, 'trust-proxy'), sessionIdleMs: durationSetting(p, 'session-idle', 60_000), sessionMaxMs: durationSetting(p, 'session-max', 60_000) },
      ...(publicUrl !== undefined ? { publicUrl } : {}),
      notifications: { timeoutMs: durationSetting(p, 'notify-timeout', 100) },
    },
    log,
    io.now,
  );
  io.err(`handrail coordinator: agents on port ${server.grpcPort}, HTTP on port ${server.httpPort}${bool(p.values, 'http-tls') ? ' (HTTPS)' : ''}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log.info({ event: 'coordinator.stopping' }, 'stopping');
  await server.stop();
  log.info({ event: 'coordinator.stopped' }, 'stopped');
  log.flush();
  return 0;
}
