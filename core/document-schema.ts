/**
 * Small helpers for the pure document validators: each reads one field of a plain value,
 * records an issue (with the path into the value) when it is wrong, and returns what it could.
 */
import type { Path, ValidationIssue } from './validation.js';

export type Obj = Record<string, unknown>;

export class Issues {
  readonly list: ValidationIssue[] = [];

  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A mapping with only the given keys; unknown keys are issues with a near-miss suggestion. */
export function mapping(v: unknown, path: Path, issues: Issues, allowed: readonly string[], what: string): Obj | undefined {
  if (!isObj(v)) {
    issues.add(path, `${what} must be a mapping (key: value)`);
    return undefined;
  }
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) {
      const near = nearest(k, allowed);
      issues.add([...path, k], `unknown field "${k}" in ${what}${near ? `; did you mean "${near}"?` : ` (allowed: ${allowed.join(', ')})`}`);
    }
  }
  return v;
}

export function str(o: Obj, key: string, path: Path, issues: Issues, opts: { required?: boolean; pattern?: RegExp; hint?: string; max?: number } = {}): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (opts.required) issues.add([...path, key], `"${key}" is required${opts.hint ? ` (${opts.hint})` : ''}`);
    return undefined;
  }
  if (typeof v !== 'string') {
    issues.add([...path, key], `"${key}" must be a string${yamlScalarHint(key, v)}`);
    return undefined;
  }
  if (opts.max !== undefined && v.length > opts.max) {
    issues.add([...path, key], `"${key}" is longer than ${opts.max} characters`);
    return undefined;
  }
  if (opts.pattern && !opts.pattern.test(v)) {
    issues.add([...path, key], `"${key}" value "${v.slice(0, 80)}" is invalid${opts.hint ? `: ${opts.hint}` : ''}`);
    return undefined;
  }
  return v;
}

export function int(o: Obj, key: string, path: Path, issues: Issues, opts: { min?: number; max?: number } = {}): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    issues.add([...path, key], `"${key}" must be a whole number`);
    return undefined;
  }
  if (opts.min !== undefined && v < opts.min) {
    issues.add([...path, key], `"${key}" must be at least ${opts.min}`);
    return undefined;
  }
  if (opts.max !== undefined && v > opts.max) {
    issues.add([...path, key], `"${key}" must be at most ${opts.max}`);
    return undefined;
  }
  return v;
}

export function bool(o: Obj, key: string, path: Path, issues: Issues): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') {
    issues.add([...path, key], `"${key}" must be true or false`);
    return undefined;
  }
  return v;
}

export function strList(o: Obj, key: string, path: Path, issues: Issues, opts: { pattern?: RegExp; hint?: string; allowEmptyStrings?: boolean } = {}): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    issues.add([...path, key], `"${key}" must be a list`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x === 'number' || typeof x === 'boolean') x = String(x);
    if (typeof x !== 'string' || (!opts.allowEmptyStrings && x === '')) {
      issues.add([...path, key, i], `"${key}" entries must be non-empty strings`);
    } else if (opts.pattern && !opts.pattern.test(x)) {
      issues.add([...path, key, i], `"${x.slice(0, 80)}" is invalid${opts.hint ? `: ${opts.hint}` : ''}`);
    } else {
      out.push(x);
    }
  });
  return out;
}

/**
 * YAML reads an unquoted true, false, 3 or 1.10 as a boolean or a number, not as the text that
 * was written: say so, and how to keep it text.
 */
export function yamlScalarHint(key: string, v: unknown): string {
  if (typeof v === 'boolean') return `: YAML reads an unquoted ${String(v)} as a boolean; quote it to keep it text (${key}: "${String(v)}")`;
  if (typeof v === 'number') return `: YAML reads an unquoted ${String(v)} as a number; quote it to keep it text (${key}: "${String(v)}")`;
  return '';
}

/** The allowed word closest to `word` (edit distance ≤ 2), for "did you mean" hints. */
export function nearest(word: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = distance(word.toLowerCase(), a.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (dp[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = dp[i] as number[];
      const prev = dp[i - 1] as number[];
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return (dp[a.length] as number[])[b.length] as number;
}
