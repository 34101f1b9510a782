/**
 * The coordinator: data dir, CA, agent gateway, step dispatch, engine and runbook catalog,
 * wired together and listening for agents. It knows nothing of HTTP: server/server.ts puts the
 * web layer on top of what this returns. Configuration arrives typed and validated from cli/.
 */
import type { Logger } from 'pino';
import { openDataDir, type DataDir } from './data-dir.js';
import { Database } from './store/database.js';
import { CaSource } from './pki/ca-source.js';
import { allCaPems } from './pki/ca-rollover.js';
import { Gateway } from './gateway/gateway.js';
import { Enroller } from './registry/enrollment.js';
import { StepDispatcher } from './engine/step-dispatcher.js';
import { AdhocRunner } from './engine/adhoc.js';
import { ExecutionEvents } from './engine/execution-events.js';
import { ExecutionEngine } from './engine/engine.js';
import { OutputSequence } from './engine/output-sequence.js';
import { Catalog, type LoadedRunbook, type ReloadReport } from './runbooks/catalog.js';
import { executionAccess, type ExecutionAccess } from './engine/execution-access.js';
import type { TargetableRunbook } from './policy/visibility.js';
import { catalogSource } from './runbooks/source.js';
import { watchDirectory } from './runbooks/watch.js';
import { AccessControl } from './policy/access-control.js';
import { SecretBox } from './pki/secret-box.js';
import { AuditEvents } from './audit/events.js';
import { RefusalLog } from './audit/refusal-log.js';
import { AuditTrail } from './audit/audit-trail.js';
import { VersionRefusalLog } from './audit/version-refusal-log.js';
import { RateLimiter } from '../core/rate-limiter.js';
import { HandrailError } from '../core/errors.js';
import { join } from 'node:path';
import { Counters } from './metrics/counters.js';
import type { User } from './auth/user-store.js';
import { NotificationStore } from './store/notifications.js';
import { Subscriptions } from './notify/subscriptions.js';
import { DEFAULT_SENDER, fetchPoster, NotificationSender, timerSchedule, type SenderConfig } from './notify/sender.js';
import { Outbox } from './notify/outbox.js';
import { decideReadiness, type CoordinatorPhase, type Readiness } from './health/readiness.js';
import { WebhookStore } from './store/webhooks.js';
import { WebhookAdmin, type HookRunbooks } from './webhooks/webhook-admin.js';
import { WebhookService } from './webhooks/webhook-service.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface CoordinatorConfig {
  readonly dataDir: string;
  readonly certsDir: string;
  readonly runbooksDir: string;
  readonly grpcListen: ListenAddress;
  readonly agentCertTtlMs: number;
  readonly heartbeatIntervalMs: number;
  readonly requestTtlMs: number;
  readonly maxOutputBytes: number;
  readonly maxMessageBytes: number;
  /** Enrollment attempts per remote address per minute; 0 = unlimited. */
  readonly enrollAttemptsPerMinute: number;
  /** How often a signed audit checkpoint is written (0: only at shutdown). */
  readonly checkpointIntervalMs: number;
  /** How long a step waits for an offline agent to come back before its node fails. */
  readonly offlineWaitMs: number;
  /** Grace after a step's timeout (or an untaken request's expiry) before it is given up as lost. */
  readonly lostAfterMs: number;
  /** The portal's base URL as users reach it: notifications link to <publicUrl>/executions/<id>. */
  readonly publicUrl?: string;
  /** Outbound notifications: limits, timeout, retry schedule (defaults: DEFAULT_SENDER). */
  readonly notifications?: Partial<SenderConfig>;
}

/** When no public URL is configured. */
export const DEFAULT_PUBLIC_URL = 'http://127.0.0.1:8080';

export type CatalogActor = { kind: 'user' | 'system'; id: string };

