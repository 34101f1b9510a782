/**
 * Ed25519 verification spread over worker threads: OpenSSL 3's Ed25519 verify costs about
 * 110 µs here, so a million-record log is verified in parallel batches, one per core.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SignatureBatchVerifier, SignatureItem } from './verify.js';

const BATCH = 4096;

export function workerVerifier(threads = availableParallelism()): SignatureBatchVerifier {
  return async (keys, items) => {
    if (items.length < 2 * BATCH || threads < 2) {
      const { verifyInThread } = await import('./verify.js');
      return verifyInThread(keys, items);
    }
    const keyList = [...keys];
    const workers = Array.from({ length: threads }, () => new Worker(new URL('./verify-worker.js', import.meta.url)));
    const results = new Array<boolean>(items.length);
    let next = 0;
    try {
      await Promise.all(
        workers.map(async (w) => {
          for (;;) {
            const start = next;
            if (start >= items.length) return;
            next += BATCH;
            const slice = items.slice(start, start + BATCH);
            const verdicts = await run(w, keyList, slice);
            verdicts.forEach((v, i) => (results[start + i] = v === 1));
          }
        }),
      );
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    return results;
  };
}

function run(w: Worker, keys: Array<[string, string]>, items: readonly SignatureItem[]): Promise<Uint8Array> {
  let size = 0;
  for (const it of items) size += it.payload.length + it.sig.length;
  const data = new Uint8Array(size);
  const offsets = new Uint32Array(items.length * 3);
  let pos = 0;
  items.forEach((it, i) => {
    offsets[i * 3] = pos;
    data.set(it.payload, pos);
    pos += it.payload.length;
    offsets[i * 3 + 1] = pos;
    data.set(it.sig, pos);
    pos += it.sig.length;
    offsets[i * 3 + 2] = pos;
  });
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    w.once('error', onError);
    w.once('message', (m: Uint8Array) => {
      w.off('error', onError);
      resolve(m);
    });
    w.postMessage({ keys, kids: items.map((i) => i.kid), data: data.buffer, offsets }, [data.buffer, offsets.buffer]);
  });
}
