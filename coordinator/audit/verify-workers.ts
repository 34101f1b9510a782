/**
 * Ed25519 verification spread over worker threads. A verify costs about 90 µs here through
 * libsodium (160 µs through OpenSSL 3.0), more than everything else a verifier does per record,
 * so signatures are checked in parallel batches, one worker per core, while the calling thread
 * reads and chains records. Batches are packed into one transferable buffer each way.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { sodiumModulePath } from '../../core/ed25519.js';
import { publicKeyObjects, verifySignature, type SignatureBatchVerifier, type SignatureItem } from './verify.js';

/**
 * The worker's whole program. Inline (eval) so the same code runs from compiled JS and from
 * TypeScript sources under the test runner, which cannot start a worker from a .ts file.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
// libsodium when the main thread found it (core/ed25519.ts), else OpenSSL through node:crypto.
const sodium = workerData.sodium ? require(workerData.sodium) : null;
const keys = workerData.keys.map((spki) => {
  try {
    const key = createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
    const raw = sodium && key.asymmetricKeyType === 'ed25519' ? Buffer.from(key.export({ format: 'jwk' }).x, 'base64url') : undefined;
    return { key, raw };
  } catch { return undefined; }
});
parentPort.on('message', (job) => {
  const buf = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
  const n = job.keyIndex.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const key = keys[job.keyIndex[i]];
    if (key === undefined) continue;
    const a = job.offsets[2 * i], b = job.offsets[2 * i + 1], c = job.offsets[2 * i + 2];
    const msg = buf.subarray(a, b), sig = buf.subarray(b, c);
    try {
      if (key.raw) out[i] = sig.length === 64 && sodium.crypto_sign_verify_detached(sig, msg, key.raw) ? 1 : 0;
      else out[i] = verify(null, msg, key.key, sig) ? 1 : 0;
    } catch { out[i] = 0; }
  }
  parentPort.postMessage({ id: job.id, out }, [out.buffer]);
});
`;

interface Job {
  readonly id: number;
  readonly items: readonly SignatureItem[];
  readonly resolve: (v: Uint8Array) => void;
  readonly reject: (e: unknown) => void;
}

/** A fixed set of audit keys and a pool of workers verifying signatures made with them. */
export class SignaturePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private readonly kidIndex = new Map<string, number>();
  private readonly inThread: ReadonlyMap<string, KeyObject> | undefined;
  private failed: unknown;
  private nextId = 0;

  /**
   * `threads` workers (default: one per core). With fewer than 2 cores there is nothing to gain,
   * and the pool verifies in the calling thread.
   */
  constructor(keys: ReadonlyMap<string, string>, threads = availableParallelism()) {
    const list = [...keys];
    list.forEach(([kid], i) => this.kidIndex.set(kid, i));
    if (threads < 2) {
      this.inThread = publicKeyObjects(keys);
      return;
    }
    this.inThread = undefined;
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { keys: list.map(([, spki]) => spki), sodium: sodiumModulePath() } });
      w.on('message', (m: { id: number; out: Uint8Array }) => this.done(w, m.out));
      w.on('error', (e) => this.fail(e));
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  /** Verdicts (1 = valid) for `items`, in order. Items naming a key the pool lacks get 0. */
  verify(items: readonly SignatureItem[]): Promise<Uint8Array> {
    if (this.inThread) {
      const keys = this.inThread;
      return Promise.resolve(Uint8Array.from(items, (it) => (verifySignature(keys.get(it.kid), it) ? 1 : 0)));
    }
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, items, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop() as Worker;
      const job = this.queue.shift() as Job;
      this.running.set(w, job);
      // Keep the process alive while work is outstanding (workers are unref'd when idle).
      w.ref();
      const { data, offsets, keyIndex } = this.pack(job.items);
      w.postMessage({ id: job.id, data, offsets, keyIndex }, [data.buffer, offsets.buffer, keyIndex.buffer]);
    }
  }

  private pack(items: readonly SignatureItem[]): { data: Uint8Array<ArrayBuffer>; offsets: Uint32Array<ArrayBuffer>; keyIndex: Int32Array<ArrayBuffer> } {
    let size = 0;
    for (const it of items) size += it.payload.length + it.sig.length;
    const data = new Uint8Array(size);
    const offsets = new Uint32Array(items.length * 2 + 1);
    const keyIndex = new Int32Array(items.length);
    let pos = 0;
    items.forEach((it, i) => {
      keyIndex[i] = this.kidIndex.get(it.kid) ?? -1;
      offsets[2 * i] = pos;
      data.set(it.payload, pos);
      pos += it.payload.length;
      offsets[2 * i + 1] = pos;
      data.set(it.sig, pos);
      pos += it.sig.length;
    });
    offsets[2 * items.length] = pos;
    return { data, offsets, keyIndex };
  }

  private done(w: Worker, out: Uint8Array): void {
    const job = this.running.get(w);
    this.running.delete(w);
    w.unref();
    this.idle.push(w);
    job?.resolve(out);
    this.pump();
  }

  private fail(e: unknown): void {
    this.failed = e;
    for (const job of [...this.running.values(), ...this.queue.splice(0)]) job.reject(e);
    this.running.clear();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A SignatureBatchVerifier over a pool started for one call (verifyBundle's in-memory path). */
export function workerVerifier(threads = availableParallelism()): SignatureBatchVerifier {
  return async (keys, items) => {
    const pool = new SignaturePool(keys, items.length < 4096 ? 1 : threads);
    try {
      const chunks: Array<Promise<Uint8Array>> = [];
      for (let i = 0; i < items.length; i += 2048) chunks.push(pool.verify(items.slice(i, i + 2048)));
      const verdicts = await Promise.all(chunks);
      return verdicts.flatMap((v) => Array.from(v, (x) => x === 1));
    } finally {
      await pool.close();
    }
  };
}
