/**
 * `handrail ca init|rotate|switch|retire|status|issue-probe`: the coordinator CA, its server certificate,
 * and a CA roll-over with agents online (coordinator/pki/ca-rollover.ts has the file steps,
 * ca-rollover-decisions.ts when each may happen). A running coordinator takes each step up
 * from the certs dir within a second.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaRollover } from '../../coordinator/pki/ca-rollover.js';
import { agentsIssuedBy, decideCaRetire, decideCaSwitch, lackingBundle, type CaBundleHolder } from '../../coordinator/pki/ca-rollover-decisions.js';
import { names } from '../../coordinator/pki/dispatch-rotation.js';
import { AuditEvents } from '../../coordinator/audit/events.js';
import { withDataDir } from '../data-dir.js';
import { ALLOW_KEYS_IN_GIT, refuseKeysInWorkTree } from '../git-guard.js';
import type { CliIo } from '../io.js';
import { bool, durationSetting, list, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { CERTS_DIR, DATA_DIR, JSON_OUTPUT } from '../settings.js';
// Heavier modules (node-forge, SQLite, YAML, codecs) load with `await import` in the functions
// that use them, not with this module: `handrail --help` loads every command's module.

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
  const { CA_FILES, initCa } = await import('../../coordinator/pki/ca.js');
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

/** How often `ca switch` re-reads the acknowledgements while it waits. */
const POLL_MS = 200;

const actor = (io: CliIo): { kind: 'cli'; id: string } => ({ kind: 'cli', id: io.env['USER'] ?? 'cli' });

export const caRotate: CommandSpec = {
  name: 'ca rotate',
  usage: 'ca rotate [--certs-dir DIR] [--data-dir DIR] [--days 3650]',
  summary:
    'Start a CA roll-over: make the next CA (ca-next.pem, ca-next.key) beside the current one. The running coordinator then accepts agent certificates of both CAs and sends every agent the CA bundle (both CAs, signed by both CA keys). Next: `ca switch`.',
  options: { 'certs-dir': CERTS_DIR, 'data-dir': DATA_DIR, days: { type: 'string', default: '3650', placeholder: 'DAYS', description: 'lifetime of the next CA' } },
};

export const caSwitch: CommandSpec = {
  name: 'ca switch',
  usage: 'ca switch [--wait 2m] [--force]',
  summary:
    'Make the next CA the issuing one once every agent holds the CA bundle: a new server certificate (same names) from it, and enrollments and renewals from it. The old CA stays trusted until `ca retire`. Refused while an agent lacks the bundle (it could not connect afterwards).',
  options: {
    'certs-dir': CERTS_DIR,
    'data-dir': DATA_DIR,
    wait: { type: 'string', default: '2m', placeholder: 'DURATION', description: 'how long to wait for online agents to acknowledge the CA bundle' },
    force: { type: 'boolean', description: 'switch even though some agents lack the bundle (they are listed and audited; they must enroll again)' },
  },
};

export const caRetire: CommandSpec = {
  name: 'ca retire',
  usage: 'ca retire [--force]',
  summary:
    'Stop trusting the previous CA after `ca switch`: its key is deleted, its certificates are refused at the agent port, and agents get a bundle without it. Refused while an agent still holds a certificate the old CA issued (agents move to the new CA at their next renewal).',
  options: {
    'certs-dir': CERTS_DIR,
    'data-dir': DATA_DIR,
    force: { type: 'boolean', description: 'retire anyway (the agents still on the old CA are listed and audited; they must enroll again)' },
  },
};

export const caStatus: CommandSpec = {
  name: 'ca status',
  usage: 'ca status [--certs-dir DIR] [--data-dir DIR] [--json]',
  summary: 'Show the CAs (current, next, previous), the roll-over steps done and left, and the agents that lack the CA bundle or still hold a certificate from the old CA.',
  options: { 'certs-dir': CERTS_DIR, 'data-dir': DATA_DIR, json: JSON_OUTPUT },
};

