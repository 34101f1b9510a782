/**
 * Name globs (runbook ids in policies, commands in an agent's local policy): `*` matches any
 * run of characters, `?` exactly one, everything else is literal. No character classes or
 * braces, so a pattern means what it shows, and matching is a linear scan rather than a
 * regular expression built from text someone typed.
 */

/** Whether `text` matches `pattern` as a whole. */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  // Where the last `*` was and what text position it currently swallows up to: on a
  // mismatch we let that star take one more character and retry (classic wildcard match).
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      star = p++;
      mark = t;
    } else if (c !== undefined && (c === '?' || c === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether a pattern has wildcards (otherwise it matches only itself). */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/**
 * What is wrong with a pattern meant to match names made of `alphabet` characters, or
 * undefined when nothing is: a pattern using other characters can never match and is almost
 * always a typo (`Restart-*`, `restart_*`, `[a-z]*`).
 */
export function globProblem(pattern: string, alphabet: RegExp, what: string): string | undefined {
  if (pattern === '') return 'an empty pattern matches nothing';
  for (const ch of pattern) {
    if (ch === '*' || ch === '?') continue;
    if (ch === '[' || ch === ']' || ch === '{' || ch === '}') return `"${pattern.slice(0, 80)}": only * and ? are wildcards here (no [..] or {..})`;
    if (!alphabet.test(ch)) return `"${pattern.slice(0, 80)}" can never match: ${what} have no "${ch}"`;
  }
  return undefined;
}
