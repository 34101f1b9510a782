/**
 * The composition root of the coordinator process: starts the coordinator (agent gateway,
 * engine, store) and serves the web layer (Hono: REST API, metrics, webhooks) over it on one HTTP port.
 * Neither coordinator/ nor web/ knows the other's wiring; this is where they meet.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { listenError, startCoordinator, type CoordinatorConfig, type ListenAddress, type RunningCoordinator } from '../coordinator/coordinator.js';
import type { Duplex } from 'node:stream';
import type { Server } from 'node:http';
import { createApp } from '../web/app.js';
import { clientErrorResponse } from '../web/client-error.js';
import { DEFAULT_FEED_OPTIONS, ExecutionFeed } from '../coordinator/engine/execution-feed.js';
import { PasswordLogin } from '../coordinator/auth/password-login.js';
import { createServer as createHttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeInstallKit, type InstallKit } from '../coordinator/install/install-kit.js';
import { CA_FILES } from '../coordinator/pki/ca.js';
import { HANDRAIL_VERSION } from '../core/version.js';
import { failedPrecondition } from '../core/errors.js';

export interface ServerConfig extends CoordinatorConfig {
  readonly httpListen: ListenAddress;
  /** The portal's logins; every field has a default. */
  readonly portal?: PortalConfig;
  /** Serve the web port over HTTPS with the coordinator's server certificate (certs dir). */
  readonly httpTls?: boolean;
  /** HOST:PORT fleet hosts dial for the agent port, for install lines. */
  readonly agentAddress?: string;
  /** Where the agent bundle and install script are (default: dist/agent-bundle beside this build). */
  readonly agentBundleDir?: string;
  /** On shutdown, how long requests in progress (live followers included) may take before they are cut; default 5 s. */
  readonly shutdownGraceMs?: number;
}

export interface PortalConfig {
  /**
   * Believe X-Forwarded-Proto, -Host and -For (TLS, origin and client address) from a reverse
   * proxy in front. Only behind a proxy that sets them and drops what clients send.
   * @default false
   */
  readonly trustProxy?: boolean;
  /** @default 30 minutes */
  readonly sessionIdleMs?: number;
  /** @default 12 hours */
  readonly sessionMaxMs?: number;
}

export const PORTAL_DEFAULTS = { trustProxy: false, sessionIdleMs: 30 * 60_000, sessionMaxMs: 12 * 3_600_000 } as const;

/** Without --public-url: the HTTP listen address, as a browser on this host would reach it. */
export function defaultPublicUrl(at: ListenAddress, tls = false): string {
  const host = at.host === '0.0.0.0' || at.host === '::' || at.host === '' ? '127.0.0.1' : at.host.includes(':') ? `[${at.host}]` : at.host;
  return `http${tls ? 's' : ''}://${host}:${at.port}`;
}

const DEFAULT_BUNDLE_DIR = fileURLToPath(new URL('../agent-bundle/', import.meta.url));

/** The install downloads, or why there are none (the coordinator runs without them). */
async function loadInstallKit(config: ServerConfig): Promise<{ kit: InstallKit | undefined; unavailable: string }> {
  const dir = config.agentBundleDir ?? DEFAULT_BUNDLE_DIR;
  try {
    const [bundle, scriptTemplate, caPem] = await Promise.all([readFile(join(dir, 'handrail-agent.mjs')), readFile(join(dir, 'install-agent.sh'), 'utf8'), readFile(join(config.certsDir, CA_FILES.caCert), 'utf8')]);
    return { kit: makeInstallKit({ version: HANDRAIL_VERSION, bundle, scriptTemplate, caPem }), unavailable: '' };
  } catch (e) {
    return { kit: undefined, unavailable: `this coordinator has no agent bundle to serve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message} in ${dir}): build it with \`npm run build\`` };
  }
}

