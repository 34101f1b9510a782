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

/** OpenSSL's signature for every job, in hex: RFC 8032 is deterministic, so these are the only right bytes. */
function expected(list: readonly SignJob[]): string[] {
  return hex(list.map((j) => sign(null, j.payload, j.key)));
}

function hex(sigs: readonly Buffer[]): string[] {
  return sigs.map((s) => s.toString('hex'));
}

/** Signs batches of `size`, each checked, until `done()` (a state the signer reaches on its own: a started worker, a failure). */
async function signUntil(signer: RecordSigner, done: () => boolean, size = 40): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) {
    const batch = jobs(size);
    expect(hex(await signer.sign(batch))).toEqual(expected(batch));
    if (!done()) await new Promise((r) => setTimeout(r, 10));
  }
  expect(done()).toBe(true);
}

/** Signs batches until the worker has taken part in one: it starts with the first large batch, which is signed on this thread. */
async function warm(signer: RecordSigner): Promise<void> {
  const before = signer.signedByWorker;
  await signUntil(signer, () => signer.signedByWorker > before, 32);
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

  it('signs the first large batch itself while its worker starts, then splits large batches with it, every signature in order, byte for byte', async () => {
    const signer = make();
    const first = jobs(200);
    expect(hex(await signer.sign(first))).toEqual(expected(first));
    expect(signer.signedByWorker).toBe(0);
    await warm(signer);
    const before = signer.signedByWorker;
    const list = jobs(200);
    expect(hex(await signer.sign(list))).toEqual(expected(list));
    expect(signer.signedByWorker - before).toBe(Math.floor(200 * 0.45));
  });

  it('signs a small batch, or one with a key libsodium does not take, on its own thread', async () => {
    const signer = make();
    await warm(signer);
    const before = signer.signedByWorker;
    const small = jobs(31);
    expect(hex(await signer.sign(small))).toEqual(expected(small));
    const mixed = [...jobs(40), { payload: randomBytes(50), key: rsa.privateKey }];
    const sigs = await signer.sign(mixed);
    expect(sigs).toHaveLength(41);
    expect(verify('sha256', mixed[40]?.payload as Buffer, rsa.publicKey, sigs[40] as Buffer)).toBe(true);
    expect(hex(sigs.slice(0, 40))).toEqual(expected(mixed.slice(0, 40)));
    expect(signer.signedByWorker).toBe(before);
  });

  it('signs everything on its own thread when the worker fails at start, and keeps doing so', async () => {
    const failures: unknown[] = [];
    const signer = make({ workerSource: "throw new Error('broken worker')", onWorkerFailure: (e) => failures.push(e) });
    await signUntil(signer, () => failures.length > 0);
    expect(String(failures[0])).toMatch(/broken worker/);
    const list = jobs(100);
    expect(hex(await signer.sign(list))).toEqual(expected(list));
    expect(signer.signedByWorker).toBe(0);
    expect(failures).toHaveLength(1);
  });

  it('signs a batch on its own thread when the worker dies holding it', async () => {
    const failures: unknown[] = [];
    // Starts, then exits on its first job.
    const signer = make({ workerSource: "require('node:worker_threads').parentPort.on('message', () => process.exit(3));", onWorkerFailure: (e) => failures.push(e) });
    await signUntil(signer, () => failures.length > 0);
    expect(String(failures[0])).toMatch(/exited with code 3/);
    expect(signer.signedByWorker).toBe(0);
  });

  it('signs a batch on its own thread when closed while the worker holds it', async () => {
    const signer = make();
    await warm(signer);
    const before = signer.signedByWorker;
    const list = jobs(300);
    const pending = signer.sign(list);
    await signer.close();
    expect(hex(await pending)).toEqual(expected(list));
    expect(signer.signedByWorker).toBe(before);
  });

  it('stops an idle worker and starts a new one for the next large batch, which it signs itself meanwhile', async () => {
    const failures: unknown[] = [];
    const signer = make({ idleMs: 20, onWorkerFailure: (e) => failures.push(e) });
    await warm(signer);
    expect(signer.workerRunning).toBe(true);
    for (let i = 0; i < 1000 && signer.workerRunning; i++) await new Promise((r) => setTimeout(r, 10));
    expect(signer.workerRunning).toBe(false);
    const before = signer.signedByWorker;
    const list = jobs(200);
    expect(hex(await signer.sign(list))).toEqual(expected(list));
    expect(signer.signedByWorker).toBe(before);
    expect(signer.workerRunning).toBe(true);
    await warm(signer);
    // Stopping an idle worker is not a failure.
    expect(failures).toEqual([]);
  });

  it('still signs after close, on its own thread', async () => {
    const signer = make();
    await warm(signer);
    await signer.close();
    const list = jobs(64);
    const before = signer.signedByWorker;
    expect(hex(await signer.sign(list))).toEqual(expected(list));
    expect(signer.signedByWorker).toBe(before);
  });
});
