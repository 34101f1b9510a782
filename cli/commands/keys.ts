/**
 * `handrail keys status|rotate dispatch|retire dispatch`: the coordinator's dispatch key, rotated
 * without a step refused as unknown_key. These act on the data dir; a running coordinator sees
 * the change on its next store poll (within a second), sends the new key set to every live
 * agent stream, and records each agent's acknowledgement, which is what `rotate` waits for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { withDataDir } from '../data-dir.js';
import { AuditEvents } from '../../coordinator/audit/events.js';
import { agentsLacking, decideRetire, decideSwitch, names, type DispatchKeyHolder } from '../../coordinator/pki/dispatch-rotation.js';
import { dispatchSetVersion, type PublicKeyRecord } from '../../coordinator/pki/keyring.js';
import type { DataDir } from '../../coordinator/data-dir.js';
import { printTable, type CliIo } from '../io.js';
import { bool, durationSetting, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR, JSON_OUTPUT } from '../settings.js';

/** How often `rotate` re-reads the acknowledgements while it waits. */
const POLL_MS = 200;

export const keysStatus: CommandSpec = {
  name: 'keys status',
  usage: 'keys status [--json]',
  summary: 'Show the signing keys (active, published, previous, retired), the dispatch key set version and the agents that do not hold it yet.',
  options: { 'data-dir': DATA_DIR, json: JSON_OUTPUT },
};

export const keysRotateDispatch: CommandSpec = {
  name: 'keys rotate dispatch',
  usage: 'keys rotate dispatch [--wait 2m] [--force]',
  summary:
    'Publish a new dispatch key to every agent and switch step signing to it once every online agent has acknowledged it (offline agents take it when they reconnect). Run again to resume a rotation that timed out. The old key stays trusted until `keys retire dispatch`.',
  options: {
    'data-dir': DATA_DIR,
    wait: { type: 'string', default: '2m', placeholder: 'DURATION', description: 'how long to wait for online agents to acknowledge the new key' },
    force: { type: 'boolean', description: 'after --wait, switch even though some online agents lack the new key (they are listed and audited; their steps will be refused until they reconnect)' },
  },
};

export const keysRetireDispatch: CommandSpec = {
  name: 'keys retire dispatch',
  usage: 'keys retire dispatch [--request-ttl 10m] [--force]',
  summary:
    'Stop trusting the dispatch keys before the active one. Refused while an enrolled agent does not hold the active key yet, or while steps signed with the old key may still be delivered.',
  options: {
    'data-dir': DATA_DIR,
    'request-ttl': { type: 'string', env: 'HANDRAIL_REQUEST_TTL', configKey: 'requestTtl', default: '10m', placeholder: 'DURATION', description: "the coordinator's --request-ttl: how long a signed step stays deliverable" },
    force: { type: 'boolean', description: 'retire anyway (agents that lack the active key must then enroll again, or be started with --allow-ca-key-recovery)' },
  },
};

type KeyState = 'active' | 'published' | 'previous' | 'retired';

function stateOf(k: PublicKeyRecord, activeId: string): KeyState {
  if (k.retiredAt !== null) return 'retired';
  if (k.keyId === activeId) return 'active';
  return k.signingSince === null ? 'published' : 'previous';
}

const actor = (io: CliIo): { kind: 'cli'; id: string } => ({ kind: 'cli', id: io.env['USER'] ?? 'cli' });
const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

export async function runKeysStatus(p: ParsedCommand, io: CliIo): Promise<number> {
  return withDataDir(p, io, async (data) => {
    const keys = await data.keyring.publicKeys();
    const dispatch = keys.filter((k) => k.purpose === 'dispatch');
    const version = dispatchSetVersion(dispatch);
    const holders = await data.registry.dispatchKeyHolders();
    const lacking = agentsLacking(holders, version, 'all');
    const rows = keys.map((k) => ({ keyId: k.keyId, purpose: k.purpose, state: stateOf(k, data.keyring.active(k.purpose).keyId), createdAt: iso(k.createdAt), signingSince: iso(k.signingSince), retiredAt: iso(k.retiredAt) }));
    if (bool(p.values, 'json')) {
      io.out(JSON.stringify({ keys: rows, dispatchKeySetVersion: version, agents: holders.length, agentsLacking: lacking }, null, 2) + '\n');
      return 0;
    }
    printTable(io, ['KEY', 'PURPOSE', 'STATE', 'CREATED', 'SIGNING SINCE'], rows.map((r) => [r.keyId, r.purpose, r.state, r.createdAt, r.signingSince]));
    io.out(`dispatch key set version ${version}: ${holders.length - lacking.length} of ${holders.length} agent(s) hold it\n`);
    if (lacking.length > 0) io.out(`not yet: ${names(lacking, 50)}\n`);
    return 0;
  });
}

