import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caFingerprint, judgeCaBundle, signCaBundle, splitPems, type SignedCaBundle, type TrustedCas } from '../../core/ca-bundle.js';
import { issueAgentCertificate, makeCaCertificate, type CertificateAuthority } from '../../coordinator/pki/ca.js';
import { decodeCaBundle, encodeCaBundle } from '../../proto/codec/ca-bundle-codec.js';

const NOW = Date.UTC(2026, 11, 7);
const make = (label: string): { pem: string; signer: { caPem: string; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] }; ca: CertificateAuthority } => {
  const { caKeys, caCert, caCertPem } = makeCaCertificate('Handrail', NOW, 3650, label);
  const ca = { caCertPem, caKey: caKeys.privateKey, caCert } as unknown as CertificateAuthority;
  return { pem: caCertPem, signer: { caPem: caCertPem, privateKey: caKeys.privateKey }, ca };
};
const current = make('');
const next = make(' next');
const foreign = make(' foreign');
const agentKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pub = agentKey.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const certBy = (ca: CertificateAuthority): string => issueAgentCertificate(ca, { commonName: 'agt-me', publicKeyPem: pub, publicKeyBits: 2048 }, 'agt-me', { notBefore: NOW - 60_000, notAfter: NOW + 3_600_000 }).pem;
const onCurrent = certBy(current.ca);
const onNext = certBy(next.ca);

const bundle = (version: number, pems: readonly string[], signers: ReadonlyArray<{ caPem: string; privateKey: typeof agentKey.privateKey }>): SignedCaBundle =>
  signCaBundle(encodeCaBundle({ version, issuedAtMs: NOW, caPems: pems }), signers);
const judge = (signed: SignedCaBundle, trusted: TrustedCas, own = onCurrent) => judgeCaBundle({ signed, decode: decodeCaBundle, current: trusted, ownCertPem: own });
const pinned: TrustedCas = { version: 0, caPems: [current.pem] };
const overlap: TrustedCas = { version: 5, caPems: [current.pem, next.pem] };

describe('judgeCaBundle', () => {
  const table: Array<[string, SignedCaBundle, TrustedCas, string, RegExp | 'changed' | 'unchanged']> = [
    ['the planned roll-over, signed by the pinned CA', bundle(5, [current.pem, next.pem], [current.signer, next.signer]), pinned, onCurrent, 'changed'],
    ['the same bundle again', bundle(5, [next.pem, current.pem], [current.signer]), overlap, onCurrent, 'unchanged'],
    ['retirement, signed by the next CA, once the agent is on it', bundle(6, [next.pem], [next.signer]), overlap, onNext, 'changed'],
    ['retirement while the agent is still on the old CA', bundle(6, [next.pem], [current.signer, next.signer]), overlap, onCurrent, /drops the CA that issued this agent's certificate/],
    ['unsigned', bundle(5, [current.pem, foreign.pem], []), pinned, onCurrent, /not signed$/],
    ['signed by a foreign CA', bundle(5, [current.pem, foreign.pem], [foreign.signer]), pinned, onCurrent, /not signed by a CA this agent trusts/],
    ['signed by the next CA before the agent trusts it', bundle(5, [current.pem, next.pem], [next.signer]), pinned, onCurrent, /not signed by a CA this agent trusts/],
    ['a foreign key under the trusted signer name', bundle(5, [current.pem, foreign.pem], [{ caPem: current.pem, privateKey: foreign.signer.privateKey }]), pinned, onCurrent, /not signed by a CA this agent trusts/],
    ['an older version', bundle(4, [current.pem], [current.signer]), overlap, onCurrent, /older than the trusted version 5/],
    ['the trusted version with other CAs', bundle(5, [current.pem, foreign.pem], [current.signer]), overlap, onCurrent, /trusted version 5 but other CAs/],
    ['version 0', bundle(0, [current.pem], [current.signer]), pinned, onCurrent, /invalid version/],
    ['an agent certificate posing as a CA', bundle(5, [current.pem, onNext], [current.signer]), pinned, onCurrent, /entry 2 .* is not a CA certificate/],
    ['two certificates in one entry', bundle(5, [current.pem + next.pem], [current.signer]), pinned, onCurrent, /entry 1 is not exactly one PEM/],
    ['five CAs', bundle(5, [current.pem, next.pem, foreign.pem, make(' 4').pem, make(' 5').pem], [current.signer]), pinned, onCurrent, /5 CAs \(at most 4\)/],
  ];
  it.each(table)('%s', (_label, signed, trusted, own, expected) => {
    const v = judge(signed, trusted, own);
    if (expected === 'changed' || expected === 'unchanged') {
      expect(v.ok, v.ok ? '' : v.reason).toBe(true);
      if (v.ok) expect(v.changed).toBe(expected === 'changed');
    } else {
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.reason).toMatch(expected);
    }
  });

  it('names signers by the CA certificate fingerprint and splits PEM files', () => {
    expect(caFingerprint(current.pem)).toMatch(/^[0-9a-f]{64}$/);
    expect(splitPems(`junk\n${current.pem}\n${next.pem}`)).toHaveLength(2);
    const tampered = bundle(5, [current.pem, next.pem], [current.signer]);
    const bytes = Buffer.from(tampered.payload);
    bytes[10] = (bytes[10] as number) ^ 1;
    expect(judge({ payload: bytes, signatures: tampered.signatures }, pinned)).toMatchObject({ ok: false });
  });
});