export async function runCaRotate(p: ParsedCommand, io: CliIo): Promise<number> {
  const { CA_NEXT_FILES } = await import('../../coordinator/pki/ca.js');
  const { planCaRotation } = await import('../../coordinator/pki/ca-rollover.js');
  const dir = str(p.values, 'certs-dir') as string;
  const days = Number(str(p.values, 'days'));
  if (!Number.isInteger(days) || days < 30 || days > 7300) throw new UsageError('--days must be a whole number of days from 30 to 7300');
  await refuseKeysInWorkTree([join(dir, CA_NEXT_FILES.caKey)], false);
  return withDataDir(p, io, async (data) => {
    const plan = await planCaRotation(dir, io.now(), days);
    await data.db.write((tx) =>
      data.audit.append(tx, {
        type: AuditEvents.caRotationPlanned,
        actor: actor(io),
        data: { currentFingerprint256: plan.current.fingerprint256, nextFingerprint256: plan.next.fingerprint256, nextSubject: plan.next.subject, nextNotAfter: plan.next.notAfter, bundleVersion: plan.bundle.version },
      }),
    );
    if (plan.created) {
      io.out(`next CA written to ${join(dir, CA_NEXT_FILES.caCert)} (key ${join(dir, CA_NEXT_FILES.caKey)}, 0600)\n`);
      io.out(`  fingerprint ${plan.next.fingerprint256}, valid until ${plan.next.notAfter}\n`);
    } else {
      io.out(`the planned next CA ${plan.next.fingerprint256} is now published\n`);
    }
    io.out(`CA bundle version ${plan.bundle.version} (both CAs): the running coordinator sends it to every agent within a second.\n`);
    io.out('next: `handrail ca switch` once agents hold it (`handrail ca status` lists who does not)\n');
    return 0;
  });
}

export async function runCaSwitch(p: ParsedCommand, io: CliIo): Promise<number> {
  const { CA_FILES } = await import('../../coordinator/pki/ca.js');
  const { readRollover, switchCa } = await import('../../coordinator/pki/ca-rollover.js');
  const dir = str(p.values, 'certs-dir') as string;
  const waitMs = durationSetting(p, 'wait');
  const force = bool(p.values, 'force');
  const state = await readRollover(dir);
  if (state.phase !== 'planned') throw new UsageError(state.phase === 'switched' ? `the next CA already issues (${state.current.fingerprint256})` : 'no CA roll-over is planned', state.phase === 'switched' ? 'next: `handrail ca retire`' : 'start one with `handrail ca rotate`');
  const version = state.bundle?.version;
  if (version === undefined) throw new UsageError('the planned roll-over was never published to agents (no ca-bundle.json)', 'run `handrail ca rotate` again to publish it');
  return withDataDir(p, io, async (data) => {
    io.out(`waiting for agents to acknowledge CA bundle version ${version} (up to ${Math.round(waitMs / 1000)} s)\n`);
    const started = io.now();
    let shown = -1;
    for (;;) {
      const holders = await data.registry.caBundleHolders();
      const d = decideCaSwitch({ holders, version, waitedMs: io.now() - started, waitMs, force });
      if (d.kind === 'wait') {
        const online = d.lacking.filter((h) => h.online);
        if (online.length !== shown) io.out(`  ${online.length} online agent(s) to go: ${names(online)}\n`);
        shown = online.length;
        await sleep(POLL_MS);
        continue;
      }
      if (d.kind === 'refuse') {
        io.err(`handrail ca switch: not switching: ${d.reason}\n  the current CA still issues; run the command again to keep waiting\n`);
        return 1;
      }
      const done = await switchCa(dir, io.now());
      await data.db.write((tx) =>
        data.audit.append(tx, {
          type: AuditEvents.caSwitched,
          actor: actor(io),
          data: { currentFingerprint256: done.current.fingerprint256, previousFingerprint256: done.previous.fingerprint256, bundleVersion: version, serverNames: done.sans, forced: d.forced, agentsLacking: d.lacking.map((h) => h.agentId) },
        }),
      );
      if (d.forced) io.err(`handrail ca switch: switched although ${d.lacking.length} agent(s) lack the CA bundle (they must enroll again): ${names(d.lacking)}\n`);
      io.out(`the next CA ${done.current.fingerprint256} now issues: ${join(dir, CA_FILES.caCert)} and a new server certificate (${done.sans.join(', ')})\n`);
      io.out(`the previous CA ${done.previous.fingerprint256} stays trusted as ca-previous.pem; agents move to the new CA at their next renewal\n`);
      io.out('give the new ca.pem to agents you enroll from now on; next: `handrail ca retire` once `handrail ca status` shows no agent on the old CA\n');
      return 0;
    }
  });
}

