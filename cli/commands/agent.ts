/** `handrail agent`: enroll on first start (token + CA), then hold the stream and run steps. */
import { hostname } from 'node:os';
import { startAgent } from '../../agent/agent.js';
import { parseLabelList } from '../../core/labels.js';
import type { CliIo } from '../io.js';
import { createLogger } from '../logger.js';
import { bool, durationSetting, required, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { LOG_LEVEL } from '../settings.js';

export const agentCommand: CommandSpec = {
  name: 'agent',
  usage: 'agent --coordinator HOST:PORT [--token T --ca ca.pem] [--state-dir DIR]',
  summary: 'Run the agent. On first start it makes its key, enrolls with the bootstrap token and stores its certificate; afterwards the certificate alone is used.',
  options: {
    coordinator: { type: 'string', env: 'HANDRAIL_COORDINATOR', configKey: 'coordinator', placeholder: 'HOST:PORT', description: 'the coordinator\'s agent port' },
    token: { type: 'string', env: 'HANDRAIL_BOOTSTRAP_TOKEN', configKey: 'bootstrapToken', placeholder: 'TOKEN', description: 'bootstrap token (first start only)' },
    ca: { type: 'string', env: 'HANDRAIL_CA', configKey: 'ca', placeholder: 'FILE', description: 'coordinator CA certificate (first start only)' },
    'state-dir': { type: 'string', env: 'HANDRAIL_STATE_DIR', configKey: 'stateDir', default: './agent-state', placeholder: 'DIR', description: 'identity, spool and replay log' },
    name: { type: 'string', env: 'HANDRAIL_AGENT_NAME', configKey: 'name', placeholder: 'NAME', description: 'agent name (default: the host name)' },
    labels: { type: 'string', env: 'HANDRAIL_LABELS', configKey: 'labels', placeholder: 'k=v,...', description: 'labels this agent reports (token-pinned labels win)' },
    'server-name': { type: 'string', env: 'HANDRAIL_SERVER_NAME', configKey: 'serverName', placeholder: 'NAME', description: 'name to verify on the coordinator certificate (default: the host, or handrail-coordinator for IPs)' },
    'local-policy': { type: 'string', env: 'HANDRAIL_LOCAL_POLICY', configKey: 'localPolicy', placeholder: 'FILE', description: 'local policy file: which runbooks may run here, whether ad-hoc commands are allowed' },
    'allow-adhoc': { type: 'boolean', env: 'HANDRAIL_ALLOW_ADHOC', configKey: 'allowAdhoc', description: 'allow ad-hoc commands (overrides the local policy file)' },
    'max-steps': { type: 'string', env: 'HANDRAIL_MAX_STEPS', configKey: 'maxSteps', default: '16', placeholder: 'N', description: 'steps run at once, at most' },
    'kill-grace': { type: 'string', configKey: 'killGrace', default: '5s', placeholder: 'DURATION', description: 'time between TERM and KILL on timeout or cancel' },
    'work-dir': { type: 'string', env: 'HANDRAIL_WORK_DIR', configKey: 'workDir', placeholder: 'DIR', description: 'default working directory of steps (default: STATE_DIR/work)' },
    'allow-ca-key-recovery': {
      type: 'boolean',
      env: 'HANDRAIL_ALLOW_CA_KEY_RECOVERY',
      configKey: 'allowCaKeyRecovery',
      description: 'accept a dispatch key set signed by the CA alone (recovery after losing the dispatch keys; off by default, since a CA key thief could then swap them)',
    },
    'log-level': LOG_LEVEL,
  },
};

// HANDRAIL_DEMO_ROOT: where the demo's example runbooks keep each demo host's files.
const STEP_ENV_KEEP = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME', 'TMPDIR', 'HANDRAIL_DEMO_ROOT'];

export async function runAgent(p: ParsedCommand, io: CliIo): Promise<number> {
  const log = createLogger(str(p.values, 'log-level') as string, 'agent');
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
  const agent = await startAgent(
    {
      coordinator: required(p.values, 'coordinator', agentCommand),
      ...(str(p.values, 'server-name') ? { serverName: str(p.values, 'server-name') as string } : {}),
      stateDir: str(p.values, 'state-dir') as string,
      ...(str(p.values, 'token') ? { token: str(p.values, 'token') as string } : {}),
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
  io.err(`handrail agent ${agent.agentId} running\n`);
  log.info({ event: 'agent.running', agentId: agent.agentId, node: process.version, nodeFlags: process.execArgv }, 'agent running');
  process.on('unhandledRejection', (e) => log.error({ event: 'agent.unhandled_rejection', err: e }, 'unhandled rejection'));
  const fatal = await new Promise<string | undefined>((resolve) => {
    process.once('SIGINT', () => resolve(undefined));
    process.once('SIGTERM', () => resolve(undefined));
    agent.fatal.then(resolve).catch((e: unknown) => log.error({ event: 'agent.fatal_watch_failed', err: e }, 'watching for a fatal agent condition failed'));
  });
  log.info({ event: 'agent.stopping', agentId: agent.agentId, reason: fatal ?? 'signal' }, 'stopping: running steps are canceled, new ones turned away');
  await agent.stop();
  log.flush();
  if (fatal) {
    io.err(`handrail agent: ${fatal}\n`);
    return 2;
  }
  return 0;
}
