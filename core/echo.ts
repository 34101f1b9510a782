/**
 * How input is repeated back in messages: an error names the value it refuses, but never
 * repeats more than a bounded amount of it, however large the input was. Every message that
 * echoes what a caller sent goes through `echo` (one value) or `some` (a list of them).
 */

/** Characters of one echoed value. */
export const ECHO_CHARS = 60;
/** Items of an echoed list. */
export const ECHO_ITEMS = 5;

/**
 * `text` as a double-quoted string (control characters escaped), cut to `max` characters with
 * the full length said: `"abc…" (1048576 characters)`.
 */
export function echo(text: string, max = ECHO_CHARS): string {
  if (text.length <= max) return JSON.stringify(text);
  // Cut on a code point boundary so a surrogate pair is never split.
  let cut = max;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return `${JSON.stringify(`${text.slice(0, cut)}…`)} (${text.length} characters)`;
}

/** The first `max` items, joined with ", ", and how many more there were. */
export function some(items: readonly string[], max = ECHO_ITEMS, join = ', '): string {
  if (items.length <= max) return items.join(join);
  return `${items.slice(0, max).join(join)}${join}and ${items.length - max} more`;
}

/** What kind of JSON value `v` is, for "expected a string, got a list". */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isFinite(v) ? 'a number' : 'a number out of range';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      return 'an object';
    case 'undefined':
      return 'nothing';
    default:
      return typeof v;
  }
}

/** A short rendering of any received value: strings echoed, numbers shown, the rest by kind. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return echo(v);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v); // at most 24 characters
  return kindOf(v);
}