export async function runCaRetire(p: ParsedCommand, io: CliIo): Promise<number> {
  const { readRollover, retireCa } = await import('../../coordinator/pki/ca-rollover.js');
  const dir = str(p.values, 'certs-dir') as string;
  const force = bool(p.values, 'force');
  const state = await readRollover(dir);
  if (state.phase !== 'switched') throw new UsageError('there is no previous CA to retire', state.phase === 'planned' ? 'switch to the next CA first with `handrail ca switch`' : 'see `handrail ca status`');
  const previousPem = await readFile(join(dir, 'ca-previous.pem'), 'utf8');
  return withDataDir(p, io, async (data) => {
    const onOld = agentsIssuedBy(await data.registry.caBundleHolders(), previousPem);
    const d = decideCaRetire(onOld, force);
    if (d.kind === 'refuse') {
      io.err(`handrail ca retire: not retiring ${state.previous?.fingerprint256 ?? 'the previous CA'}: ${d.reason}\n  wait and run it again, or add --force\n`);
      return 1;
    }
    const done = await retireCa(dir, io.now());
    await data.db.write((tx) =>
      data.audit.append(tx, {
        type: AuditEvents.caRetired,
        actor: actor(io),
        data: { retiredFingerprint256: done.retired.fingerprint256, currentFingerprint256: state.current.fingerprint256, bundleVersion: done.bundle.version, forced: d.forced, agentsLeftBehind: d.leftBehind.map((h) => h.agentId) },
      }),
    );
    io.out(`retired the CA ${done.retired.fingerprint256} (its key deleted; its certificate kept as ${join(dir, done.keptAs)} for audit exports)\n`);
    io.out(`agents get CA bundle version ${done.bundle.version} with ${state.current.fingerprint256} alone; certificates of the old CA are refused from now on\n`);
    if (d.forced) io.err(`handrail ca retire: ${d.leftBehind.length} agent(s) held a certificate of the retired CA and must enroll again: ${names(d.leftBehind)}\n`);
    return 0;
  });
}

export interface CaAgentsView {
  readonly total: number;
  readonly lackingBundle: readonly CaBundleHolder[];
  readonly onOldCa: readonly CaBundleHolder[];
}

/** The steps of a roll-over, in order, and whether each is done (pure). `agents` is null without a store. */
export function caRollOverSteps(state: Pick<CaRollover, 'phase'>, agents: Pick<CaAgentsView, 'lackingBundle' | 'onOldCa'> | null): Array<{ step: string; done: boolean }> {
  const planned = state.phase !== 'none';
  const switched = state.phase === 'switched';
  const known = (n: number | undefined): string => (n === undefined ? ' (no store: pass --data-dir)' : n === 0 ? '' : ` (${n} agent(s) left)`);
  return [
    { step: 'next CA created and trusted beside the current one (ca rotate)', done: planned },
    { step: `agents hold the CA bundle with both CAs${known(agents?.lackingBundle.length)}`, done: planned && agents !== null && agents.lackingBundle.length === 0 },
    { step: 'the next CA issues: server certificate, enrollments, renewals (ca switch)', done: switched },
    { step: `agents renewed onto the new CA${switched ? known(agents?.onOldCa.length) : ''}`, done: switched && agents !== null && agents.onOldCa.length === 0 },
    { step: 'old CA retired (ca retire)', done: false },
  ];
}

export async function runCaStatus(p: ParsedCommand, io: CliIo): Promise<number> {
  const { STORE_FILE } = await import('../../coordinator/data-dir.js');
  const { CA_FILES } = await import('../../coordinator/pki/ca.js');
  const { readRollover } = await import('../../coordinator/pki/ca-rollover.js');
  const dir = str(p.values, 'certs-dir') as string;
  const state = await readRollover(dir).catch(() => {
    throw new UsageError(`no CA in ${dir} (${join(dir, CA_FILES.caCert)} is missing or unreadable)`, 'pass --certs-dir, or run `handrail ca init`');
  });
  const dataDir = str(p.values, 'data-dir') as string;
  const hasStore = await stat(join(dataDir, STORE_FILE)).then((s) => s.isFile(), () => false);
  let agents: CaAgentsView | null = null;
  if (hasStore) {
    agents = await withDataDir(p, io, async (data) => {
      const holders = await data.registry.caBundleHolders();
      const previousPem = state.phase === 'switched' ? await readFile(join(dir, 'ca-previous.pem'), 'utf8') : undefined;
      return { total: holders.length, lackingBundle: state.bundle ? lackingBundle(holders, state.bundle.version) : [], onOldCa: previousPem ? agentsIssuedBy(holders, previousPem) : [] };
    });
  }
  const steps = caRollOverSteps(state, agents);
  const brief = (h: CaBundleHolder): { agentId: string; name: string; online: boolean; bundleVersion: number | null } => ({ agentId: h.agentId, name: h.name, online: h.online, bundleVersion: h.version });
  const status = {
    phase: state.phase,
    current: state.current,
    next: state.next,
    previous: state.previous,
    bundleVersion: state.bundle?.version ?? null,
    agents: agents ? { total: agents.total, lackingBundle: agents.lackingBundle.map(brief), onOldCa: agents.onOldCa.map(brief) } : null,
    steps,
  };
  if (bool(p.values, 'json')) {
    io.out(JSON.stringify(status, null, 2) + '\n');
    return 0;
  }
  io.out(`CA           ${state.current.subject}  ${state.current.fingerprint256}  until ${state.current.notAfter}\n`);
  if (state.next) io.out(`next CA      ${state.next.subject}  ${state.next.fingerprint256}  until ${state.next.notAfter}\n`);
  if (state.previous) io.out(`previous CA  ${state.previous.subject}  ${state.previous.fingerprint256}  until ${state.previous.notAfter}\n`);
  if (state.phase === 'none') {
    io.out(state.bundle ? `no CA roll-over under way (agents are sent CA bundle version ${state.bundle.version}); \`handrail ca rotate\` starts one\n` : 'no CA roll-over planned (`handrail ca rotate` starts one)\n');
    return 0;
  }
  io.out(`CA bundle version ${state.bundle?.version ?? '(not published: run `handrail ca rotate` again)'}\n`);
  for (const s of steps) io.out(`  [${s.done ? 'x' : ' '}] ${s.step}\n`);
  if (agents && agents.lackingBundle.length > 0) io.out(`lacking the CA bundle: ${names(agents.lackingBundle, 50)}\n`);
  if (agents && agents.onOldCa.length > 0) io.out(`still on the old CA: ${names(agents.onOldCa, 50)}\n`);
  return 0;
}

