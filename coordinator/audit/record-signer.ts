/**
 * Signs the audit records a transaction appended, all at once before they are written. An
 * Ed25519 signature is the largest cost of an append (about 18 µs through libsodium here, of
 * about 50 µs per record in all), and nothing in the chain depends on it, so a large batch is
 * split: one worker thread signs the first part while this thread signs the rest. Small batches
 * stay on this thread: handing work to the worker and back costs about as much as a handful of
 * signatures. Signatures are deterministic (RFC 8032), so where they are made changes no byte.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ed25519Backend, ed25519SecretKey, ed25519Sign, sodiumModulePath } from '../../core/ed25519.js';

export interface SignJob {
  readonly payload: Buffer;
  readonly key: KeyObject;
}

/**
 * The worker's whole program (inline, as in verify-workers.ts, so it runs from compiled JS and
 * from TypeScript sources under the test runner). libsodium only: the signer sends work here only
 * when this thread signs through libsodium too.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.sodium);
parentPort.on('message', (job) => {
  const buf = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
  const keys = Buffer.from(job.keys.buffer, job.keys.byteOffset, job.keys.byteLength);
  const n = job.keyIndex.length;
  const out = new Uint8Array(64 * n);
  const sigs = Buffer.from(out.buffer);
  for (let i = 0; i < n; i++) {
    const k = job.keyIndex[i];
    sodium.crypto_sign_detached(sigs.subarray(64 * i, 64 * i + 64), buf.subarray(job.offsets[i], job.offsets[i + 1]), keys.subarray(64 * k, 64 * k + 64));
  }
  parentPort.postMessage({ id: job.id, out }, [out.buffer]);
});
`;

export interface RecordSignerOptions {
  /** Batches smaller than this are signed on this thread alone. */
  readonly splitAt?: number;
  /** The share of a split batch the worker signs: less than half, since its hand-off is not free. */
  readonly workerShare?: number;
  /** The worker's program; a test passes a broken one to prove the fallback. */
  readonly workerSource?: string;
  /** Told once if the worker fails (everything is signed on this thread from then on). */
  readonly onWorkerFailure?: (e: unknown) => void;
  /**
   * A worker idle this long is stopped, and started again by the next large batch: a thread
   * costs about 15 MB of RSS, which a coordinator holding thousands of idle agents should not carry.
   */
  readonly idleMs?: number;
}

export class RecordSigner {
  private worker: Worker | undefined;
  /** The worker has started its program: a batch waits for it only from then on. */
  private online = false;
  /** Set once the worker has failed: from then on everything is signed on this thread. */
  private broken = false;
  private nextId = 0;
  private remote = 0;
  private readonly waiting = new Map<number, { resolve: (sigs: Uint8Array) => void; reject: (e: unknown) => void }>();
  private readonly splitAt: number;
  private readonly workerShare: number;
  private readonly workerSource: string;
  private readonly onWorkerFailure: ((e: unknown) => void) | undefined;
  private readonly idleMs: number;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(options: RecordSignerOptions = {}) {
    this.splitAt = options.splitAt ?? 32;
    this.workerShare = options.workerShare ?? 0.45;
    this.workerSource = options.workerSource ?? WORKER_SOURCE;
    this.onWorkerFailure = options.onWorkerFailure;
    this.idleMs = options.idleMs ?? 60_000;
  }

  /** How many signatures the worker has made (the rest were made on this thread). */
  get signedByWorker(): number {
    return this.remote;
  }

