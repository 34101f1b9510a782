import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CA_SIGNER, judgeDispatchKeySet, KEY_SET_LIMITS, signDispatchKeySet, type DispatchKeySet, type SignedDispatchKeySet, type TrustedDispatchKeys } from '../../core/dispatch-key-set.js';
import { decodeDispatchKeySet, encodeDispatchKeySet } from '../../proto/codec/dispatch-key-set-codec.js';

const ed = (): { privateKey: KeyObject; pem: string } => {
  const k = generateKeyPairSync('ed25519');
  return { privateKey: k.privateKey, pem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
};
const ca = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherCa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const k1 = ed();
const k2 = ed();
const evil = ed();
const rsaPem = otherCa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const current: TrustedDispatchKeys = { version: 100, keys: [{ keyId: 'dispatch-1', publicKeyPem: k1.pem }] };
const set = (version: number, keys: Array<[string, string]>): Uint8Array => encodeDispatchKeySet({ version, issuedAtMs: 1, keys: keys.map(([keyId, publicKeyPem]) => ({ keyId, publicKeyPem })) });
const signed = (payload: Uint8Array, ...signers: Array<[string, KeyObject]>): SignedDispatchKeySet => signDispatchKeySet(payload, signers.map(([signer, privateKey]) => ({ signer, privateKey })));
const judge = (s: SignedDispatchKeySet, o: { current?: TrustedDispatchKeys | 'enrollment'; recovery?: boolean; decode?: (p: Uint8Array) => DispatchKeySet } = {}) =>
  judgeDispatchKeySet({ signed: s, decode: o.decode ?? decodeDispatchKeySet, current: o.current === 'enrollment' ? undefined : (o.current ?? current), caPublicKeys: [ca.publicKey], allowCaRecovery: o.recovery ?? false });

const next = set(101, [['dispatch-1', k1.pem], ['dispatch-2', k2.pem]]);

describe('changing the dispatch keys an agent trusts', () => {
  it.each<[string, () => ReturnType<typeof judge>, boolean | RegExp]>([
    ['a newer set signed by a trusted key', () => judge(signed(next, ['dispatch-1', k1.privateKey])), true],
    ['a newer set signed by a trusted key among unknown signers', () => judge(signed(next, ['dispatch-9', evil.privateKey], ['dispatch-1', k1.privateKey])), true],
    ['at enrollment, a set signed by the CA', () => judge(signed(next, [CA_SIGNER, ca.privateKey]), { current: 'enrollment' }), true],
    ['with --allow-ca-key-recovery, a set signed by the CA alone', () => judge(signed(set(101, [['dispatch-2', k2.pem]]), [CA_SIGNER, ca.privateKey]), { recovery: true }), true],
    ['an unsigned set', () => judge(signed(next)), /not signed$/],
    ['a set signed by an unknown key', () => judge(signed(next, ['dispatch-9', evil.privateKey])), /not signed by a trusted dispatch key/],
    ['a set signed by another key under a trusted id', () => judge(signed(next, ['dispatch-1', evil.privateKey])), /not signed by a trusted dispatch key/],
    ['a set signed by the CA alone, without recovery allowed', () => judge(signed(next, [CA_SIGNER, ca.privateKey])), /--allow-ca-key-recovery/],
    ['a set signed by another CA', () => judge(signed(next, [CA_SIGNER, otherCa.privateKey]), { current: 'enrollment' }), /CA signature does not verify/],
    ['at enrollment, a set signed by a dispatch key only', () => judge(signed(next, ['dispatch-1', k1.privateKey]), { current: 'enrollment' }), /not signed by the pinned CA/],
    ['a payload changed after signing', () => ({ ...judge({ ...signed(next, ['dispatch-1', k1.privateKey]), payload: set(101, [['dispatch-1', evil.pem]]) }) }), /not signed by a trusted/],
    ['an older version', () => judge(signed(set(99, [['dispatch-1', k1.pem], ['dispatch-2', k2.pem]]), ['dispatch-1', k1.privateKey])), /older than the trusted version 100/],
    ['the same version with other keys', () => judge(signed(set(100, [['dispatch-2', k2.pem]]), ['dispatch-1', k1.privateKey])), /trusted version 100 but other keys/],
    ['no keys', () => judge(signed(set(101, []), ['dispatch-1', k1.privateKey])), /names no key/],
    ['a key that is not Ed25519', () => judge(signed(set(101, [['dispatch-2', rsaPem]]), ['dispatch-1', k1.privateKey])), /not Ed25519/],
    ['a key that does not parse', () => judge(signed(set(101, [['dispatch-2', 'nope']]), ['dispatch-1', k1.privateKey])), /not a public key/],
    ['a key named like the CA signer', () => judge(signed(set(101, [[CA_SIGNER, k2.pem]]), ['dispatch-1', k1.privateKey])), /invalid key id/],
    ['the same key id twice', () => judge(signed(set(101, [['dispatch-2', k2.pem], ['dispatch-2', k1.pem]]), ['dispatch-1', k1.privateKey])), /twice/],
    ['too many keys', () => judge(signed(set(101, Array.from({ length: KEY_SET_LIMITS.maxKeys + 1 }, (_, i): [string, string] => [`d-${i}`, k2.pem])), ['dispatch-1', k1.privateKey])), /at most 16/],
    ['version zero', () => judge(signed(set(0, [['dispatch-1', k1.pem]]), [CA_SIGNER, ca.privateKey]), { current: 'enrollment' }), /invalid version/],
    ['a payload that does not decode', () => judge(signed(Buffer.from([0xff, 0xff, 0xff]), ['dispatch-1', k1.privateKey])), /malformed/],
    ['an empty payload', () => judge({ payload: new Uint8Array(), signatures: [] }), /empty/],
    ['an oversized payload', () => judge({ payload: new Uint8Array(KEY_SET_LIMITS.maxPayloadBytes + 1), signatures: [] }), /bytes \(at most/],
    ['too many signatures', () => judge(signed(next, ...Array.from({ length: 9 }, (): [string, KeyObject] => ['dispatch-1', k1.privateKey]))), /9 signatures/],
  ])('%s', (_label, run, expected) => {
    const v = run();
    if (expected === true) expect(v).toMatchObject({ ok: true, changed: true });
    else expect(v.ok ? 'accepted' : v.reason).toMatch(expected as RegExp);
  });

  it('takes the set it already has as no change, and names who vouched for a new one', () => {
    const same = judge(signed(set(100, [['dispatch-1', k1.pem]]), ['dispatch-1', k1.privateKey]));
    expect(same).toMatchObject({ ok: true, changed: false });
    expect(judge(signed(next, ['dispatch-1', k1.privateKey]))).toMatchObject({ ok: true, signer: 'dispatch-1', set: { version: 101 } });
  });

  it('parses nothing of a set no trusted key signed', () => {
    let decoded = 0;
    const v = judge(signed(next, ['dispatch-9', evil.privateKey]), { decode: (p) => (decoded++, decodeDispatchKeySet(p)) });
    expect(v.ok).toBe(false);
    expect(decoded).toBe(0);
  });
});
