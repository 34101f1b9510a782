import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { cli } from '../helpers/processes.js';
import { caFromPem, certFor } from '../helpers/forged-pki.js';
import { TestClock } from '../helpers/test-clock.js';
import { splitPems } from '../../core/ca-bundle.js';
import { StateDir } from '../../agent/state-dir.js';
import { Database } from '../../coordinator/store/database.js';

interface Holder {
  agentId: string;
  name: string;
  online: boolean;
}
interface CaStatus {
  phase: 'none' | 'planned' | 'switched';
  current: { fingerprint256: string };
  next: { fingerprint256: string } | null;
  previous: { fingerprint256: string } | null;
  bundleVersion: number | null;
  agents: { total: number; lackingBundle: Holder[]; onOldCa: Holder[] } | null;
  steps: Array<{ step: string; done: boolean }>;
}

/**
 * A CA roll-over from end to end with real agents online (real mTLS, child processes): the
 * bundle of both CAs reaches every agent (and an agent that was offline, when it returns);
 * issuing switches to the next CA only once they all hold it; agents renew onto the new CA
 * and a new agent enrolls under it; the old CA is retired only once no agent depends on it,
 * after which its certificates are refused and agents drop it. A step runs after every phase
 * and no agent is lost.
 */
describe('CA roll-over with agents online', () => {
  let fleet: Fleet;
  const ids = new Map<string, string>();
  let oldCaPem: string;
  let oldCaKeyPem: string;
  let nextCaPem: string;
  /** The first agents' clocks: moved to their renewal point once the new CA issues, instead of waiting for it. */
  const clocks = new Map<string, TestClock>();

  const status = async (): Promise<CaStatus> => {
    const r = await fleet.admin(['ca', 'status', '--certs-dir', fleet.certsDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as CaStatus;
  };
  const ca = (args: readonly string[]): ReturnType<typeof cli> => fleet.admin(['ca', ...args, '--certs-dir', fleet.certsDir]);
  const stateOf = (name: string): StateDir => new StateDir(fleet.agents.get(name)!.stateDir);
  const trustedBy = async (name: string): Promise<string[]> => splitPems(await readFile(stateOf(name).caFile, 'utf8')).map((p) => new X509Certificate(p).fingerprint256);
  const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;
  const issuerOf = async (name: string): Promise<string> => {
    const cert = new X509Certificate((await stateOf(name).readCredentials()).certPem);
    for (const pem of [oldCaPem, nextCaPem]) if (cert.checkIssued(new X509Certificate(pem))) return fp(pem);
    return 'unknown';
  };
  /** Runs one step on every agent named and expects it to succeed. */
  const stepOnAll = async (names: readonly string[]): Promise<void> => {
    const r = await fleet.exec(names.map((n) => ids.get(n)!), { argv: ['true'] });
    expect(r.state, JSON.stringify(r)).toBe('succeeded');
    expect(r.nodes.map((n) => n.state)).toEqual(names.map(() => 'succeeded'));
  };
  const auditTypes = async (): Promise<string[]> => {
    const db = await Database.open(join(fleet.dataDir, 'handrail.db'), { readonly: true });
    try {
      const rows = await db.all<{ payload: Buffer | string }>('SELECT payload FROM audit_records ORDER BY seq');
      return rows.map((r) => (JSON.parse(r.payload.toString()) as { type: string }).type);
    } finally {
      await db.close();
    }
  };
  /** Presents a client certificate of `caPem`'s CA for an enrolled agent id; resolves with the reason the coordinator logs, or 'accepted'. */
  const presentCertificate = async (issuer: { caPem: string; keyPem: string }, agentId: string): Promise<string> => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Date.now();
    const cert = certFor(caFromPem(issuer.caPem, issuer.keyPem), publicKey.export({ type: 'spki', format: 'pem' }).toString(), agentId, { notBefore: now - 60_000, notAfter: now + 3_600_000 });
    const proc = fleet.coordinator!.proc;
    const seen = proc.events('gateway.connection_refused').length;
    const socket = connect({ host: '127.0.0.1', port: fleet.coordinator!.grpcPort, ca: await readFile(fleet.caFile, 'utf8'), cert, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), ALPNProtocols: ['h2'], servername: 'handrail-coordinator' });
    socket.on('error', () => undefined);
    const line = await proc.waitForLog((l) => l.event === 'gateway.connection_refused' && proc.events('gateway.connection_refused').indexOf(l) >= seen);
    socket.destroy();
    return String(line['reason']);
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    // Short certificates, so agents renew (at two thirds) within the test.
    await fleet.startCoordinator(['--agent-cert-ttl', '45s']);
    await Promise.all(
      ['ca-a', 'ca-b', 'ca-sleeper'].map(async (name) => {
        const clock = await TestClock.create(fleet.dir, name);
        clocks.set(name, clock);
        await fleet.startAgent(name, { env: clock.env });
        ids.set(name, await fleet.waitOnline(name));
      }),
    );
    // Offline from before the roll-over starts: the switch must wait for it.
    await fleet.agents.get('ca-sleeper')!.proc.stop();
    oldCaPem = await readFile(fleet.caFile, 'utf8');
    oldCaKeyPem = await readFile(join(fleet.certsDir, 'ca.key'), 'utf8');
    await fleet.ensureAdmin();
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('rotate: the running coordinator trusts both CAs and sends the signed bundle to every online agent', async () => {
    expect((await status()).phase).toBe('none');
    const r = await ca(['rotate']);
    expect(r.code, r.stderr).toBe(0);
    nextCaPem = await readFile(join(fleet.certsDir, 'ca-next.pem'), 'utf8');
    const s = await status();
    expect(s.phase).toBe('planned');
    expect(s.next?.fingerprint256).toBe(fp(nextCaPem));
    const coordinator = fleet.coordinator!.proc;
    await coordinator.waitForLog((l) => l.event === 'gateway.ca_bundle_sent' && l['version'] === s.bundleVersion);
    for (const name of ['ca-a', 'ca-b']) {
      const agent = fleet.agents.get(name)!.proc;
      await agent.waitForLog((l) => l.event === 'agent.ca_bundle_updated' && l['version'] === s.bundleVersion, undefined, `${name} to take the bundle`);
      expect((await trustedBy(name)).sort()).toEqual([fp(oldCaPem), fp(nextCaPem)].sort());
      expect((await stateOf(name).readIdentity()).caBundleVersion).toBe(s.bundleVersion);
    }
    await coordinator.waitForLog((l) => l.event === 'agent.ca_bundle_held' && l['agentId'] === ids.get('ca-b'));
    const after = await status();
    expect(after.agents?.lackingBundle.map((h) => h.name)).toEqual(['ca-sleeper']);
    expect(after.steps.find((x) => x.step.startsWith('agents hold'))?.done).toBe(false);
    // A second rotate while one is planned is refused in one line.
    const again = await ca(['rotate']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/a CA roll-over is already planned/);
    // Before the switch an agent certificate of the next CA already passes the chain check (the registry then refuses it: an unknown serial).
    expect(await presentCertificate({ caPem: nextCaPem, keyPem: await readFile(join(fleet.certsDir, 'ca-next.key'), 'utf8') }, ids.get('ca-a')!)).toBe('unknown_certificate');
    await stepOnAll(['ca-a', 'ca-b']);
  });

  it('switch: refused while an offline agent lacks the bundle; done once it returned and took it', async () => {
    const refused = await ca(['switch', '--wait', '0s']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/1 offline agent\(s\) do not hold the CA bundle .*ca-sleeper/);
    expect((await status()).phase).toBe('planned');

    await fleet.startAgent('ca-sleeper', { token: null, env: clocks.get('ca-sleeper')!.env });
    await fleet.waitOnline('ca-sleeper');
    await fleet.agents.get('ca-sleeper')!.proc.waitForLog((l) => l.event === 'agent.ca_bundle_updated' && l['source'] === 'welcome');
    const r = await ca(['switch', '--wait', '40s']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const s = await status();
    expect(s.phase).toBe('switched');
    expect(s.current.fingerprint256).toBe(fp(nextCaPem));
    expect(s.previous?.fingerprint256).toBe(fp(oldCaPem));
    // The server certificate now comes from the new CA, with the same names.
    const server = new X509Certificate(await readFile(join(fleet.certsDir, 'server.pem'), 'utf8'));
    expect(server.checkIssued(new X509Certificate(nextCaPem))).toBe(true);
    expect(server.subjectAltName).toContain('DNS:handrail-coordinator');
    // Right after the switch the agents still hold certificates of the old CA: retiring it now is refused.
    const early = await ca(['retire']);
    expect(early.code, early.stdout).toBe(1);
    expect(early.stderr).toMatch(/\d agent\(s\) still hold a certificate from the old CA and would be locked out: .*ca-/);
    expect((await status()).phase).toBe('switched');
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.ca_reloaded' && l['issuing'] === fp(nextCaPem));
    await stepOnAll(['ca-a', 'ca-b', 'ca-sleeper']);
  });

  it('renewals and new enrollments come from the new CA; retiring waits for them', async () => {
    // Each agent's clock moves to just past its certificate's renewal point (a third of its
    // life left), where the agent itself renews at its next heartbeat, instead of the test
    // waiting up to 30 s for that point; once renewed, its clock is put back.
    for (const name of ['ca-a', 'ca-b', 'ca-sleeper']) {
      const { notBefore, notAfter } = await stateOf(name).readCredentials();
      await clocks.get(name)!.set(Math.max(0, notAfter - (notAfter - notBefore) / 3 + 1_000 - Date.now()));
    }
    for (const name of ['ca-a', 'ca-b', 'ca-sleeper']) {
      const agent = fleet.agents.get(name)!.proc;
      await fleetRenewedOnto(name, fp(nextCaPem));
      await clocks.get(name)!.set(0);
      // It reconnects with the new certificate, through the new server certificate.
      const renewedAt = agent.logs.lastIndexOf(agent.events('agent.renewed').at(-1)!);
      await agent.waitForLog((l) => l.event === 'agent.connected' && agent.logs.indexOf(l) > renewedAt, undefined, `${name} to reconnect`);
    }
    await fleet.startAgent('ca-late');
    ids.set('ca-late', await fleet.waitOnline('ca-late'));
    expect(await issuerOf('ca-late')).toBe(fp(nextCaPem));
    const s = await status();
    expect(s.agents?.onOldCa).toEqual([]);
    await stepOnAll(['ca-a', 'ca-b', 'ca-sleeper', 'ca-late']);
  });

  it('retire: old-CA certificates are refused, agents drop the old CA, and steps keep running everywhere', async () => {
    const r = await ca(['retire']);
    expect(r.code, r.stderr).toBe(0);
    const s = await status();
    expect(s.phase).toBe('none');
    expect(s.previous).toBeNull();
    for (const name of ['ca-a', 'ca-b', 'ca-sleeper', 'ca-late']) {
      const agent = fleet.agents.get(name)!.proc;
      await agent.waitForLog((l) => l.event === 'agent.ca_bundle_updated' && l['version'] === s.bundleVersion, undefined, `${name} to drop the old CA`);
      expect(await trustedBy(name)).toEqual([fp(nextCaPem)]);
    }
    await fleet.coordinator!.proc.waitForLog((l) => l.event === 'gateway.ca_reloaded' && l['trusted'] === 1);
    // A certificate of the retired CA (the test kept its key) no longer passes the chain check.
    expect(await presentCertificate({ caPem: oldCaPem, keyPem: oldCaKeyPem }, ids.get('ca-a')!)).toBe('untrusted');
    await stepOnAll(['ca-a', 'ca-b', 'ca-sleeper', 'ca-late']);
    // No agent was lost: every one is still online, none was refused at the door.
    const listed = await fleet.admin(['agents', 'ls', '--json']);
    const agents = (JSON.parse(listed.stdout) as { agents: Array<{ name: string; status: string }> }).agents;
    expect(agents.map((a) => [a.name, a.status]).filter(([, st]) => st !== 'online')).toEqual([]);
    expect(agents).toHaveLength(4);
    const refusedAgents = fleet.coordinator!.proc.events('gateway.connection_refused').filter((l) => [...ids.values()].includes(String(l['agentId'])) && l['reason'] !== 'unknown_certificate');
    expect(refusedAgents).toEqual([]);
    const types = await auditTypes();
    expect(types.filter((t) => t.startsWith('ca.'))).toEqual(['ca.rotation_planned', 'ca.switched', 'ca.retired']);
  });

  it('the audit log across the roll-over verifies offline with the old CA pinned: the export carries both CAs, the signed roll-over records introduce the new one', async () => {
    const bundle = join(fleet.dir, 'audit-after-rollover.jsonl');
    const exported = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', bundle]);
    expect(exported.code, exported.stderr).toBe(0);
    const header = JSON.parse((await readFile(bundle, 'utf8')).split('\n')[0]!) as { ca: string; cas: string[] };
    const der = (pem: string): string => new X509Certificate(pem).raw.toString('base64');
    expect(header.ca).toBe(der(nextCaPem));
    expect(header.cas).toEqual([der(nextCaPem), der(oldCaPem)]);
    const verified = await fleet.admin(['audit', 'verify', bundle, '--trust-ca-fingerprint', fp(oldCaPem), '--json']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const report = JSON.parse(verified.stdout) as { ok: boolean; stepResults: number; trust: { cas: Array<{ fingerprint256: string; how: string; event: string | null }> } };
    expect(report.stepResults).toBeGreaterThan(4);
    expect(report.trust.cas.map((c) => [c.fingerprint256, c.how, c.event])).toEqual([
      [fp(oldCaPem), 'pinned', null],
      [fp(nextCaPem), 'rotation', 'ca.rotation_planned'],
    ]);
    // The live store the same way (every CA from the certs dir).
    const live = await fleet.admin(['audit', 'verify', '--certs-dir', fleet.certsDir]);
    expect(live.code, live.stdout + live.stderr).toBe(0);
    expect(live.stdout).toContain(`trusted CA ${fp(nextCaPem)} (introduced at record `);
  });

  it('a backup taken after the roll-over restores: its audit log verifies against the CAs it carries (the retired one too)', async () => {
    const pass = join(fleet.dir, 'backup-pass');
    await writeFile(pass, 'a long test passphrase\n', { mode: 0o600 });
    const backup = join(fleet.dir, 'after-rollover.hrbk');
    const taken = await fleet.admin(['backup', '--out', backup, '--certs-dir', fleet.certsDir, '--passphrase-file', pass]);
    expect(taken.code, taken.stderr).toBe(0);
    const certs = join(fleet.dir, 'restored-certs');
    const restored = await cli(['restore', backup, '--data-dir', join(fleet.dir, 'restored-data'), '--certs-dir', certs, '--passphrase-file', pass]);
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/audit log verifies: \d+ record\(s\)/);
    expect((await readdir(certs)).filter((f) => f.startsWith('ca-retired-'))).toHaveLength(1);
  });

  /** Waits until the agent's certificate on disk was issued by the CA with fingerprint `caFp`. */
  async function fleetRenewedOnto(name: string, caFp: string): Promise<void> {
    const agent = fleet.agents.get(name)!.proc;
    for (;;) {
      if ((await issuerOf(name)) === caFp) return;
      const n = agent.events('agent.renewed').length;
      await agent.waitForLog((l) => l.event === 'agent.renewed' && agent.events('agent.renewed').length > n, 60_000, `${name} to renew`);
    }
  }
});
