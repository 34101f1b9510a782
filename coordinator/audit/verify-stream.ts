/**
 * Verifying a stream of bundle items (from a file or from the store) in bounded memory: records
 * go to the signature pool in batches while the next ones are read, and the verdicts are fed to
 * the pure checker (verify.ts) in file order. A bad record stops signature work for the rest.
 */
import { availableParallelism } from 'node:os';
import type { BundleCheckpoint, BundleItem, BundleRecord } from './bundle.js';
import { AuditVerifier, type VerifyOptions, type VerifyReport } from './verify.js';
import { SignaturePool } from './verify-workers.js';

export interface StreamVerifyOptions extends VerifyOptions {
  /** Checkpoints kept outside the bundle (`handrail audit checkpoint` lines). */
  readonly externalCheckpoints?: readonly BundleCheckpoint[];
  /** Worker threads for signatures (default: one per core; 1 = this thread). */
  readonly threads?: number;
  /** Records per batch handed to a worker. */
  readonly batchSize?: number;
}

export class MissingHeaderError extends Error {
  constructor() {
    super('a bundle must start with its header');
    this.name = 'MissingHeaderError';
  }
}

export async function verifyItems(items: AsyncIterable<BundleItem>, opts: StreamVerifyOptions = {}): Promise<VerifyReport> {
  const threads = opts.threads ?? availableParallelism();
  const batchSize = opts.batchSize ?? 1024;
  // Two batches per worker: one being verified, one waiting, so no worker idles while we read.
  const maxInFlight = Math.max(2, threads * 2);
  let verifier: AuditVerifier | undefined;
  let pool: SignaturePool | undefined;
  const inflight: Array<{ records: BundleRecord[]; verdicts: Promise<Uint8Array> | undefined }> = [];
  const checkpoints: BundleCheckpoint[] = [];
  let batch: BundleRecord[] = [];

  const submit = (v: AuditVerifier, p: SignaturePool): void => {
    if (batch.length === 0) return;
    const verdicts = v.settled ? undefined : p.verify(batch);
    // Awaited later, in order; until then a worker failure must not count as unhandled.
    verdicts?.catch(() => undefined);
    inflight.push({ records: batch, verdicts });
    batch = [];
  };
  const drainOne = async (v: AuditVerifier): Promise<void> => {
    const head = inflight.shift();
    if (!head) return;
    const verdicts = head.verdicts ? await head.verdicts : undefined;
    head.records.forEach((r, i) => v.record(r, verdicts?.[i] === 1));
  };

  try {
    for await (const item of items) {
      if (item.t === 'header') {
        verifier = new AuditVerifier(item.header, opts);
        pool = new SignaturePool(new Map(item.header.keys.map((k) => [k.kid, k.spki])), threads);
        continue;
      }
      if (!verifier || !pool) throw new MissingHeaderError();
      switch (item.t) {
        case 'record':
          batch.push(item.record);
          if (batch.length >= batchSize) {
            submit(verifier, pool);
            while (inflight.length > maxInFlight) await drainOne(verifier);
          }
          break;
        case 'output':
          verifier.output(item.stepRunId, item.stream, item.data);
          break;
        case 'checkpoint':
          checkpoints.push(item.checkpoint);
          break;
      }
    }
    if (!verifier || !pool) throw new MissingHeaderError();
    submit(verifier, pool);
    while (inflight.length > 0) await drainOne(verifier);
    const external = opts.externalCheckpoints ?? [];
    const verdicts = await pool.verify([...checkpoints, ...external]);
    checkpoints.forEach((cp, i) => verifier?.checkpoint(cp, verdicts[i] === 1));
    external.forEach((cp, i) => verifier?.checkpoint(cp, verdicts[checkpoints.length + i] === 1, true));
    return verifier.report();
  } finally {
    await pool?.close();
  }
}