  /** Whether a worker thread is started (it stops after idleMs without work). */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  /** One signature per job, in order. Never fails for want of the worker: it falls back to this thread. */
  async sign(jobs: readonly SignJob[]): Promise<Buffer[]> {
    const split = this.worthSplitting(jobs) ? Math.floor(jobs.length * this.workerShare) : 0;
    const remote = split > 0 ? this.signRemote(jobs.slice(0, split)) : undefined;
    const local = jobs.slice(split).map((j) => ed25519Sign(j.payload, j.key));
    if (!remote) return local;
    let head: Buffer[];
    try {
      const sigs = await remote;
      head = [];
      for (let i = 0; i < split; i++) head.push(Buffer.from(sigs.buffer, sigs.byteOffset + 64 * i, 64));
      this.remote += split;
    } catch {
      // Only the worker's part is signed again: this thread's part is done.
      head = jobs.slice(0, split).map((j) => ed25519Sign(j.payload, j.key));
    }
    return head.concat(local);
  }

  private worthSplitting(jobs: readonly SignJob[]): boolean {
    if (this.broken || jobs.length < this.splitAt || availableParallelism() < 2 || ed25519Backend() !== 'libsodium') return false;
    if (!jobs.every((j) => j.key.asymmetricKeyType === 'ed25519')) return false;
    // The first large batch starts the worker and is signed here: starting a thread takes tens of ms.
    if (!this.online) this.ensureWorker();
    return this.online;
  }

  private signRemote(jobs: readonly SignJob[]): Promise<Uint8Array> {
    const w = this.ensureWorker();
    if (!w) return Promise.reject(new Error('no signing worker'));
    // Payloads packed into one buffer and moved, not copied, to the worker; keys by index.
    const keyOf = new Map<KeyObject, number>();
    const keyIndex = new Int32Array(jobs.length);
    let size = 0;
    jobs.forEach((j, i) => {
      let k = keyOf.get(j.key);
      if (k === undefined) keyOf.set(j.key, (k = keyOf.size));
      keyIndex[i] = k;
      size += j.payload.length;
    });
    const keys = new Uint8Array(64 * keyOf.size);
    for (const [key, k] of keyOf) keys.set(ed25519SecretKey(key), 64 * k);
    const data = new Uint8Array(size);
    const offsets = new Uint32Array(jobs.length + 1);
    let pos = 0;
    jobs.forEach((j, i) => {
      offsets[i] = pos;
      data.set(j.payload, pos);
      pos += j.payload.length;
    });
    offsets[jobs.length] = pos;
    const id = this.nextId++;
    clearTimeout(this.idleTimer);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Alive while work is outstanding; unref'd again once nothing waits.
      w.ref();
      w.postMessage({ id, data, offsets, keyIndex, keys }, [data.buffer, offsets.buffer, keyIndex.buffer, keys.buffer]);
    });
  }

  private ensureWorker(): Worker | undefined {
    if (this.worker || this.broken) return this.worker;
    const sodium = sodiumModulePath();
    if (!sodium) {
      this.broken = true;
      return undefined;
    }
    const w = new Worker(this.workerSource, { eval: true, workerData: { sodium } });
    w.once('online', () => {
      if (this.worker === w) this.online = true;
    });
    w.on('message', (m: { id: number; out: Uint8Array }) => {
      const p = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) {
        w.unref();
        this.idleTimer = setTimeout(() => this.stopIdle(w), this.idleMs).unref();
      }
      p?.resolve(m.out);
    });
    const fail = (e: unknown): void => {
      if (this.worker !== w) return;
      this.onWorkerFailure?.(e);
      this.broken = true;
      this.online = false;
      this.worker = undefined;
      for (const p of this.waiting.values()) p.reject(e);
      this.waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`signing worker exited with code ${code}`)));
    w.unref();
    this.worker = w;
    return w;
  }

  private stopIdle(w: Worker): void {
    if (this.worker !== w || this.waiting.size > 0) return;
    // Not a failure: the next large batch starts a new one.
    this.worker = undefined;
    this.online = false;
    w.terminate().catch(() => undefined);
  }

  /** Stops the worker, if one was started; a batch it was signing is signed on this thread. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.broken = true;
    this.online = false;
    clearTimeout(this.idleTimer);
    for (const p of this.waiting.values()) p.reject(new Error('the signer was closed'));
    this.waiting.clear();
    if (w) await w.terminate();
  }
}
