/**
 * The agent's composition root: enroll on first start (token + CA), then hold the stream,
 * run steps and deliver results. Everything it needs arrives as a typed config from cli/.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { validateLocalPolicy, type LocalPolicy } from '../core/local-policy.js';
import type { Labels } from '../core/labels.js';
import { backoffDelay } from './backoff.js';
import { AgentConnection } from './connection.js';
import { parseCoordinatorAddress } from './coordinator-address.js';
import { enroll, EnrollError } from './enroll.js';
import { collectFacts } from './facts.js';
import { DispatchTrust } from './dispatch-trust.js';
import { decodeDispatchKeySet } from '../proto/codec/dispatch-key-set-codec.js';
import { Spool } from './spool.js';
import { StepJournal } from './step-journal.js';
import { IdentityUpdater, StateDir, type AgentCredentials } from './state-dir.js';
import { CaTrust } from './ca-trust.js';
import { decodeCaBundle } from '../proto/codec/ca-bundle-codec.js';
import { StepExecutor, type DrainSummary } from './step-executor.js';
import { warmUpStepPath } from './warm-up.js';
import { loadYamlParse } from '../core/yaml-parser.js';

/** After the last step stopped: how long a stopping agent waits for the coordinator to acknowledge results. */
const ACK_WAIT_MS = 5_000;

export interface StopSummary extends DrainSummary {
  /** Results the coordinator had not acknowledged at exit: spooled, delivered after the next start. */
  readonly spooled: number;
}

export interface AgentConfig {
  readonly coordinator: string;
  readonly serverName?: string;
  readonly stateDir: string;
  readonly token?: string;
  /** Path to the coordinator CA certificate (needed to enroll). */
  readonly caFile?: string;
  readonly name: string;
  readonly labels: Labels;
  readonly localPolicyFile?: string;
  /** Overrides the policy file's allowAdhoc (for the demo and tests). */
  readonly allowAdhoc?: boolean;
  readonly maxConcurrentSteps: number;
  readonly killGraceMs: number;
  readonly workDir?: string;
  readonly channelOptions?: Record<string, string | number>;
  /** Environment every step starts from (the CLI passes PATH, HOME, LANG …; never secrets). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Let a set signed by the CA alone replace the trusted dispatch keys (recovery after losing them). */
  readonly allowCaKeyRecovery?: boolean;
}

export interface RunningAgent {
  readonly agentId: string;
  readonly connection: AgentConnection;
  readonly executor: StepExecutor;
  /** Resolves with a reason if the agent cannot go on (its certificate expired). */
  readonly fatal: Promise<string>;
  /**
   * Stops: new steps are turned away (the coordinator offers them again later), running steps
   * get up to `graceMs` to finish (0: none), then are stopped and reported as interrupted;
   * results are handed over while the stream is up, then the stream closes.
   */
  stop(options?: { readonly graceMs?: number }): Promise<StopSummary>;
  /** While stop() waits for running steps: stop waiting and interrupt them now. */
  interruptNow(): void;
}

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

