/**
 * What a request got wrong, in words: zod issues from the request schemas become one message
 * naming each field ("options.__proto__", query parameter "state") and what it must be, plus a
 * capped list of the same for programs. Echoed values are cut short (core/echo.ts), so a huge
 * input gives a small answer. Pure.
 */
import type { z } from '@hono/zod-openapi';
import { kindOf, shown, some } from '../../core/echo.js';

type Issue = z.core.$ZodIssue;

/** Where the value came from (the validator targets used by the API). */
export type InputTarget = 'json' | 'query' | 'param' | 'header' | 'form' | 'cookie';

export interface FieldProblem {
  /** body, query, path or header. */
  readonly in: string;
  /** Dotted path into the value ("options.__proto__", "agents[0]"); "" for the whole of it. */
  readonly field: string;
  readonly problem: string;
}

export interface DescribedIssues {
  readonly message: string;
  /** At most MAX_DETAILS, in the order the schema found them. */
  readonly problems: readonly FieldProblem[];
  /** How many problems there were in all. */
  readonly count: number;
}

/** Problems named in the one-line message. */
const IN_MESSAGE = 3;
/** Problems listed in `details`. */
export const MAX_DETAILS = 10;

const WHERE: Record<InputTarget, string> = { json: 'body', query: 'query', param: 'path', header: 'header', form: 'body', cookie: 'cookie' };

export function describeIssues(target: InputTarget, issues: readonly Issue[], input: unknown): DescribedIssues {
  const problems: FieldProblem[] = issues.map((iss) => ({ in: WHERE[target], field: fieldPath(iss.path), problem: problemOf(iss, valueAt(input, iss.path)) }));
  const phrases = problems.slice(0, IN_MESSAGE).map((p) => `${label(target, p.field)} ${p.problem}`);
  const more = problems.length > IN_MESSAGE ? `; and ${problems.length - IN_MESSAGE} more problem${problems.length - IN_MESSAGE === 1 ? '' : 's'}` : '';
  return { message: `invalid request: ${phrases.join('; ')}${more}`, problems: problems.slice(0, MAX_DETAILS), count: problems.length };
}

/** `options.__proto__`, `agents[0]`; every key shortened to a bounded length. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const k = String(p);
      const safe = k.length > 40 ? `${k.slice(0, 40)}…` : k;
      out += out === '' ? safe : `.${safe}`;
    }
  }
  return out;
}

function label(target: InputTarget, field: string): string {
  if (field === '') return target === 'json' || target === 'form' ? 'the request body' : target === 'query' ? 'the query' : `the ${WHERE[target]}`;
  switch (target) {
    case 'query':
      return `query parameter ${JSON.stringify(field)}`;
    case 'param':
      return `path parameter ${JSON.stringify(field)}`;
    case 'header':
      return `header ${JSON.stringify(field)}`;
    default:
      return JSON.stringify(field);
  }
}

/** zod's own messages begin like this; anything else was written for the schema and is used as is. */
const DEFAULT_MESSAGE = /^(Invalid|Too (big|small)|Unrecognized key)/;

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'a list',
  null: 'null',
};

function problemOf(iss: Issue, received: unknown): string {
  const custom = iss.message !== '' && !DEFAULT_MESSAGE.test(iss.message) ? iss.message : undefined;
  switch (iss.code) {
    case 'invalid_type':
      if (received === undefined) return 'is required';
      return custom ?? `must be ${EXPECTED[iss.expected] ?? iss.expected}, not ${shown(received)}`;
    case 'too_big':
      return custom ?? `must be ${bound(iss.origin, 'at most', 'less than', iss.inclusive, iss.maximum)}`;
    case 'too_small':
      if (iss.origin === 'string' && Number(iss.minimum) === 1) return custom ?? 'must not be empty';
      return custom ?? `must be ${bound(iss.origin, 'at least', 'more than', iss.inclusive, iss.minimum)}`;
    case 'invalid_value':
      return custom ?? `must be ${iss.values.length === 1 ? String(iss.values[0]) : `one of ${some(iss.values.map(String), 12)}`}, not ${shown(received)}`;
    case 'invalid_union':
      return custom ?? `has the wrong type (${kindOf(received)})`;
    case 'invalid_key': {
      const inner = iss.issues[0];
      const why = inner && !DEFAULT_MESSAGE.test(inner.message) ? inner.message : 'is not an acceptable name';
      return `is not an acceptable name here: ${why}`;
    }
    case 'unrecognized_keys':
      return custom ?? `has unknown field${iss.keys.length === 1 ? '' : 's'} ${some(iss.keys.map((k) => JSON.stringify(k.slice(0, 40))))}`;
    case 'invalid_format':
      return custom ?? `is not in the expected format (${iss.format})`;
    case 'not_multiple_of':
      return custom ?? `must be a multiple of ${String(iss.divisor)}`;
    case 'invalid_element':
    case 'custom':
      return custom ?? 'is not acceptable';
  }
}

function bound(origin: string, inclusiveWord: string, exclusiveWord: string, inclusive: boolean | undefined, n: number | bigint): string {
  const word = inclusive === false ? exclusiveWord : inclusiveWord;
  const v = String(n);
  switch (origin) {
    case 'string':
      return `${word} ${v} characters long`;
    case 'array':
    case 'set':
      return `${word} ${v} items long`;
    default:
      return `${word} ${v}`;
  }
}

/** The received value at `path`, following own properties only (so `__proto__` is the key, not the prototype). */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    if (!Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}
