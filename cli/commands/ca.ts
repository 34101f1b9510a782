/** `handrail ca init|rotate|status`: the coordinator CA, its server certificate, and a CA roll-over. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CA_FILES, CA_NEXT_FILES, caSummary, initCa, planCaRotation } from '../../coordinator/pki/ca.js';
import { AuditEvents } from '../../coordinator/audit/events.js';
import { withDataDir } from '../data-dir.js';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import type { CliIo } from '../io.js';
import { bool, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR, JSON_OUTPUT } from '../settings.js';

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

export const caRotate: CommandSpec = {
  name: 'ca rotate',
  usage: 'ca rotate [--certs-dir DIR] [--data-dir DIR]',
  summary:
    'Plan a CA roll-over: make the next CA (ca-next.pem, ca-next.key) beside the current one. From its next start the coordinator accepts agent certificates of both CAs (the overlap). `ca status` shows what is done and what is left.',
  options: { 'certs-dir': CERTS_DIR, 'data-dir': DATA_DIR, days: { type: 'string', default: '3650', placeholder: 'DAYS', description: 'lifetime of the next CA' } },
};

export const caStatus: CommandSpec = {
  name: 'ca status',
  usage: 'ca status [--certs-dir DIR] [--json]',
  summary: 'Show the CA, the next CA of a planned roll-over, and the roll-over steps done and left.',
  options: { 'certs-dir': CERTS_DIR, json: JSON_OUTPUT },
};

export async function runCaRotate(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = str(p.values, 'certs-dir') as string;
  const days = Number(str(p.values, 'days'));
  if (!Number.isInteger(days) || days < 30 || days > 7300) throw new UsageError('--days must be a whole number of days from 30 to 7300');
  await refuseKeysInWorkTree([join(dir, CA_NEXT_FILES.caKey)], false);
  return withDataDir(p, io, async (data) => {
    const plan = await planCaRotation(dir, io.now(), days);
    await data.db.write((tx) =>
      data.audit.append(tx, {
        type: AuditEvents.caRotationPlanned,
        actor: { kind: 'cli', id: io.env['USER'] ?? 'cli' },
        data: { currentFingerprint256: plan.current.fingerprint256, nextFingerprint256: plan.next.fingerprint256, nextSubject: plan.next.subject, nextNotAfter: plan.next.notAfter },
      }),
    );
    io.out(`next CA written to ${join(dir, CA_NEXT_FILES.caCert)} (key ${join(dir, CA_NEXT_FILES.caKey)}, 0600)\n`);
    io.out(`  fingerprint ${plan.next.fingerprint256}, valid until ${plan.next.notAfter}\n`);
    io.out('restart the coordinator: it then accepts agent certificates of both CAs. `handrail ca status` shows the steps left.\n');
    return 0;
  });
}

/** The steps of a roll-over, in order, and whether each is done (pure: from what the certs dir holds). */
export function caRollOverSteps(hasNext: boolean): Array<{ step: string; done: boolean }> {
  return [
    { step: 'next CA created (ca rotate)', done: hasNext },
    { step: 'coordinator trusts agent certificates of both CAs (after its restart)', done: hasNext },
    { step: 'agents receive the CA bundle over their stream and trust both CAs (not built yet: agents still pin ca.pem only)', done: false },
    { step: 'server certificate reissued by the next CA (not built yet)', done: false },
    { step: 'agent certificates issued by the next CA at renewal (not built yet)', done: false },
    { step: 'old CA retired (not built yet)', done: false },
  ];
}

export async function runCaStatus(p: ParsedCommand, io: CliIo): Promise<number> {
  const dir = str(p.values, 'certs-dir') as string;
  const current = await readFile(join(dir, CA_FILES.caCert), 'utf8').catch(() => {
    throw new UsageError(`no CA in ${dir} (${join(dir, CA_FILES.caCert)} is missing)`, 'pass --certs-dir, or run `handrail ca init`');
  });
  const next = await readFile(join(dir, CA_NEXT_FILES.caCert), 'utf8').catch(() => undefined);
  const steps = caRollOverSteps(next !== undefined);
  const status = { current: caSummary(current), next: next ? caSummary(next) : null, phase: next ? 'overlap' : 'none', steps };
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(status, null, 2) + '\n');
    return 0;
  }
  io.out(`CA       ${status.current.subject}  ${status.current.fingerprint256}  until ${status.current.notAfter}\n`);
  io.out(status.next ? `next CA  ${status.next.subject}  ${status.next.fingerprint256}  until ${status.next.notAfter}\n` : 'no CA roll-over planned (`handrail ca rotate` starts one)\n');
  if (next) for (const s of steps) io.out(`  [${s.done ? 'x' : ' '}] ${s.step}\n`);
  return 0;
}
