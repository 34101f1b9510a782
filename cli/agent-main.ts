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
import { helpText, parseCommand } from './options.js';
import { ed25519Choice } from './settings.js';

export async function agentMain(argv: readonly string[], io: CliIo): Promise<number> {
  useEd25519Backend(ed25519Choice(io.env));
  if (argv[0] === '--version' || argv[0] === 'version') {
    io.out(`handrail-agent ${HANDRAIL_VERSION}\n`);
    return 0;
  }
  try {
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
