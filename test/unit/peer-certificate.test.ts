/**
 * What the agent port's front door reads from a peer certificate the handshake verified: its
 * common name (the agent id), whether it is a probe's, and which trusted CA issued it, read from
 * the X509Certificate OpenSSL holds instead of getPeerCertificate()'s copy.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caFingerprint } from '../../core/ca-bundle.js';
import { createCsr } from '../../core/csr.js';
import { initCa, isProbeCertificate, issueAgentCertificate, issueProbeCertificate, loadCa, parseCsr, subjectCommonName, type CertificateAuthority } from '../../coordinator/pki/ca.js';
import { planCaRotation, switchCa } from '../../coordinator/pki/ca-rollover.js';
import { CaSource } from '../../coordinator/pki/ca-source.js';

describe('subjectCommonName', () => {
  it.each([
    ['CN=agt-1', 'agt-1'],
    ['O=Handrail\nOU=agent\nCN=agt-1', 'agt-1'],
    ['CN=agt-1\nO=Handrail', 'agt-1'],
    ['', ''],
    [undefined, ''],
    ['O=Handrail', ''],
    // two common names: no single agent id (getPeerCertificate gave an array, refused alike)
    ['CN=agt-1\nCN=agt-2', ''],
    // a value that merely contains "CN=" is not a common name
    ['O=CN=agt-1', ''],
    ['CN=', ''],
  ])('%j → %j', (subject, cn) => {
    expect(subjectCommonName(subject)).toBe(cn);
  });
});

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const csr = parseCsr(createCsr(privateKey, 'web-1'));
const validity = (): { notBefore: number; notAfter: number } => ({ notBefore: Date.now() - 1000, notAfter: Date.now() + 3_600_000 });
const agentCert = (ca: CertificateAuthority, id: string): X509Certificate => new X509Certificate(issueAgentCertificate(ca, csr, id, validity()).pem);

describe('a verified peer certificate, as the front door reads it', () => {
  it('gives the agent id and tells agents from probes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-peer-'));
    await initCa({ certsDir: dir });
    const ca = await loadCa(dir);
    const agent = agentCert(ca, 'agt-7f3k');
    expect(subjectCommonName(agent.subject)).toBe('agt-7f3k');
    expect(isProbeCertificate(agent.subjectAltName)).toBe(false);
    const probe = new X509Certificate(issueProbeCertificate(ca, 'blackbox', publicKey.export({ type: 'spki', format: 'pem' }).toString(), validity()).pem);
    expect(isProbeCertificate(probe.subjectAltName)).toBe(true);
    expect(subjectCommonName(probe.subject)).toBe('probe-blackbox');
  });

  it('names the CA that issued it during a roll-over, as the full signature check does, and none for another CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-peer-'));
    await initCa({ certsDir: dir });
    const first = await loadCa(dir);
    const fromFirst = agentCert(first, 'agt-old');
    await planCaRotation(dir, Date.now());
    await switchCa(dir, Date.now());
    const second = await loadCa(dir);
    const fromSecond = agentCert(second, 'agt-new');
    const source = await CaSource.open(dir);
    expect(source.trustedFingerprints()).toHaveLength(2);

    expect(source.issuerOfVerified(fromFirst)).toBe(caFingerprint(first.caCertPem));
    expect(source.issuerOfVerified(fromSecond)).toBe(caFingerprint(second.caCertPem));
    expect(caFingerprint(first.caCertPem)).not.toBe(caFingerprint(second.caCertPem));
    for (const c of [fromFirst, fromSecond]) expect(source.issuerOfVerified(c)).toBe(source.issuerOf(c.raw));

    const elsewhere = await mkdtemp(join(tmpdir(), 'hr-peer-'));
    await initCa({ certsDir: elsewhere });
    const stranger = agentCert(await loadCa(elsewhere), 'agt-old');
    expect(source.issuerOfVerified(stranger)).toBeUndefined();
    expect(source.issuerOf(stranger.raw)).toBeUndefined();
  });
});
