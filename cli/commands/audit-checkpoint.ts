/**
 * `handrail audit checkpoint`: sign the audit log's current head (sequence number and hash)
 * and print it as one JSON line. Keep these lines somewhere the coordinator cannot rewrite
 * (a log shipper, a ticket, another host): `handrail audit verify --checkpoints FILE` then
 * detects a log that was cut short.
 */
import { openDataDir } from '../../coordinator/data-dir.js';
import type { CliIo } from '../io.js';
import { str, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR } from '../settings.js';

export const auditCheckpoint: CommandSpec = {
  name: 'audit checkpoint',
  usage: 'audit checkpoint [--data-dir DIR] >> checkpoints.jsonl',
  summary: 'Sign the audit log\'s current head and print it as one JSON line, to keep outside the coordinator.',
  options: { 'data-dir': DATA_DIR },
};

export async function runAuditCheckpoint(p: ParsedCommand, io: CliIo): Promise<number> {
  const data = await openDataDir(str(p.values, 'data-dir') as string, io.now);
  try {
    io.out((await data.audit.checkpoint()) + '\n');
    return 0;
  } finally {
    await data.close();
  }
}
