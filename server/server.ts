/**
 * The composition root of the coordinator process: starts the coordinator (agent gateway,
 * engine, store) and serves the web layer (Hono: REST API, metrics) over it on one HTTP port.
 * Neither coordinator/ nor web/ knows the other's wiring; this is where they meet.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { listenError, startCoordinator, type CoordinatorConfig, type ListenAddress, type RunningCoordinator } from '../coordinator/coordinator.js';
import type { Duplex } from 'node:stream';
import { createApp } from '../web/app.js';
import { clientErrorResponse } from '../web/client-error.js';
import { ExecutionFeed } from '../coordinator/engine/execution-feed.js';

export interface ServerConfig extends CoordinatorConfig {
  readonly httpListen: ListenAddress;
}

export interface RunningServer {
  readonly coordinator: RunningCoordinator;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Stops taking HTTP requests, then stops the coordinator. */
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig, log: Logger, now: () => number = Date.now): Promise<RunningServer> {
  const coordinator = await startCoordinator(config, log, now);
  const { data, engine, gateway, dispatcher, executionEvents, catalog, access, counters } = coordinator;
  const feed = new ExecutionFeed(data.db, {
    onOutput: (fn) => {
      dispatcher.events.on('output', fn);
      return () => dispatcher.events.off('output', fn);
    },
    onChanged: (fn) => executionEvents.onChanged(fn),
  });
  const app = createApp({
    db: data.db,
    registry: data.registry,
    users: data.users,
    adhoc: coordinator.adhoc,
    executions: {
      start: (req) => engine.request({ runbookId: req.runbookId, options: req.options, targets: req.targets, user: req.user, requestId: req.requestId, ...(req.reason ? { reason: req.reason } : {}) }),
      decide: (id, user, decision, comment) => engine.decide(id, user, decision, comment),
      cancel: (id, user) => coordinator.cancelExecution(id, user),
      waitFinished: (id, ms) => executionEvents.waitFinished(id, ms),
    },
    catalog,
    reloadCatalog: (user) => coordinator.reloadCatalog({ kind: 'user', id: user.name }),
    feed: { follow: (id, after, signal) => feed.follow(id, after, signal) },
    access: coordinator.executionAccess,
    counters,
    authz: access,
    isOnline: (id) => gateway.isOnline(id),
    gauges: () => ({ agents_online: gateway.onlineCount(), rss_bytes: process.memoryUsage().rss }),
    now,
    onAuthFailure: (remote, reason) => coordinator.recordAuthFailure(remote, reason),
    onRefused: (r) => coordinator.refusals.record(r),
    log,
    limits: { maxOutputBytes: config.maxOutputBytes },
  });
  const http = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: config.httpListen.host, port: config.httpListen.port }, (info) => resolve({ server, port: info.port }));
    server.once('error', (e) => reject(listenError(e, config.httpListen, '--http-listen')));
    // What Node's parser refuses (headers over its limit…) gets the API's JSON error body too.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      socket.end(clientErrorResponse(err.code));
    });
  }).catch(async (e: unknown) => {
    await coordinator.stop();
    throw e;
  });
  log.info(
    { event: 'coordinator.started', grpc: `${config.grpcListen.host}:${coordinator.grpcPort}`, http: `${config.httpListen.host}:${http.port}`, dataDir: config.dataDir },
    'coordinator started',
  );
  return {
    coordinator,
    grpcPort: coordinator.grpcPort,
    httpPort: http.port,
    async stop() {
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await coordinator.stop();
    },
  };
}