export interface RunningCoordinator {
  readonly grpcPort: number;
  readonly data: DataDir;
  /**
   * A read-only connection to the store, for readers outside the engine (the web layer's reads,
   * the live feeds, who-may-see-what, the audit trail): it sees only what has committed, and
   * does not wait behind the writer's transactions.
   */
  readonly reader: Database;
  readonly gateway: Gateway;
  readonly dispatcher: StepDispatcher;
  readonly adhoc: AdhocRunner;
  readonly engine: ExecutionEngine;
  readonly executionEvents: ExecutionEvents;
  readonly catalog: Catalog;
  readonly access: AccessControl;
  /** Who may see which executions and agents (the API's reads). */
  readonly executionAccess: ExecutionAccess;
  readonly counters: Counters;
  /** Outbound notification subscriptions (admin API). */
  readonly notifications: Subscriptions;
  readonly notificationSender: NotificationSender;
  /** Inbound webhooks: defining them (admin) and receiving deliveries. */
  readonly webhookAdmin: WebhookAdmin;
  readonly webhooks: WebhookService;
  /** Reloads runbooks and policies from the runbooks dir, audited as the actor's doing. */
  reloadCatalog(actor: CatalogActor): Promise<ReloadReport>;
  /** Cancels a runbook or an ad-hoc execution; false if it was not running. */
  cancelExecution(executionId: string, user: User): Promise<boolean>;
  /** Where the coordinator is in its life (see health/readiness.ts). */
  readonly phase: () => CoordinatorPhase;
  /** Store writable, gateway listening, catalog loaded: probed now. */
  readiness(): Promise<Readiness>;
  /** Counts and logs a failed login; audits at most one per remote address per minute. */
  recordAuthFailure(remote: string, reason: string): void;
  /** Audits requests refused for authorization reasons (rate-limited per user, action and rule). */
  readonly refusals: RefusalLog;
  /** The audit trail for readers: filtered pages, exports, verifications of the live log. */
  readonly auditTrail: AuditTrail;
  /** Marks the coordinator as shutting down (/readyz 503, gRPC health NOT_SERVING) before stop(). */
  beginDrain(): void;
  /**
   * Stops watching, refuses new agents, ends the streams once what agents sent has reached the
   * store, lets queued writes commit, writes a last signed checkpoint and closes the store.
   */
  stop(): Promise<void>;
}

/** How often changes an admin made from another process (revocations) are looked for in the store. */
const FOREIGN_WRITES_POLL_MS = 250;

