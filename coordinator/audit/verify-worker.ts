/** Worker thread for verify-workers.ts: verifies a packed batch of Ed25519 signatures. */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

interface Job {
  readonly keys: Array<[string, string]>;
  readonly kids: string[];
  readonly data: ArrayBuffer;
  /** [payloadStart, payloadEnd, sigEnd] per item, into `data`. */
  readonly offsets: Uint32Array;
}

const cache = new Map<string, KeyObject>();

parentPort?.on('message', (job: Job) => {
  for (const [kid, spki] of job.keys) if (!cache.has(kid)) cache.set(kid, createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' }));
  const buf = Buffer.from(job.data);
  const out = new Uint8Array(job.kids.length);
  for (let i = 0; i < job.kids.length; i++) {
    const k = cache.get(job.kids[i] as string);
    const a = job.offsets[i * 3] as number;
    const b = job.offsets[i * 3 + 1] as number;
    const c = job.offsets[i * 3 + 2] as number;
    try {
      out[i] = k && verify(null, buf.subarray(a, b), k, buf.subarray(b, c)) ? 1 : 0;
    } catch {
      out[i] = 0;
    }
  }
  parentPort?.postMessage(out, [out.buffer]);
});
