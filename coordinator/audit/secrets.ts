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

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * The append path's last line of defence, applied to every record's data: a secret-looking
 * member is written as REDACTED (or kept if an emit site already masked it as SECRET_MASK),
 * a PEM private key anywhere becomes REDACTED, and a Handrail token inside any string is cut
 * out. Members whose value is undefined are dropped, as JSON.stringify would.
 */
export function scrubSecrets(value: unknown): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      out[k] = isSecretName(k) && v !== null ? (v === SECRET_MASK ? SECRET_MASK : REDACTED) : scrubSecrets(v);
    }
    return out;
  }
  return value;
}

function scrubString(s: string): string {
  if (s.includes('PRIVATE KEY-----')) return REDACTED;
  // Cheap pre-test: most strings hold no "hr" followed by "_" at all.
  if (!s.includes('_') || !/hr[nstuw]_/.test(s)) return s;
  return s.replace(HANDRAIL_TOKEN, REDACTED);
}
