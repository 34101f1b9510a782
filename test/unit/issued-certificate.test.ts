import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { judgeIssuedCertificate } from '../../agent/issued-certificate.js';
import { certFor, foreignCa, loadCa, type CertificateAuthority } from '../helpers/forged-pki.js';
import { initCa } from '../../coordinator/pki/ca.js';
import { workspace } from '../helpers/processes.js';

const NOW = Date.now();
const HOUR = { notBefore: NOW - 60_000, notAfter: NOW + 3_600_000 };
const agentKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = (k: typeof agentKey): string => k.publicKey.export({ type: 'spki', format: 'pem' }).toString();

describe('whether an issued certificate may become the agent’s identity', () => {
  let ca: CertificateAuthority;
  let foreign: CertificateAuthority;
  beforeAll(async () => {
    const dir = await workspace('hr-cert-check-');
    await initCa({ certsDir: dir });
    ca = await loadCa(dir);
    foreign = await foreignCa();
  });
  const judge = (certPem: string, agentId = 'agt-me') => judgeIssuedCertificate({ certPem, caPem: ca.caCertPem, agentId, privateKey: agentKey.privateKey, now: NOW });

  it('takes a certificate from the pinned CA for this agent and its key', () => {
    expect(judge(certFor(ca, pem(agentKey), 'agt-me', HOUR))).toEqual({ ok: true, notAfter: expect.any(Number) });
  });

  it.each<[string, () => string, RegExp]>([
    ['from a foreign CA', () => certFor(foreign, pem(agentKey), 'agt-me', HOUR), /not issued by the pinned CA/],
    ['for another agent', () => certFor(ca, pem(agentKey), 'agt-other', HOUR), /names "agt-other", not this agent/],
    ['for another key', () => certFor(ca, pem(otherKey), 'agt-me', HOUR), /another key/],
    ['expired', () => certFor(ca, pem(agentKey), 'agt-me', { notBefore: NOW - 7_200_000, notAfter: NOW - 1000 }), /expired at/],
    ['not valid for a day yet', () => certFor(ca, pem(agentKey), 'agt-me', { notBefore: NOW + 86_400_000, notAfter: NOW + 2 * 86_400_000 }), /in the future/],
    ['valid for ten years', () => certFor(ca, pem(agentKey), 'agt-me', { notBefore: NOW - 1000, notAfter: NOW + 3650 * 86_400_000 }), /at most 400/],
    ['the CA certificate itself', () => ca.caCertPem, /CA certificate|not issued/],
    ['two certificates', () => certFor(ca, pem(agentKey), 'agt-me', HOUR) + certFor(ca, pem(agentKey), 'agt-me', HOUR), /exactly one/],
    ['empty', () => '', /expected a PEM certificate/],
    ['oversized', () => 'x'.repeat(20_000), /expected a PEM certificate/],
    ['garbage in PEM armour', () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', /does not parse/],
  ])('refuses a certificate %s', (_label, make, why) => {
    const v = judge(make());
    expect(v.ok ? 'accepted' : v.reason).toMatch(why);
  });

  it('refuses a certificate whose name is right but whose SAN is missing', () => {
    // The server certificate of the same CA: issued by it, not a CA, but it names no agent.
    const v = judge(ca.serverCertPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n', 'handrail-coordinator');
    expect(v.ok ? 'accepted' : v.reason).toMatch(/subject alternative name|another key|client authentication/);
    expect(createPublicKey(agentKey.privateKey)).toBeDefined();
  });
});