export async function startCoordinator(config: CoordinatorConfig, log: Logger, now: () => number = Date.now): Promise<RunningCoordinator> {
  const ca = await CaSource.open(config.certsDir);
  const data = await openDataDir(config.dataDir, now, log);
  const reader = await Database.open(data.db.path, { readonly: true });
  let phase: CoordinatorPhase = 'starting';
  let catalogLoaded = false;
  const counters = new Counters({ processMetrics: true });
  data.db.observeCommits((r) => {
    counters.inc('store_commits_total', { outcome: r.committed ? 'committed' : 'rolled_back' });
    if (!r.committed) return;
    counters.observe('store_commit_duration_seconds', r.seconds);
    const audited = r.insertedRows.get('audit_records');
    if (audited) counters.inc('audit_records_appended_total', {}, audited);
  });
  const outputSeq = await OutputSequence.open(data.db);
  const versionRefusals = new VersionRefusalLog(data.db, data.audit, log, now);
  const enroller = new Enroller({
    db: data.db,
    ca: () => ca.current,
    versionRefusals,
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
    versionRefusals,
    log,
    counters,
    now,
    config: {
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      certTtlMs: config.agentCertTtlMs,
      maxMessageBytes: config.maxMessageBytes,
      revocationPollMs: FOREIGN_WRITES_POLL_MS,
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
    { requestTtlMs: config.requestTtlMs, maxOutputBytes: config.maxOutputBytes, maxEnvelopeBytes: config.maxMessageBytes - 1024, lostAfterMs: config.lostAfterMs },
    now,
    outputSeq,
  );
  gateway.setTraffic(dispatcher);
  // Group commit in a fan-out: a 2 ms wait before a batch takes its group while at least 64
  // steps are out (never for a single step or a small rolling window). Measured with
  // bench/engine.ts on 2,000 agents (10 rounds each, shared machine, load 4-8): wall median
  // 1.80 s with it, 2.75 s without; commits per fan-out did not fall and CPU per node-step was
  // not lower. On a quiet machine (2026-12-07, 3 rounds each) both builds took 1,462 ms: it
  // helps under load only, for a reason not yet understood (issue 10).
  data.db.groupCommit({ waitMs: 2, worthWaiting: (pending) => pending < 256 && dispatcher.stepsInFlight >= 64 });
  const executionEvents = new ExecutionEvents();
  const secrets = await SecretBox.open(join(config.dataDir, 'keys', 'secrets.key'));
  const notificationStore = new NotificationStore(data.db);
  const notificationSender = new NotificationSender({
    db: data.db,
    store: notificationStore,
    box: secrets,
    audit: data.audit,
    counters,
    log,
    now,
    random: Math.random,
    post: fetchPoster,
    schedule: timerSchedule,
    config: { ...DEFAULT_SENDER, ...config.notifications },
  });
  const outbox = new Outbox(notificationStore, config.publicUrl ?? DEFAULT_PUBLIC_URL, now, () => notificationSender.wake());
  const notifications = new Subscriptions(data.db, notificationStore, secrets, data.audit, log, now, new NotificationStore(reader));
  const adhoc = new AdhocRunner(data.db, data.audit, data.registry, dispatcher, log, now, executionEvents, outbox);
  executionEvents.onFinished((e) =>
    counters.inc('executions_total', e.runbook ? { kind: 'runbook', runbook: e.runbook.id, team: e.runbook.owner, status: e.state } : { kind: 'adhoc', runbook: '', team: '', status: e.state }),
  );
  const catalog = new Catalog(config.runbooksDir);
  const access = new AccessControl(() => catalog.policyList());
  const targetable = (l: LoadedRunbook): TargetableRunbook => ({ ref: { id: l.runbook.metadata.id, tags: l.runbook.metadata.tags, owner: l.runbook.metadata.owner }, selector: l.runbook.spec.selector });
  const visibility = executionAccess(reader, () => catalog.policyList(), {
    get: (id) => {
      const l = catalog.get(id);
      return l ? targetable(l) : undefined;
    },
    list: () => catalog.list().map(targetable),
  });
  const reloadCatalog = async (actor: CatalogActor): Promise<ReloadReport> => {
    const report = await catalog.reload();
    await data.db.batch(async (tx) => {
      await data.audit.append(tx, [
        {
          type: AuditEvents.runbooksReloaded,
          actor,
          data: { added: report.added, updated: report.updated, removed: report.removed, problems: report.problems.length },
        },
        ...(report.policiesChanged || actor.kind === 'user'
          ? [{ type: AuditEvents.policiesReloaded, actor, data: { policies: report.policies, problems: report.problems.length } } as const]
          : []),
      ]);
    });
    for (const p of report.problems) log.warn({ event: 'runbooks.problem', file: p.file, line: p.line, col: p.col }, `${p.file}:${p.line}:${p.col} ${p.message}`);
    log.info(
      { event: 'runbooks.reloaded', runbooks: catalog.list().length, policies: report.policies.length, added: report.added.length, updated: report.updated.length, removed: report.removed.length, kept: report.kept, problems: report.problems.length },
      'runbooks reloaded',
    );
    return report;
  };
  await reloadCatalog({ kind: 'system', id: 'coordinator' });
  catalogLoaded = true;
  const stopWatching = watchDirectory(config.runbooksDir, () => {
    reloadCatalog({ kind: 'system', id: 'file-watch' }).catch((e: unknown) => log.error({ event: 'runbooks.reload_failed', err: e }, 'reloading runbooks failed'));
  });
  const refusals = new RefusalLog(data.db, data.audit, log, now);
  const auditTrail = new AuditTrail({ db: data.db, reader, audit: data.audit, caPem: async () => {
    // Every CA of every roll-over (retired ones kept as ca-retired-*.pem): old records chain to them.
    const all = await allCaPems(config.certsDir);
    return [ca.current.caCertPem, ...all, ...ca.current.trustedCaPems];
  }, now });
  const engine = new ExecutionEngine({
    db: data.db,
    audit: data.audit,
    registry: data.registry,
    gateway,
    dispatcher,
    events: executionEvents,
    secrets,
    runbooks: catalogSource(catalog),
    policy: access,
    log,
    now,
    offlineWaitMs: config.offlineWaitMs,
    outputSeq,
    notifier: outbox,
    refusals,
  });
  const webhookStore = new WebhookStore(data.db, secrets);
  const hookRunbooks: HookRunbooks = (id) => catalog.get(id)?.runbook.spec.options;
  const webhookAdmin = new WebhookAdmin({ store: webhookStore, reads: new WebhookStore(reader, secrets), audit: data.audit, runbooks: hookRunbooks, userExists: async (name) => (await data.users.get(name)) !== undefined, now });
  const webhooks = new WebhookService({ store: webhookStore, audit: data.audit, runbooks: hookRunbooks, user: (name) => data.users.get(name), start: (req) => engine.request(req), counters, log, now });
  // Before agents can reconnect: their spooled results must find their executions loaded.
  await engine.resume();
  await dispatcher.resume();
  counters.gauge('agents_online', () => gateway.onlineCount());
  counters.gauge('queue_length', () => {
    const q = dispatcher.queueDepths();
    const a = gateway.admissionState();
    return { steps_in_flight: q.stepsInFlight, steps_deferred: q.stepsDeferred, store_writes: data.db.pendingWrites, agent_send: gateway.queuedMessages(), agent_connections_admitting: a.admitting, agent_connections_waiting: a.queued };
  });
  const grpcPort = await gateway.listen(config.grpcListen.host, config.grpcListen.port).catch((e: unknown) => {
    throw listenError(e, config.grpcListen, '--grpc-listen');
  });
  // API tokens are remembered; a revocation from another process (the CLI) is noticed within
  // the same poll interval as an agent's.
  const stopTokenCache = await data.users.cacheTokens(FOREIGN_WRITES_POLL_MS);
  // Deliveries left pending by the last run go out now.
  notificationSender.start();
  phase = 'serving';
  const authFailureLimiter = new RateLimiter(1, 1 / 60);
  const recordAuthFailure = (remote: string, reason: string): void => {
    counters.inc('auth_failures_total');
    log.warn({ event: 'login.failed', remote, reason }, 'authentication failed');
    // One audit record per address per minute: failed attempts must not flood the log.
    if (!authFailureLimiter.take(remote, now())) return;
    data.db
      .batch((tx) => data.audit.append(tx, { type: AuditEvents.loginFailed, actor: { kind: 'user', id: 'unknown' }, data: { user: 'unknown', remote, reason } }))
      .catch((e: unknown) => log.error({ event: 'audit.append_failed', err: e }, 'auditing a failed login failed'));
  };
  const writeCheckpoint = async (): Promise<void> => {
    const line = await data.audit.checkpoint();
    log.info({ event: 'audit.checkpoint', checkpoint: JSON.parse(line) as unknown }, 'audit checkpoint written');
  };
  const checkpointFailed = (e: unknown): void => log.error({ event: 'audit.checkpoint_failed', err: e }, 'writing an audit checkpoint failed');
  const checkpointTimer =
    config.checkpointIntervalMs > 0
      ? setInterval(() => {
          writeCheckpoint().catch(checkpointFailed);
        }, config.checkpointIntervalMs)
      : undefined;
  return {
    grpcPort,
    data,
    reader,
    gateway,
    dispatcher,
    adhoc,
    counters,
    notifications,
    notificationSender,
    engine,
    executionEvents,
    catalog,
    access,
    executionAccess: visibility,
    webhookAdmin,
    webhooks,
    reloadCatalog,
    cancelExecution: async (id, user) => (await engine.cancel(id, user)) || (await adhoc.cancel(id, user.name)),
    recordAuthFailure,
    phase: () => phase,
    readiness: async () =>
      decideReadiness({ phase, storeError: await data.db.probeWritable(), catalog: { loaded: catalogLoaded, runbooks: catalog.list().length, policies: catalog.policyList().length } }),
    beginDrain() {
      if (phase === 'serving' || phase === 'starting') phase = 'draining';
      gateway.health.set('not_serving');
    },
    refusals,
    auditTrail,
    async stop() {
      phase = 'draining';
      stopWatching();
      stopTokenCache();
      if (checkpointTimer) clearInterval(checkpointTimer);
      await gateway.close();
      await refusals.settled();
      await versionRefusals.settled();
      await notificationSender.stop();
      await data.db.drain();
      // Last: the checkpoint then covers every record this process wrote.
      await writeCheckpoint().catch(checkpointFailed);
      await reader.close();
      await data.close();
      phase = 'stopped';
    },
  };
}

/** A port that cannot be bound is a configuration problem, said plainly. */
export function listenError(e: unknown, at: ListenAddress, flag: string): HandrailError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the address is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (e as Error).message;
  return new HandrailError('unavailable', `cannot listen on ${at.host}:${at.port}: ${why}`, { hint: `choose another address with ${flag}` });
}
