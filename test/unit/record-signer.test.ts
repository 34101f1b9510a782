import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordSigner, type SignJob } from '../../coordinator/audit/record-signer.js';

const a = generateKeyPairSync('ed25519');
const b = generateKeyPairSync('ed25519');
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });

/** n jobs of varied sizes, alternating between the two keys in runs (a rotation mid-batch). */
function jobs(n: number): SignJob[] {
  return Array.from({ length: n }, (_, i) => ({ payload: randomBytes(1 + ((i * 37) % 900)), key: i % 7 < 4 ? a.privateKey : b.privateKey }));
}

/** OpenSSL's signature for every job: RFC 8032 is deterministic, so these are the only right bytes. */
function expected(list: readonly SignJob[]): Buffer[] {
  return list.map((j) => sign(null, j.payload, j.key));
}

describe('RecordSigner', () => {
  const signers: RecordSigner[] = [];
  const make = (...args: ConstructorParameters<typeof RecordSigner>): RecordSigner => {
    const s = new RecordSigner(...args);
    signers.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(signers.splice(0).map((s) => s.close()));
  });

  it('splits a large batch with its worker and returns every signature in order, byte for byte', async () => {
    const signer = make();
    const list = jobs(200);
    const sigs = await signer.sign(list);
    expect(sigs.map((s) => s.toString('hex'))).toEqual(expected(list).map((s) => s.toString('hex')));
    expect(signer.signedByWorker).toBe(Math.floor(200 * 0.45));
    // Again, with the worker already running: the second batch is split too.
    const more = jobs(64);
    expect((await signer.sign(more)).map((s) => s.toString('hex'))).toEqual(expected(more).map((s) => s.toString('hex')));
    expect(signer.signedByWorker).toBe(Math.floor(200 * 0.45) + Math.floor(64 * 0.45));
  });

  it('signs a small batch, or one with a key libsodium does not take, on its own thread', async () => {
    const signer = make();
    const small = jobs(31);
    expect((await signer.sign(small)).map((s) => s.toString('hex'))).toEqual(expected(small).map((s) => s.toString('hex')));
    const mixed = [...jobs(40), { payload: randomBytes(50), key: rsa.privateKey }];
    const sigs = await signer.sign(mixed);
    expect(sigs).toHaveLength(41);
    expect(verify('sha256', mixed[40]?.payload as Buffer, rsa.publicKey, sigs[40] as Buffer)).toBe(true);
    expect(sigs.slice(0, 40).map((s) => s.toString('hex'))).toEqual(expected(mixed.slice(0, 40)).map((s) => s.toString('hex')));
    expect(signer.signedByWorker).toBe(0);
  });

  it('signs everything on its own thread when the worker fails, and keeps doing so', async () => {
    const signer = make({ workerSource: "throw new Error('broken worker')" });
    const list = jobs(100);
    expect((await signer.sign(list)).map((s) => s.toString('hex'))).toEqual(expected(list).map((s) => s.toString('hex')));
    const again = jobs(100);
    expect((await signer.sign(again)).map((s) => s.toString('hex'))).toEqual(expected(again).map((s) => s.toString('hex')));
    expect(signer.signedByWorker).toBe(0);
  });

  it('still signs after close, on its own thread', async () => {
    const signer = make();
    await signer.sign(jobs(64));
    await signer.close();
    const list = jobs(64);
    const before = signer.signedByWorker;
    expect((await signer.sign(list)).map((s) => s.toString('hex'))).toEqual(expected(list).map((s) => s.toString('hex')));
    expect(signer.signedByWorker).toBe(before);
  });
});
