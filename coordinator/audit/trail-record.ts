/**
 * One stored audit record as a reader sees it: its signed members picked out of the payload
 * bytes, and its data as named fields (nested members as dotted names) for a definition list.
 * Pure. Secrets were masked before the record was written; nothing here unmasks or adds.
 */
export interface TrailField {
  readonly name: string;
  /** Strings as written; other values as JSON. */
  readonly value: string;
}

export interface TrailRecord {
  readonly seq: number;
  readonly ts: string;
  readonly type: string;
  readonly code: string;
  readonly actor: { readonly kind: string; readonly id: string };
  /** The execution the record belongs to (data.executionId), if any. */
  readonly executionId: string | null;
  readonly fields: readonly TrailField[];
  /** The record's data exactly as signed (the API returns it as JSON). */
  readonly data: unknown;
  readonly keyId: string;
  /** SHA-256 of the payload bytes (hex), and the previous record's. */
  readonly hash: string;
  readonly prev: string;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Data members as fields: objects flattened to dotted names, arrays and scalars as values. */
export function trailFields(data: unknown, prefix = ''): TrailField[] {
  if (data === undefined || data === null) return [];
  if (!isPlainObject(data)) return [{ name: prefix || 'data', value: typeof data === 'string' ? data : (JSON.stringify(data) ?? 'null') }];
  const out: TrailField[] = [];
  for (const [k, v] of Object.entries(data)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length > 0) out.push(...trailFields(v, name));
    else out.push({ name, value: typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null') });
  }
  return out;
}

/** A stored record (payload bytes, hash, key id) as a TrailRecord. */
export function describeRecord(row: { readonly seq: number; readonly payload: Buffer; readonly hash: string; readonly keyId: string }): TrailRecord {
  const body = JSON.parse(row.payload.toString('utf8')) as { ts?: unknown; type?: unknown; code?: unknown; actor?: { kind?: unknown; id?: unknown }; data?: unknown; prev?: unknown };
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const exe = isPlainObject(body.data) ? body.data['executionId'] : undefined;
  return {
    seq: row.seq,
    ts: str(body.ts),
    type: str(body.type),
    code: str(body.code),
    actor: { kind: str(body.actor?.kind), id: str(body.actor?.id) },
    executionId: typeof exe === 'string' ? exe : null,
    fields: trailFields(body.data),
    data: body.data ?? null,
    keyId: row.keyId,
    hash: row.hash,
    prev: str(body.prev),
  };
}

/** A long hex value shortened for a table cell (the full value goes beside it). */
export function shortHash(h: string): string {
  return h.length > 16 ? `${h.slice(0, 12)}…` : h;
}
