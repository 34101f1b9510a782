/** `handrail agent`: enroll on first start (token + CA), then hold the stream and run steps. */
import { hostname } from 'node:os';
import { StateDir } from '../../agent/state-dir.js';
import { access, readFile, rm } from 'node:fs/promises';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import { parseLabelList } from '../../core/labels.js';
import type { CliIo } from '../io.js';
import type { LogFormat } from '../logger.js';
import { bool, durationSetting, required, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { LOG_FORMAT, LOG_LEVEL } from '../settings.js';

export const agentCommand: CommandSpec = {
  name: 'agent',
  usage: 'agent --coordinator HOST:PORT [--token T --ca ca.pem] [--state-dir DIR]',
  summary: 'Run the agent. On first start it makes its key, enrolls with the bootstrap token and stores its certificate; afterwards the certificate alone is used.',
  options: {
    coordinator: { type: 'string', env: 'HANDRAIL_COORDINATOR', configKey: 'coordinator', placeholder: 'HOST:PORT', description: 'the coordinator\'s agent port' },
    token: { type: 'string', env: 'HANDRAIL_BOOTSTRAP_TOKEN', configKey: 'bootstrapToken', placeholder: 'TOKEN', description: 'bootstrap token (first start only)' },
    'token-file': {
      type: 'string',
      env: 'HANDRAIL_BOOTSTRAP_TOKEN_FILE',
      configKey: 'bootstrapTokenFile',
      placeholder: 'FILE',
      description: 'file holding the bootstrap token (first start only; keeps the token out of `ps` and the environment); deleted once the agent has enrolled',
    },
    ca: { type: 'string', env: 'HANDRAIL_CA', configKey: 'ca', placeholder: 'FILE', description: 'coordinator CA certificate (first start only)' },
    'state-dir': { type: 'string', env: 'HANDRAIL_STATE_DIR', configKey: 'stateDir', default: './agent-state', placeholder: 'DIR', description: 'identity, spool and replay log' },
    name: { type: 'string', env: 'HANDRAIL_AGENT_NAME', configKey: 'name', placeholder: 'NAME', description: 'agent name (default: the host name)' },
    labels: { type: 'string', env: 'HANDRAIL_LABELS', configKey: 'labels', placeholder: 'k=v,...', description: 'labels this agent reports (token-pinned labels win)' },
    'server-name': { type: 'string', env: 'HANDRAIL_SERVER_NAME', configKey: 'serverName', placeholder: 'NAME', description: 'name to verify on the coordinator certificate (default: the host, or handrail-coordinator for IPs)' },
    'local-policy': { type: 'string', env: 'HANDRAIL_LOCAL_POLICY', configKey: 'localPolicy', placeholder: 'FILE', description: 'local policy file: which runbooks may run here, whether ad-hoc commands are allowed' },
    'allow-adhoc': { type: 'boolean', env: 'HANDRAIL_ALLOW_ADHOC', configKey: 'allowAdhoc', description: 'allow ad-hoc commands (overrides the local policy file)' },
    'max-steps': { type: 'string', env: 'HANDRAIL_MAX_STEPS', configKey: 'maxSteps', default: '16', placeholder: 'N', description: 'steps run at once, at most' },
    'kill-grace': { type: 'string', configKey: 'killGrace', default: '5s', placeholder: 'DURATION', description: 'time between TERM and KILL on timeout or cancel' },
    'stop-grace': {
      type: 'string',
      env: 'HANDRAIL_STOP_GRACE',
      configKey: 'stopGrace',
      default: '30s',
      placeholder: 'DURATION',
      description: 'on SIGTERM/SIGINT, how long running steps may go on; then they are stopped and reported as interrupted, which the coordinator runs again when the agent is back (a second signal interrupts at once)',
    },
    'work-dir': { type: 'string', env: 'HANDRAIL_WORK_DIR', configKey: 'workDir', placeholder: 'DIR', description: 'default working directory of steps (default: STATE_DIR/work)' },
    'allow-ca-key-recovery': {
      type: 'boolean',
      env: 'HANDRAIL_ALLOW_CA_KEY_RECOVERY',
      configKey: 'allowCaKeyRecovery',
      description: 'accept a dispatch key set signed by the CA alone (recovery after losing the dispatch keys; off by default, since a CA key thief could then swap them)',
    },
    'stop-on-stdin-close': { type: 'boolean', description: 'stop (as on SIGTERM) when standard input closes: for a supervisor holding a pipe to the agent, as `handrail demo` does, so the agent never outlives it' },
    'allow-keys-in-git': ALLOW_KEYS_IN_GIT,
    'log-level': LOG_LEVEL,
    'log-format': LOG_FORMAT,
  },
};

// HANDRAIL_DEMO_ROOT: where the demo's example runbooks keep each demo host's files.
const STEP_ENV_KEEP = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME', 'TMPDIR', 'HANDRAIL_DEMO_ROOT'];

export async function runAgent(p: ParsedCommand, io: CliIo): Promise<number> {
  // The agent and pino load here, not with this module: `handrail --help` loads every command's module.
  const { createLogger } = await import('../logger.js');
  const log = createLogger(str(p.values, 'log-level') as string, 'agent', { format: str(p.values, 'log-format') as LogFormat });
  let labels: Record<string, string>;
  try {
    labels = parseLabelList(str(p.values, 'labels') ?? '');
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  const maxSteps = Number(str(p.values, 'max-steps'));
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new UsageError('--max-steps must be a positive whole number');
  const baseEnv: Record<string, string> = {};
  for (const k of STEP_ENV_KEEP) {
    const v = io.env[k];
    if (v !== undefined) baseEnv[k] = v;
  }
  const allowAdhoc = p.values['allow-adhoc'] === undefined ? undefined : bool(p.values, 'allow-adhoc');
  const stopGraceMs = durationSetting(p, 'stop-grace');
  const stateDir = str(p.values, 'state-dir') as string;
  // Enrollment writes the agent's private key: not where git could pick it up.
  const credentials = new StateDir(stateDir).credentialsFile;
  const enrolled = await access(credentials).then(() => true, () => false);
  if (!enrolled) await refuseKeysInWorkTree([credentials], bool(p.values, 'allow-keys-in-git'));
  const tokenFile = str(p.values, 'token-file');
  const token = str(p.values, 'token') || (tokenFile && !enrolled ? await readTokenFile(tokenFile) : undefined);
  const { startAgent } = await import('../../agent/agent.js');
  const agent = await startAgent(
    {
      coordinator: required(p.values, 'coordinator', agentCommand),
      ...(str(p.values, 'server-name') ? { serverName: str(p.values, 'server-name') as string } : {}),
      stateDir,
      ...(token ? { token } : {}),
      ...(str(p.values, 'ca') ? { caFile: str(p.values, 'ca') as string } : {}),
      name: str(p.values, 'name') ?? hostname().split('.')[0] ?? 'agent',
      labels,
      ...(str(p.values, 'local-policy') ? { localPolicyFile: str(p.values, 'local-policy') as string } : {}),
      ...(allowAdhoc === undefined ? {} : { allowAdhoc }),
      maxConcurrentSteps: maxSteps,
      killGraceMs: durationSetting(p, 'kill-grace'),
      ...(str(p.values, 'work-dir') ? { workDir: str(p.values, 'work-dir') as string } : {}),
      baseEnv,
      allowCaKeyRecovery: p.values['allow-ca-key-recovery'] === undefined ? false : bool(p.values, 'allow-ca-key-recovery'),
    },
    log,
    io.now,
  );
  if (tokenFile) {
    // Spent (or, enrolled already, never needed): a one-time secret has no reason to stay on disk.
    await rm(tokenFile, { force: true }).catch((e: unknown) => log.warn({ event: 'agent.token_file_not_removed', file: tokenFile, err: (e as Error).message }, 'could not remove the bootstrap token file'));
  }
  io.err(`handrail agent ${agent.agentId} running\n`);
  log.info({ event: 'agent.running', agentId: agent.agentId, node: process.version, nodeFlags: process.execArgv }, 'agent running');
  process.on('unhandledRejection', (e) => log.error({ event: 'agent.unhandled_rejection', err: e }, 'unhandled rejection'));
  const fatal = await new Promise<string | undefined>((resolve) => {
    process.once('SIGINT', () => resolve(undefined));
    process.once('SIGTERM', () => resolve(undefined));
    if (bool(p.values, 'stop-on-stdin-close')) {
      process.stdin.once('end', () => resolve(undefined));
      process.stdin.once('close', () => resolve(undefined));
      process.stdin.on('data', () => undefined).resume();
    }
    agent.fatal.then(resolve).catch((e: unknown) => log.error({ event: 'agent.fatal_watch_failed', err: e }, 'watching for a fatal agent condition failed'));
  });
  const running = agent.executor.runningCount;
  log.info(
    { event: 'agent.stopping', agentId: agent.agentId, reason: fatal ?? 'signal', running, stopGraceMs },
    running > 0 ? `stopping: new steps are turned away; ${running} running step(s) get up to ${stopGraceMs} ms to finish` : 'stopping: new steps are turned away',
  );
  if (running > 0 && stopGraceMs > 0) io.err(`handrail agent: stopping; waiting up to ${Math.round(stopGraceMs / 1000)} s for ${running} running step(s) (signal again to interrupt them now)\n`);
  const again = (): void => {
    log.warn({ event: 'agent.interrupt_now', agentId: agent.agentId }, 'second stop signal: interrupting running steps now');
    agent.interruptNow();
  };
  process.on('SIGINT', again);
  process.on('SIGTERM', again);
  const summary = await agent.stop({ graceMs: stopGraceMs });
  log.info({ event: 'agent.stopped', agentId: agent.agentId, ...summary }, `stopped: ${summary.finished} step(s) finished, ${summary.interrupted} interrupted, ${summary.spooled} result(s) spooled for the next start`);
  log.flush();
  if (fatal) {
    io.err(`handrail agent: ${fatal}\n`);
    return 2;
  }
  return 0;
}

async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--token-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'the install script writes it; or pass the token with --token');
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`--token-file: ${file} is empty`, 'put the bootstrap token from `handrail token create` in it');
  return token;
}
