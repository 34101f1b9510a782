/**
 * The coordinator process: data dir, CA, agent gateway, step dispatch, engine and the HTTP
 * layer, wired together. Configuration arrives typed and validated from cli/.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { openDataDir, type DataDir } from './data-dir.js';
import { loadCa } from './pki/ca.js';
import { Gateway } from './gateway/gateway.js';
import { Enroller } from './registry/enrollment.js';
import { StepDispatcher } from './engine/step-dispatcher.js';
import { AdhocRunner } from './engine/adhoc.js';
import { ExecutionEvents } from './engine/execution-events.js';
import { Counters } from './metrics/counters.js';
import { HandrailError } from '../core/errors.js';
import { createApp } from '../web/app.js';
import type { Authorizer } from '../web/auth/authorizer.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface CoordinatorConfig {
  readonly dataDir: string;
  readonly certsDir: string;
  readonly runbooksDir: string;
  readonly grpcListen: ListenAddress;
  readonly httpListen: ListenAddress;
  readonly agentCertTtlMs: number;
  readonly heartbeatIntervalMs: number;
  readonly requestTtlMs: number;
  readonly maxOutputBytes: number;
  readonly maxMessageBytes: number;
  /** Enrollment attempts per remote address per minute; 0 = unlimited. */
  readonly enrollAttemptsPerMinute: number;
  /** How often a signed audit checkpoint is written (0: only at shutdown). */
  readonly checkpointIntervalMs: number;
}

export interface RunningCoordinator {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly data: DataDir;
  readonly gateway: Gateway;
  readonly dispatcher: StepDispatcher;
  readonly adhoc: AdhocRunner;
  readonly counters: Counters;
  stop(): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger, now: () => number = Date.now): Promise<RunningCoordinator> {
  const ca = await loadCa(config.certsDir);
  const data = await openDataDir(config.dataDir, now);
  const counters = new Counters();
  const enroller = new Enroller({
    db: data.db,
    ca,
    tokens: data.tokens,
    registry: data.registry,
    audit: data.audit,
    log,
    counters,
    certTtlMs: config.agentCertTtlMs,
    attemptsPerMinute: config.enrollAttemptsPerMinute,
    now,
  });
  const gateway = new Gateway({
    db: data.db,
    ca,
    keyring: data.keyring,
    registry: data.registry,
    enroller,
    audit: data.audit,
    log,
    counters,
    now,
    config: {
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      certTtlMs: config.agentCertTtlMs,
      maxMessageBytes: config.maxMessageBytes,
      revocationPollMs: 250,
      helloTimeoutMs: 10_000,
    },
  });
  const dispatcher = new StepDispatcher(
    data.db,
    gateway,
    data.keyring,
    data.registry,
    data.audit,
    log,
    counters,
    { requestTtlMs: config.requestTtlMs, maxOutputBytes: config.maxOutputBytes },
    now,
  );
  gateway.setTraffic(dispatcher);
  const executionEvents = new ExecutionEvents();
  const adhoc = new AdhocRunner(data.db, data.audit, data.registry, dispatcher, log, now, executionEvents);
  const authz: Authorizer = {
    adhoc: (user) =>
      user.groups.includes('admins')
        ? { allowed: true, reason: 'member of group admins' }
        : { allowed: false, reason: `user ${user.name} is not in group admins` },
  };
  const grpcPort = await gateway.listen(config.grpcListen.host, config.grpcListen.port);
  const app = createApp({
    db: data.db,
    registry: data.registry,
    users: data.users,
    adhoc,
    executions: {
      start: () => Promise.reject(new HandrailError('unavailable', 'runbook executions are not wired yet')),
      decide: () => Promise.reject(new HandrailError('unavailable', 'runbook executions are not wired yet')),
      cancel: (id, user) => adhoc.cancel(id, user.name),
      waitFinished: (id, ms) => executionEvents.waitFinished(id, ms),
    },
    executionEvents,
    output: {
      onOutput: (fn) => {
        dispatcher.events.on('output', fn);
        return () => dispatcher.events.off('output', fn);
      },
    },
    counters,
    authz,
    isOnline: (id) => gateway.isOnline(id),
    gauges: () => ({ agents_online: gateway.onlineCount(), rss_bytes: process.memoryUsage().rss }),
    now,
  });
  const http = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: config.httpListen.host, port: config.httpListen.port }, (info) => resolve({ server, port: info.port }));
    server.once('error', reject);
  });
  const writeCheckpoint = async (): Promise<void> => {
    try {
      const line = await data.audit.checkpoint();
      log.info({ event: 'audit.checkpoint', checkpoint: JSON.parse(line) as unknown }, 'audit checkpoint written');
    } catch (e) {
      log.error({ event: 'audit.checkpoint_failed', err: e }, 'writing an audit checkpoint failed');
    }
  };
  const checkpointTimer = config.checkpointIntervalMs > 0 ? setInterval(() => void writeCheckpoint(), config.checkpointIntervalMs) : undefined;
  log.info({ event: 'coordinator.started', grpc: `${config.grpcListen.host}:${grpcPort}`, http: `${config.httpListen.host}:${http.port}`, dataDir: config.dataDir }, 'coordinator started');
  return {
    grpcPort,
    httpPort: http.port,
    data,
    gateway,
    dispatcher,
    adhoc,
    counters,
    async stop() {
      if (checkpointTimer) clearInterval(checkpointTimer);
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await gateway.close();
      await writeCheckpoint();
      await data.close();
    },
  };
}
