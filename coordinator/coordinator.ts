/**
 * The coordinator: data dir, CA, agent gateway, step dispatch, engine and runbook catalog,
 * wired together and listening for agents. It knows nothing of HTTP: server/server.ts puts the
 * web layer on top of what this returns. Configuration arrives typed and validated from cli/.
 */
import type { Logger } from 'pino';
import { openDataDir, type DataDir } from './data-dir.js';
import { loadCa } from './pki/ca.js';
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
import { RateLimiter } from '../core/rate-limiter.js';
import { HandrailError } from '../core/errors.js';
import { join } from 'node:path';
import { Counters } from './metrics/counters.js';
import type { User } from './auth/user-store.js';

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
}

export type CatalogActor = { kind: 'user' | 'system'; id: string };

export interface RunningCoordinator {
  readonly grpcPort: number;
  readonly data: DataDir;
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
  /** Reloads runbooks and policies from the runbooks dir, audited as the actor's doing. */
  reloadCatalog(actor: CatalogActor): Promise<ReloadReport>;
  /** Cancels a runbook or an ad-hoc execution; false if it was not running. */
  cancelExecution(executionId: string, user: User): Promise<boolean>;
  /** Counts and logs a failed login; audits at most one per remote address per minute. */
  recordAuthFailure(remote: string, reason: string): void;
  /** Audits requests refused for authorization reasons (rate-limited per user, action and rule). */
  readonly refusals: RefusalLog;
  /** Stops watching, closes the agent port, writes a last checkpoint and closes the store. */
  stop(): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger, now: () => number = Date.now): Promise<RunningCoordinator> {
  const ca = await loadCa(config.certsDir);
  const data = await openDataDir(config.dataDir, now, log);
  const counters = new Counters();
  const outputSeq = await OutputSequence.open(data.db);
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
    { requestTtlMs: config.requestTtlMs, maxOutputBytes: config.maxOutputBytes, maxEnvelopeBytes: config.maxMessageBytes - 1024, lostAfterMs: config.lostAfterMs },
    now,
    outputSeq,
  );
  gateway.setTraffic(dispatcher);
  const executionEvents = new ExecutionEvents();
  const adhoc = new AdhocRunner(data.db, data.audit, data.registry, dispatcher, log, now, executionEvents);
  const catalog = new Catalog(config.runbooksDir);
  const access = new AccessControl(() => catalog.policyList());
  const targetable = (l: LoadedRunbook): TargetableRunbook => ({ ref: { id: l.runbook.metadata.id, tags: l.runbook.metadata.tags, owner: l.runbook.metadata.owner }, selector: l.runbook.spec.selector });
  const visibility = executionAccess(data.db, () => catalog.policyList(), {
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
  const stopWatching = watchDirectory(config.runbooksDir, () => {
    reloadCatalog({ kind: 'system', id: 'file-watch' }).catch((e: unknown) => log.error({ event: 'runbooks.reload_failed', err: e }, 'reloading runbooks failed'));
  });
  const refusals = new RefusalLog(data.db, data.audit, log, now);
  const engine = new ExecutionEngine({
    db: data.db,
    audit: data.audit,
    registry: data.registry,
    gateway,
    dispatcher,
    events: executionEvents,
    secrets: await SecretBox.open(join(config.dataDir, 'keys', 'secrets.key')),
    runbooks: catalogSource(catalog),
    policy: access,
    log,
    now,
    offlineWaitMs: config.offlineWaitMs,
    outputSeq,
    refusals,
  });
  // Before agents can reconnect: their spooled results must find their executions loaded.
  await engine.resume();
  await dispatcher.resume();
  const grpcPort = await gateway.listen(config.grpcListen.host, config.grpcListen.port).catch((e: unknown) => {
    throw listenError(e, config.grpcListen, '--grpc-listen');
  });
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
    gateway,
    dispatcher,
    adhoc,
    counters,
    engine,
    executionEvents,
    catalog,
    access,
    executionAccess: visibility,
    reloadCatalog,
    cancelExecution: async (id, user) => (await engine.cancel(id, user)) || (await adhoc.cancel(id, user.name)),
    recordAuthFailure,
    refusals,
    async stop() {
      stopWatching();
      if (checkpointTimer) clearInterval(checkpointTimer);
      await gateway.close();
      await refusals.settled();
      await writeCheckpoint().catch(checkpointFailed);
      await data.close();
    },
  };
}

/** A port that cannot be bound is a configuration problem, said plainly. */
export function listenError(e: unknown, at: ListenAddress, flag: string): HandrailError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'EADDRINUSE' ? 'the address is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (e as Error).message;
  return new HandrailError('unavailable', `cannot listen on ${at.host}:${at.port}: ${why}`, { hint: `choose another address with ${flag}` });
}
