/**
 * Random bytes from the system CSPRNG, fetched 4 KiB at a time. Every randomBytes() call is a
 * trip into OpenSSL's RAND_bytes (locking, fork checks), which cost more than the signature it
 * sits next to on the coordinator's hot path (a nonce and an id per dispatched step). The
 * bytes are the same CSPRNG output, handed out once each and copied out of the pool, as
 * node:crypto's own randomUUID() cache does.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;

export function pooledRandomBytes(n: number): Buffer {
  if (n > POOL_BYTES / 4) return randomFillSync(Buffer.alloc(n));
  if (used + n > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const out = Buffer.from(pool.subarray(used, used + n));
  used += n;
  return out;
}
