/**
 * The JSON paths a webhook mapping reads payload fields with: `$`, `.name`, `["key"]`, `[i]` and
 * negative indexes (`[-1]`: the last element). Only own properties of parsed JSON resolve: a
 * path never walks a prototype, so `$.constructor` or `$.__proto__` of `{}` find nothing, and
 * arrays and strings have no `.length` here.
 */

export type PathSegment = { readonly kind: 'key'; readonly name: string } | { readonly kind: 'index'; readonly index: number };

export interface JsonPath {
  readonly text: string;
  readonly segments: readonly PathSegment[];
}

export type ParsedPath = { readonly ok: true; readonly path: JsonPath } | { readonly ok: false; readonly error: string };

export const MAX_PATH_CHARS = 256;
export const MAX_PATH_SEGMENTS = 32;

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*/;
const INDEX = /^\[(-?(?:0|[1-9][0-9]{0,8}))\]/;
const QUOTED = /^\["((?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*)"\]/;

export function parsePath(text: string): ParsedPath {
  if (text.length > MAX_PATH_CHARS) return { ok: false, error: `is longer than ${MAX_PATH_CHARS} characters` };
  if (!text.startsWith('$')) return { ok: false, error: 'must start with $ (e.g. $.alerts[0].labels.instance)' };
  const segments: PathSegment[] = [];
  let at = 1;
  while (at < text.length) {
    const rest = text.slice(at);
    let m: RegExpExecArray | null;
    if (rest.startsWith('.')) {
      m = NAME.exec(rest.slice(1));
      if (!m) return { ok: false, error: `has no name after "." at column ${at + 2} (use ["key"] for other keys)` };
      segments.push({ kind: 'key', name: m[0] });
      at += 1 + m[0].length;
    } else if ((m = INDEX.exec(rest))) {
      segments.push({ kind: 'index', index: Number(m[1]) });
      at += m[0].length;
    } else if ((m = QUOTED.exec(rest))) {
      segments.push({ kind: 'key', name: JSON.parse(`"${m[1] ?? ''}"`) as string });
      at += m[0].length;
    } else {
      return { ok: false, error: `cannot be read at column ${at + 1}: expected .name, ["key"] or [index]` };
    }
    if (segments.length > MAX_PATH_SEGMENTS) return { ok: false, error: `has more than ${MAX_PATH_SEGMENTS} steps` };
  }
  return { ok: true, path: { text, segments } };
}

export type Resolved = { readonly found: true; readonly value: unknown } | { readonly found: false; readonly missing: string };

/** The value at `path` in `root`, or the shortest prefix of the path that finds nothing. */
export function resolvePath(root: unknown, path: JsonPath): Resolved {
  let v: unknown = root;
  let walked = '$';
  for (const s of path.segments) {
    walked += s.kind === 'key' ? (NAME.exec(s.name)?.[0] === s.name ? `.${s.name}` : `[${JSON.stringify(s.name)}]`) : `[${s.index}]`;
    if (s.kind === 'key') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return { found: false, missing: walked };
      // An own data property only: never a getter, never the prototype chain.
      const d = Object.getOwnPropertyDescriptor(v, s.name);
      if (!d || !('value' in d)) return { found: false, missing: walked };
      v = d.value;
    } else {
      if (!Array.isArray(v)) return { found: false, missing: walked };
      const i = s.index < 0 ? v.length + s.index : s.index;
      if (i < 0 || i >= v.length) return { found: false, missing: walked };
      v = v[i];
    }
  }
  return { found: true, value: v };
}
