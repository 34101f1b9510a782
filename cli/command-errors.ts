/** How a command's failure reaches the user: one message and an exit code (2 bad input, 1 the work failed). */
import { HandrailError } from '../core/errors.js';
import type { CliIo } from './io.js';
import { UsageError, type CommandSpec } from './options.js';

const INPUT_KINDS = new Set(['invalid_argument', 'failed_precondition', 'not_found', 'already_exists']);

export function reportError(e: unknown, spec: CommandSpec, io: CliIo): number {
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
