/**
 * Records of the agent's step journal (step-journal.ts), and how they sit in the file:
 *
 *   [u32 LE body length][u32 LE crc32(body)][body]
 *   body = [u8 kind][u16 LE header length][header: JSON][blob: the rest]
 *
 * The length and checksum let a reader stop at a record that a crash or a power loss left torn
 * (a write cut short, or pages of it never reaching the disk): everything before it stands.
 */
import { crc32 } from 'node:zlib';

export type JournalRecord =
  /** A nonce of a step that was refused after its checks (canceled early, local policy). */
  | { readonly kind: 'nonce'; readonly nonce: string; readonly notAfterMs: number }
  /** A step taken on: its nonce, ids and signed request. */
  | {
      readonly kind: 'begin';
      readonly key: string;
      readonly nonce: string;
      readonly notAfterMs: number;
      readonly executionId: string;
      readonly stepId: string;
      readonly startedAtMs: number;
      readonly maxOutputBytes: number;
      readonly request: Uint8Array;
    }
  /** Who runs the step (so a restarted agent can stop what a crash left behind). */
  | { readonly kind: 'pid'; readonly key: string; readonly pid: number; readonly processStart?: string; readonly bootId?: string }
  /** The step's encoded SignedResult. */
  | { readonly kind: 'result'; readonly key: string; readonly result: Uint8Array }
  /** The coordinator acknowledged the result (or refused it, and it was set aside): the step is done. */
  | { readonly kind: 'done'; readonly key: string }
  /** Requests expiring at or before this time may have had their nonce forgotten. */
  | { readonly kind: 'pruned'; readonly throughMs: number };

const KINDS = ['nonce', 'begin', 'pid', 'result', 'done', 'pruned'] as const;
const FRAME = 8;
/** No record is near this; a larger length is damage, not a record to allocate for. */
const MAX_BODY = 64 * 1024 * 1024;

export function encodeRecord(r: JournalRecord): Buffer {
  // The header is the record's fields but the kind (in its own byte) and the blob (after the header).
  let header: Record<string, unknown>;
  let blob: Uint8Array | undefined;
  switch (r.kind) {
    case 'begin':
      header = { key: r.key, nonce: r.nonce, notAfterMs: r.notAfterMs, executionId: r.executionId, stepId: r.stepId, startedAtMs: r.startedAtMs, maxOutputBytes: r.maxOutputBytes };
      blob = r.request;
      break;
    case 'result':
      header = { key: r.key };
      blob = r.result;
      break;
    case 'nonce':
      header = { nonce: r.nonce, notAfterMs: r.notAfterMs };
      break;
    case 'pid':
      header = { key: r.key, pid: r.pid, processStart: r.processStart, bootId: r.bootId };
      break;
    case 'done':
      header = { key: r.key };
      break;
    case 'pruned':
      header = { throughMs: r.throughMs };
      break;
  }
  const h = Buffer.from(JSON.stringify(header));
  const bodyLength = 3 + h.length + (blob?.length ?? 0);
  const out = Buffer.allocUnsafe(FRAME + bodyLength);
  out.writeUInt32LE(bodyLength, 0);
  out.writeUInt8(KINDS.indexOf(r.kind), FRAME);
  out.writeUInt16LE(h.length, FRAME + 1);
  h.copy(out, FRAME + 3);
  if (blob) out.set(blob, FRAME + 3 + h.length);
  out.writeUInt32LE(crc32(out.subarray(FRAME)), 4);
  return out;
}

/**
 * Every whole record from the start of `data`, and how many bytes they take: reading stops at
 * the first record that is cut short, fails its checksum or does not parse.
 */
export function decodeRecords(data: Uint8Array): { records: JournalRecord[]; validBytes: number } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + FRAME <= buf.length) {
    const length = buf.readUInt32LE(at);
    if (length < 3 || length > MAX_BODY || at + FRAME + length > buf.length) break;
    const body = buf.subarray(at + FRAME, at + FRAME + length);
    if (crc32(body) !== buf.readUInt32LE(at + 4)) break;
    const record = parseBody(body);
    if (!record) break;
    records.push(record);
    at += FRAME + length;
  }
  return { records, validBytes: at };
}

function parseBody(body: Buffer): JournalRecord | undefined {
  const kind = KINDS[body.readUInt8(0)];
  const hl = body.readUInt16LE(1);
  if (!kind || 3 + hl > body.length) return undefined;
  let h: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(body.subarray(3, 3 + hl).toString('utf8'));
    if (typeof v !== 'object' || v === null) return undefined;
    h = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const blob = new Uint8Array(body.subarray(3 + hl)); // a copy: the file buffer is not kept alive by one record
  const str = (k: string): string | undefined => (typeof h[k] === 'string' ? (h[k] as string) : undefined);
  const num = (k: string): number | undefined => (typeof h[k] === 'number' && Number.isFinite(h[k]) ? (h[k] as number) : undefined);
  const key = str('key');
  switch (kind) {
    case 'nonce': {
      const nonce = str('nonce');
      const notAfterMs = num('notAfterMs');
      return nonce !== undefined && notAfterMs !== undefined ? { kind, nonce, notAfterMs } : undefined;
    }
    case 'begin': {
      const nonce = str('nonce');
      const notAfterMs = num('notAfterMs');
      const executionId = str('executionId');
      const stepId = str('stepId');
      const startedAtMs = num('startedAtMs');
      const maxOutputBytes = num('maxOutputBytes');
      if (key === undefined || nonce === undefined || notAfterMs === undefined || executionId === undefined || stepId === undefined || startedAtMs === undefined || maxOutputBytes === undefined) return undefined;
      return { kind, key, nonce, notAfterMs, executionId, stepId, startedAtMs, maxOutputBytes, request: blob };
    }
    case 'pid': {
      const pid = num('pid');
      if (key === undefined || pid === undefined) return undefined;
      const processStart = str('processStart');
      const bootId = str('bootId');
      return { kind, key, pid, ...(processStart !== undefined ? { processStart } : {}), ...(bootId !== undefined ? { bootId } : {}) };
    }
    case 'result':
      return key !== undefined ? { kind, key, result: blob } : undefined;
    case 'done':
      return key !== undefined ? { kind, key } : undefined;
    case 'pruned': {
      const throughMs = num('throughMs');
      return throughMs !== undefined ? { kind, throughMs } : undefined;
    }
  }
}
