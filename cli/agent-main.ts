/**
 * The agent's own entry point: `handrail agent` without the rest of the CLI. The bundled agent
 * (scripts/bundle-agent.mjs → dist/agent-bundle/handrail-agent.mjs) starts here, so that what
 * fleet hosts run holds no coordinator, store, web or engine code.
 */
import { useEd25519Backend } from '../core/ed25519.js';
import { HANDRAIL_VERSION } from '../core/version.js';
import { reportError } from './command-errors.js';
import { agentCommand, runAgent } from './commands/agent.js';
import type { CliIo } from './io.js';
import { renderAgentConfig } from './agent-config-file.js';
import { helpText, loadConfigParser, parseCommand } from './options.js';
import { ed25519Choice } from './settings.js';

export async function agentMain(argv: readonly string[], io: CliIo): Promise<number> {
  useEd25519Backend(ed25519Choice(io.env));
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.out(`handrail-agent ${HANDRAIL_VERSION}\n`);
    return 0;
  }
  if (argv[0] === 'config-template') {
    await loadConfigParser();
    return configTemplate(argv.slice(1), io);
  }
  try {
    // An agent reads its config file more often than not (the installed unit does).
    await loadConfigParser();
    const parsed = parseCommand(agentCommand, argv, io.env);
    if (parsed.values['help'] === true) {
      io.out(helpText(agentCommand));
      return 0;
    }
    return await runAgent(parsed, io);
  } catch (e) {
    return reportError(e, agentCommand, io);
  }
}

/**
 * `handrail-agent.mjs config-template [agent flags]`: prints the agent's documented config file
 * with the given flags as its values (the install script writes /etc/handrail-agent/agent.yaml
 * with it). The environment is not read: the file says what was asked for, nothing else.
 */
function configTemplate(argv: readonly string[], io: CliIo): number {
  try {
    const parsed = parseCommand(agentCommand, argv, {});
    const values: Record<string, string | boolean> = {};
    for (const [name, o] of Object.entries(agentCommand.options)) {
      const v = parsed.values[name];
      if ((typeof v === 'string' || typeof v === 'boolean') && v !== o.default) values[name] = v;
    }
    io.out(
      renderAgentConfig(agentCommand, values, [
        `Handrail agent ${HANDRAIL_VERSION} configuration (YAML). Every setting is listed with what it does;`,
        'a flag or environment variable given to the agent wins over this file. Commented-out',
        'settings show their defaults. After editing: systemctl restart handrail-agent',
      ]),
    );
    return 0;
  } catch (e) {
    return reportError(e, agentCommand, io);
  }
}