export async function runKeysRotateDispatch(p: ParsedCommand, io: CliIo): Promise<number> {
  const waitMs = durationSetting(p, 'wait');
  const force = bool(p.values, 'force');
  return withDataDir(p, io, async (data) => {
    const previous = data.keyring.active('dispatch');
    const pending = await publishedKey(data, io);
    io.out(`waiting for online agents to acknowledge dispatch key ${pending.keyId} (key set version ${pending.createdAt}, up to ${Math.round(waitMs / 1000)} s)\n`);
    const started = io.now();
    let shown = -1;
    for (;;) {
      const holders = await data.registry.dispatchKeyHolders();
      const d = decideSwitch({ holders, version: pending.createdAt, waitedMs: io.now() - started, waitMs, force });
      if (d.kind === 'wait') {
        if (d.lacking.length !== shown) io.out(`  ${d.lacking.length} online agent(s) to go: ${names(d.lacking)}\n`);
        shown = d.lacking.length;
        await sleep(POLL_MS);
        continue;
      }
      if (d.kind === 'timed_out') {
        io.err(`handrail keys rotate dispatch: ${d.lacking.length} online agent(s) did not acknowledge ${pending.keyId} within ${Math.round(waitMs / 1000)} s: ${names(d.lacking)}\n`);
        io.err(`  signing still uses ${previous.keyId}; run the command again to keep waiting, or add --force to switch anyway (those agents refuse steps until they reconnect)\n`);
        return 1;
      }
      const offline = agentsLacking(holders, pending.createdAt, 'all').filter((h) => !h.online);
      await data.keyring.activate(pending.keyId, io.now(), (tx) =>
        data.audit
          .append(tx, {
            type: AuditEvents.dispatchKeyActivated,
            actor: actor(io),
            data: { keyId: pending.keyId, previousKeyId: previous.keyId, version: pending.createdAt, forced: d.forced, agentsLacking: d.lacking.map((h) => h.agentId) },
          })
          .then(() => undefined),
      );
      if (d.forced) io.err(`handrail keys rotate dispatch: switched although ${d.lacking.length} online agent(s) lack the new key: ${names(d.lacking)}\n`);
      io.out(`steps are now signed with ${pending.keyId} (was ${previous.keyId}, still trusted until \`handrail keys retire dispatch\`)\n`);
      if (offline.length > 0) io.out(`${offline.length} offline agent(s) take the new key when they reconnect: ${names(offline)}\n`);
      return 0;
    }
  });
}

/** The key this rotation switches to: the one already published (a resumed rotation), or a new one. */
async function publishedKey(data: DataDir, io: CliIo): Promise<{ keyId: string; createdAt: number }> {
  const waiting = (await data.keyring.publicKeys('dispatch')).find((k) => k.retiredAt === null && k.signingSince === null);
  if (waiting) {
    io.out(`resuming the rotation to dispatch key ${waiting.keyId}, published ${iso(waiting.createdAt)}\n`);
    return waiting;
  }
  const online = (await data.registry.dispatchKeyHolders()).filter((h) => h.online).length;
  let published: { keyId: string; createdAt: number } | undefined;
  await data.keyring.publish('dispatch', io.now(), async (tx, key) => {
    published = key;
    await data.audit.append(tx, { type: AuditEvents.dispatchKeyPublished, actor: actor(io), data: { keyId: key.keyId, version: key.createdAt, onlineAgents: online } });
  });
  if (!published) throw new Error('publishing the dispatch key recorded nothing');
  io.out(`published dispatch key ${published.keyId}; the coordinator sends it to ${online} online agent(s)\n`);
  return published;
}

export async function runKeysRetireDispatch(p: ParsedCommand, io: CliIo): Promise<number> {
  const requestTtlMs = durationSetting(p, 'request-ttl');
  const force = bool(p.values, 'force');
  return withDataDir(p, io, async (data) => {
    const keys = await data.keyring.publicKeys('dispatch');
    const activeId = data.keyring.active('dispatch').keyId;
    const active = keys.find((k) => k.keyId === activeId);
    const old = keys.filter((k) => stateOf(k, activeId) === 'previous');
    if (!active || old.length === 0) {
      io.out(`nothing to retire: ${activeId} is the only dispatch key in use\n`);
      return 0;
    }
    const holders: DispatchKeyHolder[] = await data.registry.dispatchKeyHolders();
    const d = decideRetire({ holders, activeVersion: active.createdAt, signingSince: active.signingSince, now: io.now(), requestTtlMs, force });
    if (d.kind === 'refuse') {
      io.err(`handrail keys retire dispatch: not retiring ${old.map((k) => k.keyId).join(', ')}: ${d.reason}\n  wait and run it again, or add --force\n`);
      return 1;
    }
    const ids = old.map((k) => k.keyId);
    const version = await data.keyring.retire(ids, io.now(), (tx, at) =>
      data.audit
        .append(tx, { type: AuditEvents.dispatchKeyRetired, actor: actor(io), data: { keyIds: ids, version: at, forced: d.forced, agentsLacking: d.lacking.map((h) => h.agentId) } })
        .then(() => undefined),
    );
    io.out(`retired ${ids.join(', ')}; agents get dispatch key set version ${version} with ${activeId} alone\n`);
    if (d.forced) io.err(`handrail keys retire dispatch: ${d.lacking.length} agent(s) did not hold ${activeId} and now trust no signer: ${names(d.lacking)}\n`);
    return 0;
  });
}