export const caIssueProbe: CommandSpec = {
  name: 'ca issue-probe',
  usage: 'ca issue-probe --out DIR [--name NAME] [--ttl 90d]',
  summary:
    'Issue a client certificate for a monitoring probe: with it, grpc.health.v1 and server reflection on the agent port answer (grpcurl, buf curl, Prometheus blackbox); the agent stream refuses it. Writes probe.pem, probe.key (0600) and ca.pem into DIR.',
  options: {
    'certs-dir': CERTS_DIR,
    'data-dir': DATA_DIR,
    out: { type: 'string', placeholder: 'DIR', description: 'directory for probe.pem, probe.key and ca.pem (created 0700)' },
    name: { type: 'string', default: 'monitoring', placeholder: 'NAME', description: 'who probes (letters, digits, . _ -), recorded in the certificate and the audit record' },
    ttl: { type: 'string', default: '90d', placeholder: 'DURATION', description: 'certificate lifetime (at most 400d)' },
  },
};

export async function runCaIssueProbe(p: ParsedCommand, io: CliIo): Promise<number> {
  const { issueProbeCertificate, loadCa } = await import('../../coordinator/pki/ca.js');
  const out = str(p.values, 'out');
  if (!out) throw new UsageError('--out DIR is required', 'e.g. handrail ca issue-probe --out /etc/prometheus/handrail-probe');
  const name = str(p.values, 'name') as string;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new UsageError(`--name "${name.slice(0, 80)}" is invalid`, 'use letters, digits, . _ - (at most 63 characters)');
  const ttlMs = durationSetting(p, 'ttl', 60_000);
  if (ttlMs > 400 * 86_400_000) throw new UsageError(`--ttl ${str(p.values, 'ttl') ?? ''} is longer than 400 days`, 'issue a shorter one and renew it');
  await refuseKeysInWorkTree([join(out, 'probe.key')], false);
  const dir = str(p.values, 'certs-dir') as string;
  const ca = await loadCa(dir);
  return withDataDir(p, io, async (data) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = io.now();
    const cert = issueProbeCertificate(ca, name, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { notBefore: now - 60_000, notAfter: now + ttlMs });
    await mkdir(out, { recursive: true, mode: 0o700 });
    await writeFile(join(out, 'probe.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    await chmod(join(out, 'probe.key'), 0o600);
    await writeFile(join(out, 'probe.pem'), cert.pem, { mode: 0o644 });
    await writeFile(join(out, 'ca.pem'), ca.trustPem, { mode: 0o644 });
    await data.db.write((tx) =>
      data.audit.append(tx, {
        type: AuditEvents.caProbeIssued,
        actor: actor(io),
        data: { name, certificateSerial: cert.serial, certificateFingerprint256: cert.fingerprint256, notAfter: new Date(cert.notAfter).toISOString() },
      }),
    );
    io.out(`probe certificate for "${name}" in ${out}: probe.pem, probe.key (0600), ca.pem; valid until ${new Date(cert.notAfter).toISOString()}\n`);
    io.out(`  e.g. buf curl --protocol grpc --cacert ${join(out, 'ca.pem')} --cert ${join(out, 'probe.pem')} --key ${join(out, 'probe.key')} https://COORDINATOR:7443/grpc.health.v1.Health/Check\n`);
    return 0;
  });
}