export async function startAgent(config: AgentConfig, log: Logger, now: () => number = Date.now): Promise<RunningAgent> {
  const state = new StateDir(config.stateDir);
  let address;
  try {
    address = parseCoordinatorAddress(config.coordinator, config.serverName);
  } catch (e) {
    throw new AgentConfigError(`--coordinator: ${(e as Error).message}`);
  }
  try {
    await state.ensure();
  } catch (e) {
    throw new AgentConfigError(`cannot use ${config.stateDir} as the state directory: ${(e as Error).message}`);
  }
  if (!(await state.isEnrolled())) {
    if (!config.token) throw new AgentConfigError(`this agent is not enrolled yet (no identity in ${config.stateDir}): pass --token with a bootstrap token from \`handrail token create\``);
    if (!config.caFile) throw new AgentConfigError('to enroll, pass --ca with the coordinator CA certificate (ca.pem from `handrail ca init`)');
    const caPem = await readFile(config.caFile, 'utf8').catch(() => {
      throw new AgentConfigError(`cannot read the CA certificate ${config.caFile}`);
    });
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await enroll(state, { address, token: config.token, caPem, name: config.name, labels: config.labels, facts: collectFacts() });
        log.info({ event: 'agent.enrolled', agentId: res.agentId, name: config.name, labels: res.labels }, 'enrolled');
        break;
      } catch (e) {
        if (e instanceof EnrollError && !e.retryable) throw new AgentConfigError(e.message);
        const delay = backoffDelay(attempt);
        log.warn({ event: 'agent.enroll_retry', err: (e as Error).message, retryInMs: delay }, 'enrollment failed; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
  let creds: AgentCredentials;
  try {
    creds = await state.readCredentials();
  } catch (e) {
    throw new AgentConfigError(`the agent's credentials in ${state.credentialsFile} are damaged (${(e as Error).message}): move ${state.identityDir} aside and enroll again with a new token`);
  }
  if (now() >= creds.notAfter) {
    throw new AgentConfigError(
      `this agent's certificate expired at ${new Date(creds.notAfter).toISOString()} (it was offline longer than the certificate lasts): move ${state.identityDir} aside and start the agent with a new bootstrap token (--token) and --ca`,
    );
  }
  const identity = await state.readIdentity();
  const identityFile = new IdentityUpdater(state, identity);
  const caTrust = new CaTrust({
    caPem: await state.readCa(),
    version: identity.caBundleVersion ?? 0,
    decode: decodeCaBundle,
    persist: async (pem, version) => {
      await state.writeCa(pem);
      await identityFile.update({ caBundleVersion: version });
    },
  });
  const trust = new DispatchTrust({
    identity,
    caPublicKeys: () => caTrust.publicKeys(),
    allowCaRecovery: config.allowCaKeyRecovery ?? false,
    decode: decodeDispatchKeySet,
    persist: (next) => identityFile.update({ dispatchKeys: next.dispatchKeys, ...(next.dispatchKeySetVersion !== undefined ? { dispatchKeySetVersion: next.dispatchKeySetVersion } : {}) }),
  });
  const localPolicy = await loadLocalPolicy(config.localPolicyFile, config.allowAdhoc);

  const journal = new StepJournal(state.journalFile);
  // An agent upgraded in place brings its older nonces.log and spool entries into the journal.
  await journal.load(now(), { noncesFile: state.legacyNoncesFile, spoolDir: state.spoolDir });
  const workDir = config.workDir ?? join(config.stateDir, 'work');
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await rm(join(config.stateDir, 'tmp'), { recursive: true, force: true }); // scripts left by a crash
  await mkdir(join(config.stateDir, 'tmp'), { recursive: true, mode: 0o700 });
  let connection: AgentConnection | undefined;
  const executor = new StepExecutor({
    identity: () => ({ agentId: identity.agentId, privateKey: creds.privateKey, serial: creds.serial }),
    dispatchKeys: () => trust.keys(),
    dispatchKeysSettled: () => trust.settled(),
    localPolicy: () => localPolicy,
    nonces: journal,
    spool: new Spool(state.spoolDir, journal),
    link: () => connection?.link(),
    log: log.child({ agentId: identity.agentId }),
    now,
    baseEnv: config.baseEnv,
    defaultWorkingDir: workDir,
    tempDir: join(config.stateDir, 'tmp'),
    maxConcurrentSteps: config.maxConcurrentSteps,
    killGraceMs: config.killGraceMs,
  });
  await executor.recover();
  const labels = { ...identity.labels, ...config.labels };
  connection = new AgentConnection({
    address,
    caPem: () => caTrust.pem(),
    credentials: () => creds,
    saveCredentials: async (keyPem, certPem) => {
      creds = await state.writeCredentials(keyPem, certPem);
    },
    offerDispatchKeys: (signed) => trust.offer(signed),
    offerCaBundle: (signed) => caTrust.offer(signed, creds.certPem),
    agentId: identity.agentId,
    facts: collectFacts,
    labels,
    executor,
    log: log.child({ agentId: identity.agentId }),
    now,
    ...(config.channelOptions ? { channelOptions: config.channelOptions } : {}),
  });
  const pruner = setInterval(() => {
    journal.prune(now());
    void journal.compactIfLarge().catch((e: unknown) => log.error({ event: 'nonce.compact_failed', err: e }, 'compacting the step journal failed'));
  }, 60_000);
  pruner.unref();
  const fatal = new Promise<string>((resolve) => connection?.on((event, detail) => event === 'expired' && resolve(detail)));
  connection.start();
  // While the handshake is in flight: the first step then costs what later ones do (warm-up.ts).
  const warmedUp = warmUpStepPath({ privateKey: creds.privateKey, dispatchKeys: trust.keys().values(), path: config.baseEnv['PATH'] ?? '/usr/bin:/bin', workingDir: workDir });
  return {
    agentId: identity.agentId,
    connection,
    executor,
    fatal,
    async stop(options = {}) {
      clearInterval(pruner);
      await warmedUp;
      // Interrupted steps get TERM, then KILL after the kill grace, before the process may exit.
      const drained = await executor.drain(options.graceMs ?? 0);
      const spooled = await executor.waitDelivered(ACK_WAIT_MS);
      await connection?.stop();
      await journal.close().catch((e: unknown) => log.warn({ event: 'nonce.close_failed', err: e }, 'closing the step journal failed'));
      return { ...drained, spooled };
    },
    interruptNow() {
      executor.interruptNow();
    },
  };
}

async function loadLocalPolicy(file: string | undefined, allowAdhoc: boolean | undefined): Promise<LocalPolicy> {
  let value: unknown = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new AgentConfigError(`cannot read the local policy file ${file}`);
    }
    const parseYaml = await loadYamlParse();
    try {
      value = parseYaml(text) ?? {};
    } catch (e) {
      throw new AgentConfigError(`local policy file ${file} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const { policy, issues } = validateLocalPolicy(value);
  if (!policy || issues.length > 0) {
    throw new AgentConfigError(`local policy file ${file ?? '(default)'} is invalid: ${issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`).join('; ')}`);
  }
  return allowAdhoc === undefined ? policy : { ...policy, allowAdhoc };
}
