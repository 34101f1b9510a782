import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { cli } from '../helpers/processes.js';
import { certFor } from '../helpers/forged-pki.js';
import type { CertificateAuthority } from '../../coordinator/pki/ca.js';

interface CaStatus {
  current: { fingerprint256: string };
  next: { fingerprint256: string } | null;
  phase: string;
  steps: Array<{ step: string; done: boolean }>;
}

/**
 * `handrail ca rotate` plans a CA roll-over: the next CA beside the current one, and from the
 * coordinator's next start agent certificates of both CAs pass the TLS front door, while
 * agents enrolled under the current CA keep working. Only this overlap is built; the steps left
 * are listed by `ca status`.
 */
describe('CA roll-over: plan, dual trust, status', () => {
  let fleet: Fleet;
  let agentId: string;
  const status = async (): Promise<CaStatus> => {
    const r = await cli(['ca', 'status', '--certs-dir', fleet.certsDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as CaStatus;
  };
  /** Presents a certificate issued by the next CA; resolves with the reason the coordinator logs. */
  const presentNextCaCertificate = async (): Promise<string> => {
    const dir = fleet.certsDir;
    const next: CertificateAuthority = {
      caCertPem: await readFile(join(dir, 'ca-next.pem'), 'utf8'),
      caKey: createPrivateKey(await readFile(join(dir, 'ca-next.key'), 'utf8')),
      caCert: forge.pki.certificateFromPem(await readFile(join(dir, 'ca-next.pem'), 'utf8')),
      serverCertPem: '',
      serverKeyPem: '',
      nextCaCertPem: undefined,
      trustPem: '',
    };
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Date.now();
    const cert = certFor(next, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'agt-from-next-ca', { notBefore: now - 60_000, notAfter: now + 3_600_000 });
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
    await fleet.startCoordinator();
    await fleet.startAgent('ca-a');
    agentId = await fleet.waitOnline('ca-a');
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('creates the next CA once, audited, and says what is left', async () => {
    expect((await status()).phase).toBe('none');
    const r = await fleet.admin(['ca', 'rotate', '--certs-dir', fleet.certsDir]);
    expect(r.code, r.stderr).toBe(0);
    const s = await status();
    expect(s.phase).toBe('overlap');
    expect(s.next?.fingerprint256).not.toBe(s.current.fingerprint256);
    expect(s.steps.filter((x) => !x.done).length).toBeGreaterThan(0);
    const again = await fleet.admin(['ca', 'rotate', '--certs-dir', fleet.certsDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/a CA roll-over is already planned/);
    const text = await cli(['ca', 'status', '--certs-dir', fleet.certsDir]);
    expect(text.stdout).toMatch(/\[x\] next CA created/);
    expect(text.stdout).toMatch(/\[ \] agents receive the CA bundle/);
  });

  it('the running coordinator still refuses the next CA; after a restart both CAs are trusted and old agents keep working', async () => {
    expect(await presentNextCaCertificate()).toBe('untrusted');
    await fleet.coordinator!.proc.stop();
    const c = await fleet.startCoordinator();
    await c.proc.waitForLog((l) => l.event === 'gateway.ca_overlap');
    // It passes the TLS chain check now; the registry refuses it for what it is: no enrolled agent.
    expect(await presentNextCaCertificate()).toBe('unknown_agent');
    const agent = fleet.agents.get('ca-a')!.proc;
    await agent.waitForLog((l) => l.event === 'agent.connected' && agent.events('agent.connected').length >= 2);
    expect((await fleet.exec([agentId], { argv: ['true'] })).state).toBe('succeeded');
  });
});
