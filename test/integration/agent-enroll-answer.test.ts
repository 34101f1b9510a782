import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { spawnCli } from '../helpers/processes.js';
import { certFor, foreignCa, keySet, loadCa, newDispatchKey, parseCsr, wire, type CertificateAuthority } from '../helpers/forged-pki.js';
import { CA_SIGNER } from '../../core/dispatch-key-set.js';
import { EnrollmentServiceService, type EnrollRequest, type EnrollResponse } from '../../proto/gen/handrail/v1/enrollment.js';

type Answer = (csrPublicKeyPem: string) => EnrollResponse;

/**
 * A fake enrollment endpoint holding only the coordinator's server TLS key answers a real
 * agent's first start. The agent saves nothing unless the certificate chains to the CA it was
 * given with --ca, names the agent id it is given, is for its own key, and the dispatch keys
 * come signed by that CA.
 */
describe('the agent checks the enrollment answer before it becomes its identity', () => {
  let fleet: Fleet;
  let ca: CertificateAuthority;
  let attackerCa: CertificateAuthority;
  let server: Server;
  let port: number;
  let answer: Answer;
  const agentId = 'agt-0123456789abcdef';
  const dispatch = newDispatchKey('dispatch-1111111111111111');
  const hour = (): { notBefore: number; notAfter: number } => ({ notBefore: Date.now() - 60_000, notAfter: Date.now() + 3_600_000 });
  const caSigned = () => wire(keySet(5, [dispatch], [{ signer: CA_SIGNER, privateKey: ca.caKey }, { signer: dispatch.keyId, privateKey: dispatch.privateKey }]));
  const response = (over: Partial<EnrollResponse>, pub: string): EnrollResponse => ({
    agentId,
    certificatePem: certFor(ca, pub, agentId, hour()),
    caPem: ca.caCertPem,
    dispatchKeys: [],
    labels: {},
    dispatchKeySet: caSigned(),
    ...over,
  });

  beforeAll(async () => {
    fleet = await Fleet.create();
    ca = await loadCa(fleet.certsDir);
    attackerCa = await foreignCa();
    server = new Server();
    server.addService(EnrollmentServiceService, {
      enroll: (call: ServerUnaryCall<EnrollRequest, EnrollResponse>, cb: sendUnaryData<EnrollResponse>) => cb(null, answer(parseCsr(call.request.csrPem).publicKeyPem)),
    });
    const [caPem, cert, key] = await Promise.all(['ca.pem', 'server.pem', 'server.key'].map((f) => readFile(join(fleet.certsDir, f))));
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createSsl(caPem!, [{ cert_chain: cert!, private_key: key! }], false), (e, p) => (e ? reject(e) : resolve(p))),
    );
  });
  afterAll(async () => {
    server?.forceShutdown();
    await fleet?.close();
  });

  const enrollWith = async (label: string, a: Answer): Promise<{ code: number | null; stderr: string; saved: boolean }> => {
    answer = a;
    const stateDir = join(fleet.dir, `state-${label}`);
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${port}`, '--state-dir', stateDir, '--ca', fleet.caFile, '--name', label], { HANDRAIL_BOOTSTRAP_TOKEN: 'hrt_fake' });
    const code = await p.wait();
    const saved = await access(join(stateDir, 'identity', 'agent.pem')).then(() => true, () => false);
    return { code, stderr: p.stderrText, saved };
  };

  it.each<[string, Answer, RegExp]>([
    ['foreign-ca', (pub) => response({ certificatePem: certFor(attackerCa, pub, agentId, hour()) }, pub), /not issued by the pinned CA/],
    ['other-agent', (pub) => response({ certificatePem: certFor(ca, pub, 'agt-fedcba9876543210', hour()) }, pub), /names "agt-fedcba9876543210", not this agent/],
    ['expired', (pub) => response({ certificatePem: certFor(ca, pub, agentId, { notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 }) }, pub), /expired/],
    ['bad-agent-id', (pub) => response({ agentId: '../../etc' }, pub), /agent id .* is malformed/],
    ['no-key-set', (pub) => response({ dispatchKeySet: undefined, dispatchKeys: [{ keyId: dispatch.keyId, publicKeyPem: dispatch.publicKeyPem }] }, pub), /no signed dispatch key set/],
    ['unsigned-keys', (pub) => response({ dispatchKeySet: wire(keySet(5, [dispatch], [])) }, pub), /not signed/],
    ['dispatch-signed-only', (pub) => response({ dispatchKeySet: wire(keySet(5, [dispatch], [{ signer: dispatch.keyId, privateKey: dispatch.privateKey }])) }, pub), /not signed by the pinned CA/],
    ['other-ca-signed', (pub) => response({ dispatchKeySet: wire(keySet(5, [dispatch], [{ signer: CA_SIGNER, privateKey: attackerCa.caKey }])) }, pub), /CA signature does not verify/],
  ])('refuses an answer with %s and saves nothing', async (label, a, why) => {
    const r = await enrollWith(label, a);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/enrollment answer refused/);
    expect(r.stderr).toMatch(why);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(r.saved).toBe(false);
  });

  it('takes a genuine answer (control case: the checks above can pass)', async () => {
    answer = (pub) => response({}, pub);
    const stateDir = join(fleet.dir, 'state-genuine');
    const p = spawnCli(['agent', '--coordinator', `127.0.0.1:${port}`, '--state-dir', stateDir, '--ca', fleet.caFile, '--name', 'genuine'], { HANDRAIL_BOOTSTRAP_TOKEN: 'hrt_fake' });
    await p.waitForLog((l) => l.event === 'agent.enrolled');
    await p.stop();
    const identity = JSON.parse(await readFile(join(stateDir, 'identity', 'agent.json'), 'utf8')) as { agentId: string; dispatchKeys: Array<{ keyId: string }>; dispatchKeySetVersion: number };
    expect(identity).toMatchObject({ agentId, dispatchKeySetVersion: 5, dispatchKeys: [{ keyId: dispatch.keyId }] });
  });
});
