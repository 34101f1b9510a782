/**
 * The `handrail` command: finds the subcommand, resolves its options (flag > env > config
 * file > default) and maps outcomes to exit codes: 0 ok, 1 the work failed, 2 bad usage or
 * input. A user mistake prints a message, never a stack trace.
 */
import { HandrailError } from '../core/errors.js';
import { useEd25519Backend } from '../core/ed25519.js';
import type { CliIo } from './io.js';
import { helpText, parseCommand, UsageError, type CommandSpec, type ParsedCommand } from './options.js';
import { ed25519Choice } from './settings.js';

interface Command {
  readonly spec: CommandSpec;
  readonly run: (p: ParsedCommand, io: CliIo) => Promise<number>;
}

/**
 * Commands load lazily: `handrail agent` must not pull in the coordinator (SQLite, Hono),
 * which would double the agent's memory.
 */
const REGISTRY: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<Command> }> = [
  { name: 'ca init', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caInit, run: m.runCaInit }; } },
  { name: 'coordinator', load: async () => { const m = await import('./commands/coordinator.js'); return { spec: m.coordinatorCommand, run: m.runCoordinator }; } },
  { name: 'token create', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenCreate, run: m.runTokenCreate }; } },
  { name: 'token ls', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenList, run: m.runTokenList }; } },
  { name: 'token revoke', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenRevoke, run: m.runTokenRevoke }; } },
  { name: 'agent', load: async () => { const m = await import('./commands/agent.js'); return { spec: m.agentCommand, run: m.runAgent }; } },
  { name: 'agents ls', load: async () => { const m = await import('./commands/agents.js'); return { spec: m.agentsList, run: m.runAgentsList }; } },
  { name: 'agents revoke', load: async () => { const m = await import('./commands/agents.js'); return { spec: m.agentsRevoke, run: m.runAgentsRevoke }; } },
  { name: 'user add', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userAdd, run: m.runUserAdd }; } },
  { name: 'user token', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userToken, run: m.runUserToken }; } },
  { name: 'user ls', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userList, run: m.runUserList }; } },
  { name: 'user tokens', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userTokens, run: m.runUserTokens }; } },
  { name: 'user revoke-token', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userRevokeToken, run: m.runUserRevokeToken }; } },
  { name: 'exec', load: async () => { const m = await import('./commands/exec.js'); return { spec: m.execCommand, run: m.runExec }; } },
  { name: 'run', load: async () => { const m = await import('./commands/run.js'); return { spec: m.runCommand, run: m.runRun }; } },
  { name: 'executions ls', load: async () => { const m = await import('./commands/executions.js'); return { spec: m.executionsList, run: m.runExecutionsList }; } },
  { name: 'executions show', load: async () => { const m = await import('./commands/executions.js'); return { spec: m.executionsShow, run: m.runExecutionsShow }; } },
  { name: 'executions follow', load: async () => { const m = await import('./commands/executions.js'); return { spec: m.executionsFollow, run: m.runExecutionsFollow }; } },
  { name: 'executions cancel', load: async () => { const m = await import('./commands/executions.js'); return { spec: m.executionsCancel, run: m.runExecutionsCancel }; } },
  { name: 'audit export', load: async () => { const m = await import('./commands/audit.js'); return { spec: m.auditExport, run: m.runAuditExport }; } },
  { name: 'audit verify', load: async () => { const m = await import('./commands/audit.js'); return { spec: m.auditVerify, run: m.runAuditVerify }; } },
  { name: 'audit rotate-key', load: async () => { const m = await import('./commands/audit-keys.js'); return { spec: m.auditRotateKey, run: m.runAuditRotateKey }; } },
  { name: 'audit checkpoint', load: async () => { const m = await import('./commands/audit-checkpoint.js'); return { spec: m.auditCheckpoint, run: m.runAuditCheckpoint }; } },
  { name: 'runbooks lint', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksLint, run: m.runRunbooksLint }; } },
  { name: 'runbooks reload', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksReload, run: m.runRunbooksReload }; } },
  { name: 'policy explain', load: async () => { const m = await import('./commands/policy.js'); return { spec: m.policyExplain, run: m.runPolicyExplain }; } },
  { name: 'executions approve', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.executionsApprove, run: m.runExecutionsApprove }; } },
  { name: 'executions deny', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.executionsDeny, run: m.runExecutionsDeny }; } },
  { name: 'approvals', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.approvalsList, run: m.runApprovalsList }; } },
  { name: 'demo', load: async () => { const m = await import('./commands/demo.js'); return { spec: m.demoCommand, run: m.runDemo }; } },
];

const INPUT_KINDS = new Set(['invalid_argument', 'failed_precondition', 'not_found', 'already_exists']);

async function overview(): Promise<string> {
  const commands = await Promise.all(REGISTRY.map((r) => r.load()));
  const lines = ['Usage: handrail COMMAND [options]   (handrail COMMAND --help for details)', '', 'Commands:'];
  const width = Math.max(...commands.map((c) => c.spec.name.length)) + 2;
  for (const c of commands) lines.push(`  ${c.spec.name.padEnd(width)}${c.spec.summary.split('. ')[0]?.replace(/\.$/, '')}`);
  return lines.join('\n') + '\n';
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  useEd25519Backend(ed25519Choice(io.env));
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    (argv.length === 0 ? io.err : io.out)(await overview());
    return argv.length === 0 ? 2 : 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`;
  const entry = REGISTRY.find((c) => c.name === two) ?? REGISTRY.find((c) => c.name === argv[0]);
  if (!entry) {
    const group = REGISTRY.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length > 0) {
      io.err(`handrail ${argv[0]}: choose one of: ${group.map((c) => c.name.split(' ')[1]).join(', ')}\n`);
    } else {
      io.err(`handrail: unknown command "${argv[0]}"\n\n${await overview()}`);
    }
    return 2;
  }
  const cmd = await entry.load();
  const rest = argv.slice(cmd.spec.name.split(' ').length);
  try {
    const parsed = parseCommand(cmd.spec, rest, io.env);
    if (parsed.values['help'] === true) {
      io.out(helpText(cmd.spec));
      return 0;
    }
    return await cmd.run(parsed, io);
  } catch (e) {
    return reportError(e, cmd.spec, io);
  }
}

function reportError(e: unknown, spec: CommandSpec, io: CliIo): number {
  if (e instanceof UsageError || (e instanceof HandrailError && INPUT_KINDS.has(e.kind))) {
    io.err(`handrail ${spec.name}: ${(e as HandrailError).message}\n${(e as HandrailError).hint ? `  ${(e as HandrailError).hint}\n` : ''}`);
    return 2;
  }
  if (e instanceof HandrailError) {
    io.err(`handrail ${spec.name}: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    return 1;
  }
  if (e instanceof Error && e.name === 'AgentConfigError') {
    io.err(`handrail ${spec.name}: ${e.message}\n`);
    return 2;
  }
  io.err(`handrail ${spec.name}: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}

const isEntry = process.argv[1] !== undefined && /(?:^|[/\\])(?:main\.js|handrail(?:-agent)?(?:\.js)?)$/.test(process.argv[1]);
if (isEntry) {
  const io: CliIo = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    now: Date.now,
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
      // Long-running commands return after shutdown; short ones must not wait on stray handles.
      setTimeout(() => process.exit(code), 200).unref();
    },
    (e: unknown) => {
      process.stderr.write(`handrail: ${String(e)}\n`);
      process.exit(1);
    },
  );
}
