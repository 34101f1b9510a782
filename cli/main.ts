/**
 * The `handrail` command: finds the subcommand, resolves its options (flag > env > config
 * file > default) and maps outcomes to exit codes: 0 ok, 1 the work failed, 2 bad usage or
 * input. A user mistake prints a message, never a stack trace; a typo gets "did you mean".
 */
import { HANDRAIL_VERSION } from '../core/version.js';
import type { CliIo } from './io.js';
import { helpText, loadConfigParser, mayReadConfigFile, parseCommand, type CommandSpec, type ParsedCommand } from './options.js';
import { ed25519Choice } from './settings.js';
import { suggest } from './suggest.js';
import { reportError } from './command-errors.js';
import { runAsProcess } from './process-entry.js';

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
  { name: 'ca rotate', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caRotate, run: m.runCaRotate }; } },
  { name: 'ca status', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caStatus, run: m.runCaStatus }; } },
  { name: 'ca switch', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caSwitch, run: m.runCaSwitch }; } },
  { name: 'ca issue-probe', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caIssueProbe, run: m.runCaIssueProbe }; } },
  { name: 'ca retire', load: async () => { const m = await import('./commands/ca.js'); return { spec: m.caRetire, run: m.runCaRetire }; } },
  { name: 'coordinator', load: async () => { const m = await import('./commands/coordinator.js'); return { spec: m.coordinatorCommand, run: m.runCoordinator }; } },
  { name: 'token create', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenCreate, run: m.runTokenCreate }; } },
  { name: 'token ls', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenList, run: m.runTokenList }; } },
  { name: 'token revoke', load: async () => { const m = await import('./commands/token.js'); return { spec: m.tokenRevoke, run: m.runTokenRevoke }; } },
  { name: 'agent install-command', load: async () => { const m = await import('./commands/agent-install-command.js'); return { spec: m.agentInstallCommand, run: m.runAgentInstallCommand }; } },
  { name: 'agent', load: async () => { const m = await import('./commands/agent.js'); return { spec: m.agentCommand, run: m.runAgent }; } },
  { name: 'agents ls', load: async () => { const m = await import('./commands/agents.js'); return { spec: m.agentsList, run: m.runAgentsList }; } },
  { name: 'agents revoke', load: async () => { const m = await import('./commands/agents.js'); return { spec: m.agentsRevoke, run: m.runAgentsRevoke }; } },
  { name: 'user add', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userAdd, run: m.runUserAdd }; } },
  { name: 'user password', load: async () => { const m = await import('./commands/user.js'); return { spec: m.userPassword, run: m.runUserPassword }; } },
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
  { name: 'keys status', load: async () => { const m = await import('./commands/keys.js'); return { spec: m.keysStatus, run: m.runKeysStatus }; } },
  { name: 'keys rotate dispatch', load: async () => { const m = await import('./commands/keys.js'); return { spec: m.keysRotateDispatch, run: m.runKeysRotateDispatch }; } },
  { name: 'keys rotate audit', load: async () => { const m = await import('./commands/audit-keys.js'); return { spec: m.keysRotateAudit, run: m.runAuditRotateKey }; } },
  { name: 'keys retire dispatch', load: async () => { const m = await import('./commands/keys.js'); return { spec: m.keysRetireDispatch, run: m.runKeysRetireDispatch }; } },
  { name: 'backup', load: async () => { const m = await import('./commands/backup.js'); return { spec: m.backupCommand, run: m.runBackup }; } },
  { name: 'restore', load: async () => { const m = await import('./commands/backup.js'); return { spec: m.restoreCommand, run: m.runRestore }; } },
  { name: 'audit checkpoint', load: async () => { const m = await import('./commands/audit-checkpoint.js'); return { spec: m.auditCheckpoint, run: m.runAuditCheckpoint }; } },
  { name: 'runbooks ls', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksList, run: m.runRunbooksList }; } },
  { name: 'runbooks show', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksShow, run: m.runRunbooksShow }; } },
  { name: 'runbooks lint', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksLint, run: m.runRunbooksLint }; } },
  { name: 'runbooks reload', load: async () => { const m = await import('./commands/runbooks.js'); return { spec: m.runbooksReload, run: m.runRunbooksReload }; } },
  { name: 'policy explain', load: async () => { const m = await import('./commands/policy.js'); return { spec: m.policyExplain, run: m.runPolicyExplain }; } },
  { name: 'executions approve', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.executionsApprove, run: m.runExecutionsApprove }; } },
  { name: 'executions deny', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.executionsDeny, run: m.runExecutionsDeny }; } },
  { name: 'approvals', load: async () => { const m = await import('./commands/approvals.js'); return { spec: m.approvalsList, run: m.runApprovalsList }; } },
  { name: 'notify add', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyAdd, run: m.runNotifyAdd }; } },
  { name: 'notify ls', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyList, run: m.runNotifyList }; } },
  { name: 'notify rm', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyRemove, run: m.runNotifyRemove }; } },
  { name: 'notify enable', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyEnable, run: m.runNotifyEnable }; } },
  { name: 'notify disable', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyDisable, run: m.runNotifyDisable }; } },
  { name: 'notify rotate', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyRotate, run: m.runNotifyRotate }; } },
  { name: 'notify deliveries', load: async () => { const m = await import('./commands/notify.js'); return { spec: m.notifyDeliveries, run: m.runNotifyDeliveries }; } },
  { name: 'webhook add', load: async () => { const m = await import('./commands/webhook.js'); return { spec: m.webhookAdd, run: m.runWebhookAdd }; } },
  { name: 'webhook ls', load: async () => { const m = await import('./commands/webhook.js'); return { spec: m.webhookList, run: m.runWebhookList }; } },
  { name: 'webhook rm', load: async () => { const m = await import('./commands/webhook.js'); return { spec: m.webhookRemove, run: m.runWebhookRemove }; } },
  { name: 'webhook rotate', load: async () => { const m = await import('./commands/webhook.js'); return { spec: m.webhookRotate, run: m.runWebhookRotate }; } },
  { name: 'demo', load: async () => { const m = await import('./commands/demo.js'); return { spec: m.demoCommand, run: m.runDemo }; } },
];

