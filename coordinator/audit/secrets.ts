/**
 * Keeping secrets out of audit records. Two layers: emit sites mask the values they know to be
 * secret (`maskSecrets`, e.g. options a runbook declares `type: secret`), and the append path
 * scrubs whatever still looks secret (`scrubSecrets`), so one forgotten mask cannot put a
 * password into a log that is signed, exported and kept for years.
 */

/** What a masked value is written as (the same mask the portal shows). */
export const SECRET_MASK = '********';
/** What the append path writes for a secret-looking member an emit site did not mask. */
export const REDACTED = '[redacted]';

export type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json | undefined };

/**
 * Replaces the value of every member named in `secretNames`, at any depth, with SECRET_MASK.
 * Pure: returns a new value. Names match exactly (option names are case-sensitive).
 */
export function maskSecrets(value: Json, secretNames: Iterable<string>): Json {
  const names = secretNames instanceof Set ? (secretNames as ReadonlySet<string>) : new Set(secretNames);
  if (names.size === 0) return value;
  const walk = (v: Json): Json => {
    if (Array.isArray(v)) return (v as readonly Json[]).map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, Json> = {};
      for (const [k, x] of Object.entries(v as { readonly [k: string]: Json | undefined })) {
        if (x === undefined) continue;
        out[k] = names.has(k) ? SECRET_MASK : walk(x);
      }
      return out;
    }
    return v;
  };
  return walk(value);
}

/**
 * Member names that carry secrets: token, password, passwd, secret, private key, API key or
 * credential(s), alone or as the last word of a longer name (bootstrapToken, DB_PASSWORD,
 * clientSecret, HANDRAIL_OPT_API_KEY). Ids and digests of such things (tokenId, keyId) are not
 * secret and end in another word.
 */
const SECRET_NAME = /(?:token|password|passwd|secret|private_?key|api_?key|credentials?)$/i;

/** Handrail's own bearer secrets (bootstrap `hrt_…`, API `hru_…`, portal session `hrs_…`), notification secrets (`hrn_…`) and webhook secrets (`hrw_…`), wherever they appear in a string. */
const HANDRAIL_TOKEN = /\bhr[nstuw]_[A-Za-z0-9_-]{16,}/g;

/**
 * Decisions per member name: the append path asks for every member of every record, and the
 * names are few (event payload fields, option and env var names). Bounded: cleared when full.
 */
const secretNameCache = new Map<string, boolean>();
const SECRET_NAME_CACHE_MAX = 4096;

export function isSecretName(name: string): boolean {
  let secret = secretNameCache.get(name);
  if (secret === undefined) {
    secret = SECRET_NAME.test(name);
    if (secretNameCache.size >= SECRET_NAME_CACHE_MAX) secretNameCache.clear();
    secretNameCache.set(name, secret);
  }
  return secret;
}

/**
 * The append path's last line of defence, applied to every record's data: a secret-looking
 * member is written as REDACTED (or kept if an emit site already masked it as SECRET_MASK),
 * a PEM private key anywhere becomes REDACTED, and a Handrail token inside any string is cut
 * out. Members whose value is undefined are dropped, as JSON.stringify would.
 */
export function scrubSecrets(value: unknown): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(scrubSecrets);
  const out: Record<string, unknown> = {};
  const obj = value as Record<string, unknown>;
  // for…in over own keys (no Object.entries pairs): this runs for every member of every record.
  for (const k in obj) {
    if (!Object.hasOwn(obj, k)) continue;
    const v = obj[k];
    if (v === undefined) continue;
    out[k] = isSecretName(k) && v !== null ? (v === SECRET_MASK ? SECRET_MASK : REDACTED) : scrubSecrets(v);
  }
  return out;
}

function scrubString(s: string): string {
  if (s.includes('PRIVATE KEY-----')) return REDACTED;
  // Cheap pre-test: most strings hold no "hr" followed by "_" at all.
  if (!s.includes('_') || !/hr[nstuw]_/.test(s)) return s;
  return s.replace(HANDRAIL_TOKEN, REDACTED);
}
