/**
 * The `handrail` command: finds the subcommand, resolves its options (flag > env > config
 * file > default) and maps outcomes to exit codes: 0 ok, 1 the work failed, 2 bad usage or
 * input. A user mistake prints a message, never a stack trace.
 */
import { HandrailError } from '../core/errors.js';
import type { CliIo } from './io.js';
import { helpText, parseCommand, UsageError, type CommandSpec, type ParsedCommand } from './options.js';
import { caInit, runCaInit } from './commands/ca.js';
import { coordinatorCommand, runCoordinator } from './commands/coordinator.js';
import { tokenCreate, tokenList, tokenRevoke, runTokenCreate, runTokenList, runTokenRevoke } from './commands/token.js';
import { agentCommand, runAgent } from './commands/agent.js';
import { agentsList, agentsRevoke, runAgentsList, runAgentsRevoke } from './commands/agents.js';
import { userAdd, userList, userToken, runUserAdd, runUserList, runUserToken } from './commands/user.js';
import { execCommand, runExec } from './commands/exec.js';
import { demoCommand, runDemo } from './commands/demo.js';

interface Command {
  readonly spec: CommandSpec;
  readonly run: (p: ParsedCommand, io: CliIo) => Promise<number>;
}

export const COMMANDS: readonly Command[] = [
  { spec: caInit, run: runCaInit },
  { spec: coordinatorCommand, run: runCoordinator },
  { spec: tokenCreate, run: runTokenCreate },
  { spec: tokenList, run: runTokenList },
  { spec: tokenRevoke, run: runTokenRevoke },
  { spec: agentCommand, run: runAgent },
  { spec: agentsList, run: runAgentsList },
  { spec: agentsRevoke, run: runAgentsRevoke },
  { spec: userAdd, run: runUserAdd },
  { spec: userToken, run: runUserToken },
  { spec: userList, run: runUserList },
  { spec: execCommand, run: runExec },
  { spec: demoCommand, run: runDemo },
];

const INPUT_KINDS = new Set(['invalid_argument', 'failed_precondition', 'not_found', 'already_exists']);

function overview(): string {
  const lines = ['Usage: handrail COMMAND [options]   (handrail COMMAND --help for details)', '', 'Commands:'];
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  for (const c of COMMANDS) lines.push(`  ${c.spec.name.padEnd(width)}${c.spec.summary.split('. ')[0]?.replace(/\.$/, '')}`);
  return lines.join('\n') + '\n';
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    (argv.length === 0 ? io.err : io.out)(overview());
    return argv.length === 0 ? 2 : 0;
  }
  const two = `${argv[0]} ${argv[1] ?? ''}`;
  const cmd = COMMANDS.find((c) => c.spec.name === two) ?? COMMANDS.find((c) => c.spec.name === argv[0]);
  if (!cmd) {
    const group = COMMANDS.filter((c) => c.spec.name.startsWith(`${argv[0]} `));
    if (group.length > 0) {
      io.err(`handrail ${argv[0]}: choose one of: ${group.map((c) => c.spec.name.split(' ')[1]).join(', ')}\n`);
    } else {
      io.err(`handrail: unknown command "${argv[0]}"\n\n${overview()}`);
    }
    return 2;
  }
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

const isEntry = process.argv[1] !== undefined && /(?:^|[/\\])(?:main\.js|handrail(?:\.js)?)$/.test(process.argv[1]);
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
