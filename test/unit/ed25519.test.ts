import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ed25519Backend, ed25519Sign, ed25519Verify, sodiumModulePath, useEd25519Backend } from '../../core/ed25519.js';
import { ed25519Choice } from '../../cli/settings.js';

describe('Ed25519 through libsodium', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');

  it('is the backend in use where the addon is installed (as on this machine and CI)', () => {
    expect(ed25519Backend()).toBe('libsodium');
  });

  it('signs exactly the bytes OpenSSL signs (RFC 8032 is deterministic)', () => {
    for (const len of [0, 1, 31, 64, 300, 4096, 100_000]) {
      const m = randomBytes(len);
      const ours = ed25519Sign(m, privateKey);
      expect(ours.equals(sign(null, m, privateKey))).toBe(true);
      expect(verify(null, m, publicKey, ours)).toBe(true);
    }
  });

  const m = randomBytes(200);
  const good = sign(null, m, privateKey);
  const flip = (b: Buffer, i: number): Buffer => {
    const c = Buffer.from(b);
    c[i] = (c[i] as number) ^ 1;
    return c;
  };
  it.each([
    ['the genuine signature', m, good, publicKey, true],
    ['a changed message byte', flip(m, 17), good, publicKey, false],
    ['a changed signature byte (R)', m, flip(good, 3), publicKey, false],
    ['a changed signature byte (S)', m, flip(good, 40), publicKey, false],
    ['another key', m, good, other.publicKey, false],
    ['a truncated signature', m, good.subarray(0, 63), publicKey, false],
    ['an overlong signature', m, Buffer.concat([good, Buffer.from([0])]), publicKey, false],
    ['an empty signature', m, Buffer.alloc(0), publicKey, false],
    ['all-zero signature', m, Buffer.alloc(64), publicKey, false],
  ] as const)('verify: %s', (_name, message, signature, key, expected) => {
    expect(ed25519Verify(message, key, signature)).toBe(expected);
    // and OpenSSL agrees
    let openssl: boolean;
    try {
      openssl = verify(null, message, key, signature);
    } catch {
      openssl = false;
    }
    expect(openssl).toBe(expected);
  });

  it('uses OpenSSL when the process chooses it (HANDRAIL_ED25519=openssl, read by cli/), with the same bytes', () => {
    expect(ed25519Choice({ HANDRAIL_ED25519: 'openssl' })).toBe('openssl');
    expect(ed25519Choice({})).toBe('auto');
    const before = ed25519Sign(m, privateKey);
    try {
      useEd25519Backend('openssl');
      expect(ed25519Backend()).toBe('openssl');
      expect(sodiumModulePath()).toBeNull(); // verify workers follow the choice
      expect(ed25519Sign(m, privateKey).equals(before)).toBe(true);
      expect(ed25519Verify(m, publicKey, before)).toBe(true);
    } finally {
      useEd25519Backend('auto');
    }
    expect(ed25519Backend()).toBe('libsodium');
  });

  it('leaves RSA keys to node:crypto', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const sig = ed25519Sign(m, rsa.privateKey);
    expect(verify(null, m, rsa.publicKey, sig)).toBe(true);
    expect(ed25519Verify(m, rsa.publicKey, sig)).toBe(true);
    expect(ed25519Verify(flip(m, 0), rsa.publicKey, sig)).toBe(false);
  });
});
