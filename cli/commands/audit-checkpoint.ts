/**
 * `handrail audit checkpoint`: sign the audit log's current head (sequence number and hash)
 * and print it as one JSON line. Keep these lines somewhere the coordinator cannot rewrite
 * (a log shipper, a ticket, another host): `handrail audit verify --checkpoints FILE` then
 * detects a log that was cut short.
 */
import { withDataDir } from '../data-dir.js';
import type { CliIo } from '../io.js';
import type { CommandSpec, ParsedCommand } from '../options.js';
import { DATA_DIR } from '../settings.js';

export const auditCheckpoint: CommandSpec = {
  name: 'audit checkpoint',
  usage: 'audit checkpoint [--data-dir DIR] >> checkpoints.jsonl',
  summary: 'Sign the audit log\'s current head and print it as one JSON line, to keep outside the coordinator.',
  options: { 'data-dir': DATA_DIR },
};

export async function runAuditCheckpoint(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    io.out((await data.audit.checkpoint()) + '\n');
    return 0;
  });
}
