/**
 * `handrail keys rotate audit` (also `audit rotate-key`): a new audit signing key; older records
 * keep verifying with the old public key. A running coordinator signs with it from its next
 * store poll on; records it signs with the old key meanwhile still verify (that key stays trusted).
 */
import { withDataDir } from '../data-dir.js';
import { AuditEvents } from '../../coordinator/audit/events.js';
import type { CliIo } from '../io.js';
import type { CommandSpec, ParsedCommand } from '../options.js';
import { DATA_DIR } from '../settings.js';

export const auditRotateKey: CommandSpec = {
  name: 'audit rotate-key',
  usage: 'audit rotate-key [--data-dir DIR]',
  summary: 'Start signing audit records with a new key (a running coordinator takes it up within a second). Old records still verify: every public key is kept and exported, and the key.rotated record is signed with the old key, so verifiers that trust it come to trust the new one.',
  options: { 'data-dir': DATA_DIR },
};

export const keysRotateAudit: CommandSpec = { ...auditRotateKey, name: 'keys rotate audit', usage: 'keys rotate audit [--data-dir DIR]' };

export async function runAuditRotateKey(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    const retiring = data.keyring.active('audit');
    const previous = retiring.keyId;
    const key = await data.keyring.rotate('audit', io.now());
    // Signed with the retiring key: a verifier that trusts it trusts the new key through this record.
    await data.db.write(async (tx) => {
      await data.audit.appendSignedWith(tx, retiring, { type: AuditEvents.keyRotated, actor: { kind: 'cli', id: io.env['USER'] ?? 'cli' }, data: { purpose: 'audit', previousKeyId: previous, keyId: key.keyId } });
    });
    io.out(`audit key ${key.keyId} is now active (was ${previous}); verifiers that pin ${previous} trust it through the key.rotated record\n`);
    return 0;
  });
}