/**
 * core/ed25519.ts starts on its default backend ('auto') and loads node:crypto: load it only once
 * some run of main() asks for another backend (HANDRAIL_ED25519=openssl), not on every start.
 */
let ed25519Chosen = false;
async function chooseEd25519(env: NodeJS.ProcessEnv): Promise<void> {
  const choice = ed25519Choice(env);
  if (choice === 'auto' && !ed25519Chosen) return;
  ed25519Chosen = true;
  (await import('../core/ed25519.js')).useEd25519Backend(choice);
}

const isHelp = (a: string | undefined): boolean => a === '--help' || a === '-h';

function listing(commands: readonly Command[]): string[] {
  const width = Math.max(...commands.map((c) => c.spec.name.length)) + 2;
  return commands.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary.split('. ')[0]?.replace(/\.$/, '')}`);
}

async function overview(): Promise<string> {
  const commands = await Promise.all(REGISTRY.map((r) => r.load()));
  const lines = ['Usage: handrail COMMAND [options]   (handrail COMMAND --help for details)', '', 'Commands:', ...listing(commands), '', '  --version           print the version'];
  return lines.join('\n') + '\n';
}

/** `handrail executions --help`: the commands of one group. */
async function groupHelp(group: string): Promise<string> {
  const commands = await Promise.all(REGISTRY.filter((r) => r.name.startsWith(`${group} `)).map((r) => r.load()));
  return [`Usage: handrail ${group} COMMAND [options]   (handrail ${group} COMMAND --help for details)`, '', 'Commands:', ...listing(commands)].join('\n') + '\n';
}

/** Every word a command line may start with ("agents", "run", "audit" …) and every full command name. */
function knownNames(): string[] {
  return [...new Set(REGISTRY.flatMap((c) => [c.name, c.name.split(' ')[0] as string]))];
}

function didYouMean(names: readonly string[]): string {
  return names.length === 0 ? '' : `; did you mean ${names.map((n) => `"handrail ${n}"`).join(' or ')}?`;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  await chooseEd25519(io.env);
  const [first, second] = argv;
  if (first === undefined) {
    io.err(await overview());
    return 2;
  }
  if (first === '--version' || first === 'version') {
    io.out(`handrail ${HANDRAIL_VERSION}\n`);
    return 0;
  }
  if (isHelp(first) || (first === 'help' && second === undefined)) {
    io.out(await overview());
    return 0;
  }
  if (first === 'help') return main([...argv.slice(1), '--help'], io);
  const two = `${first} ${second ?? ''}`;
  const entry = REGISTRY.find((c) => c.name === `${two} ${argv[2] ?? ''}`) ?? REGISTRY.find((c) => c.name === two) ?? REGISTRY.find((c) => c.name === first);
  if (!entry) {
    const group = REGISTRY.filter((c) => c.name.startsWith(`${first} `));
    // `handrail keys rotate`: a group within a group (`keys rotate dispatch|audit`).
    const subgroup = REGISTRY.filter((c) => c.name.startsWith(`${two} `));
    if (subgroup.length > 0) {
      const words = subgroup.map((c) => c.name.split(' ')[2] as string);
      const third = argv[2];
      if (isHelp(third)) {
        io.out(`Usage: handrail ${two} ${words.join('|')} [options]\n`);
        return 0;
      }
      const near = third === undefined || third.startsWith('-') ? [] : suggest(third, words).map((n) => `${two} ${n}`);
      io.err(`handrail ${two}: ${third === undefined || third.startsWith('-') ? 'give one of' : `unknown "${third}"${didYouMean(near)}; give one of`}: ${words.join(', ')}\n`);
      return 2;
    }
    if (group.length > 0) {
      if (isHelp(second)) {
        io.out(await groupHelp(first));
        return 0;
      }
      if (second === undefined || second.startsWith('-')) {
        io.err(`handrail ${first}: give a command: ${[...new Set(group.map((c) => c.name.split(' ')[1]))].join(', ')}\n\n${await groupHelp(first)}`);
        return 2;
      }
      const words = [...new Set(group.map((c) => c.name.split(' ')[1] as string))];
      const near = suggest(second, words).map((n) => `${first} ${n}`);
      io.err(`handrail: unknown command "${first} ${second}"${didYouMean(near)}\n  \`handrail ${first} --help\` lists: ${words.join(', ')}\n`);
      return 2;
    }
    const typed = second !== undefined && !second.startsWith('-') ? `${first} ${second}` : first;
    const near = suggest(typed, knownNames());
    const nearFirst = near.length > 0 || typed === first ? near : suggest(first, knownNames());
    io.err(`handrail: unknown command "${typed === first ? first : typed}"${didYouMean(nearFirst)}\n  \`handrail --help\` lists every command\n`);
    return 2;
  }
  const cmd = await entry.load();
  if (!entry.name.includes(' ') && !cmd.spec.allowPositionals && second !== undefined && !second.startsWith('-')) {
    // `handrail agent ls`: a word after a command that takes none is a typo of another command.
    const near = suggest(`${first} ${second}`, REGISTRY.map((c) => c.name).filter((n) => n.includes(' ')));
    if (near.length > 0) {
      io.err(`handrail: unknown command "${first} ${second}"${didYouMean(near)}\n`);
      return 2;
    }
  }
  const rest = argv.slice(cmd.spec.name.split(' ').length);
  try {
    if (mayReadConfigFile(rest, io.env)) await loadConfigParser();
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

const isEntry = process.argv[1] !== undefined && /(?:^|[/\\])(?:main\.js|handrail(?:-agent)?(?:\.js)?)$/.test(process.argv[1]);
if (isEntry) runAsProcess(main);