export interface RunningServer {
  readonly coordinator: RunningCoordinator;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Stops taking HTTP requests, then stops the coordinator. */
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig, log: Logger, now: () => number = Date.now): Promise<RunningServer> {
  const coordinator = await startCoordinator({ ...config, publicUrl: config.publicUrl ?? defaultPublicUrl(config.httpListen, config.httpTls === true) }, log, now);
  const { data, reader, engine, gateway, dispatcher, executionEvents, catalog, access, counters } = coordinator;
  // The live feeds, the API and the portal read through the coordinator's read-only connection:
  // they show what has committed, without waiting behind the writer's transactions (a fan-out's
  // results) and without seeing a transaction's rows before it commits.
  const feed = new ExecutionFeed(
    data.db,
    {
      onOutput: (fn) => {
        dispatcher.events.on('output', fn);
        return () => dispatcher.events.off('output', fn);
      },
      onChanged: (fn) => executionEvents.onChanged(fn),
    },
    DEFAULT_FEED_OPTIONS,
    Date.now,
    reader,
  );
  const portal = { ...PORTAL_DEFAULTS, ...config.portal };
  const logins = new PasswordLogin({
    db: data.db,
    audit: data.audit,
    users: data.users,
    sessions: data.sessions,
    limits: { idleMs: portal.sessionIdleMs, absoluteMs: portal.sessionMaxMs },
    log,
    counters,
  });
  const install = await loadInstallKit(config);
  if (!install.kit) log.warn({ event: 'install.unavailable', reason: install.unavailable }, install.unavailable);
  const app = createApp({
    reader,
    registry: data.registry,
    users: data.users,
    adhoc: coordinator.adhoc,
    executions: {
      start: (req) => engine.request({ runbookId: req.runbookId, options: req.options, targets: req.targets, user: req.user, requestId: req.requestId, ...(req.reason ? { reason: req.reason } : {}) }),
      decide: (id, user, decision, comment) => engine.decide(id, user, decision, comment),
      cancel: (id, user) => coordinator.cancelExecution(id, user),
      watchFinished: (id, ms) => executionEvents.watchFinished(id, ms),
    },
    catalog,
    reloadCatalog: (user) => coordinator.reloadCatalog({ kind: 'user', id: user.name }),
    feed: { follow: (id, after, signal) => feed.follow(id, after, signal) },
    access: coordinator.executionAccess,
    auditTrail: coordinator.auditTrail,
    counters,
    notifications: coordinator.notifications,
    authz: access,
    webhooks: {
      define: (input, user) => coordinator.webhookAdmin.define(input, { kind: 'user', id: user.name }),
      list: () => coordinator.webhookAdmin.list(),
      remove: (id, user) => coordinator.webhookAdmin.remove(id, { kind: 'user', id: user.name }),
      rotate: (id, user, keepPrevious) => coordinator.webhookAdmin.rotate(id, { kind: 'user', id: user.name }, keepPrevious),
    },
    hookReceiver: coordinator.webhooks,
    isOnline: (id) => gateway.isOnline(id),
    now,
    onAuthFailure: (remote, reason) => coordinator.recordAuthFailure(remote, reason),
    onRefused: (r) => coordinator.refusals.record(r),
    log,
    limits: { maxOutputBytes: config.maxOutputBytes },
    sessions: data.sessions,
    logins,
    trust: { trustProxy: portal.trustProxy },
    install: {
      ...install,
      grpcPort: coordinator.grpcPort,
      ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
      ...(config.agentAddress ? { agentAddress: config.agentAddress } : {}),
      createToken: (input, t) => data.tokens.create(input, t),
      now,
    },
    readiness: () => coordinator.readiness(),
  });
  let tls = {};
  if (config.httpTls) {
    try {
      tls = { createServer: createHttpsServer, serverOptions: { cert: await readFile(join(config.certsDir, CA_FILES.serverCert)), key: await readFile(join(config.certsDir, CA_FILES.serverKey)) } };
    } catch (e) {
      await coordinator.stop();
      throw failedPrecondition(`--http-tls: cannot read the server certificate in ${config.certsDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'run `handrail ca init` first (or point --certs-dir at the CA)');
    }
  }
  const http = await new Promise<{ server: ServerType; port: number }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: config.httpListen.host, port: config.httpListen.port, ...tls }, (info) => resolve({ server, port: info.port }));
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
    { event: 'coordinator.started', grpc: `${config.grpcListen.host}:${coordinator.grpcPort}`, http: `${config.httpListen.host}:${http.port}`, https: config.httpTls === true, dataDir: config.dataDir },
    'coordinator started',
  );
  return {
    coordinator,
    grpcPort: coordinator.grpcPort,
    httpPort: http.port,
    async stop() {
      coordinator.beginDrain();
      // Stop accepting; idle keep-alive connections go now, requests in progress may finish
      // within the grace (a live follower's stream would otherwise hold shutdown forever).
      const server = http.server as Server;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs ?? 5_000);
      await closed;
      clearTimeout(grace);
      await coordinator.stop();
    },
  };
}
