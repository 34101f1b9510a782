/** `handrail ca init`: create the coordinator CA and server certificate. */
import { join } from 'node:path';
import { CA_FILES, initCa } from '../../coordinator/pki/ca.js';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR } from '../settings.js';

export const caInit: CommandSpec = {
  name: 'ca init',
  usage: 'ca init [--san NAME]... [--force]',
  summary: 'Create the coordinator CA (ca.pem, ca.key) and its server certificate (server.pem, server.key). Keys are written 0600.',
  options: {
    'certs-dir': CERTS_DIR,
    san: { type: 'string', multiple: true, env: 'HANDRAIL_SANS', configKey: 'sans', placeholder: 'NAME', description: 'extra DNS name or IP for the server certificate (repeatable); localhost, 127.0.0.1 and handrail-coordinator are always included' },
    force: { type: 'boolean', description: 'replace an existing CA (every agent must enroll again)' },
    'server-days': { type: 'string', default: '397', placeholder: 'DAYS', description: 'server certificate lifetime' },
    'allow-keys-in-git': ALLOW_KEYS_IN_GIT,
  },
};

export async function runCaInit(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = str(p.values, 'certs-dir') as string;
  const days = Number(str(p.values, 'server-days'));
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError('--server-days must be a whole number of days from 1 to 3650');
  await refuseKeysInWorkTree([join(dir, CA_FILES.caKey), join(dir, CA_FILES.serverKey)], bool(p.values, 'allow-keys-in-git'));
  const { files, sans } = await initCa({ certsDir: dir, sans: list(p.values, 'san'), force: bool(p.values, 'force'), serverValidityDays: days });
  io.out(`CA created in ${dir}\n`);
  for (const f of files) io.out(`  ${f}\n`);
  io.out(`server certificate names: ${sans.join(', ')}\n`);
  io.out(`Give ${dir}/ca.pem to agents (--ca). Keep ca.key secret.\n`);
  return 0;
}
