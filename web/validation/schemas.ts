/**
 * Building blocks of the request schemas: strict objects (an unknown field is an error that
 * names it and the nearest known one), records that refuse the key `__proto__` and bound their
 * size, query integers, names and ids, and the error body every refusal uses. The OpenAPI
 * document is generated from these same schemas.
 */
import { z } from '@hono/zod-openapi';
import { ERROR_KINDS } from '../../core/errors.js';
import { nearest } from '../../core/document-schema.js';
import { echo, some } from '../../core/echo.js';
import { historyTime, TIME_FORMS } from '../../coordinator/engine/history-filters.js';

/**
 * A strict object: unknown fields are refused, each named, with a suggestion when one is a
 * near miss (`target` → `targets`).
 */
export function strictObject<S extends z.core.$ZodLooseShape>(shape: S): z.ZodObject<S, z.core.$strict> {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'unrecognized_keys') return undefined;
      const named = iss.keys.map((k) => {
        const near = nearest(k, allowed);
        return `${echo(k, 40)}${near ? ` (did you mean "${near}"?)` : ''}`;
      });
      const takes = allowed.length === 0 ? 'this request takes none' : `this request takes: ${allowed.join(', ')}`;
      return `has unknown field${iss.keys.length === 1 ? '' : 's'} ${some(named)} (${takes})`;
    },
  });
}

/** A query (or body) with no fields at all. */
export const NOTHING = strictObject({});

/**
 * An object of NAME: value whose names match `key`. JSON may carry `__proto__` as an own key,
 * which a plain object would swallow; it is refused here, by name. At most `maxKeys` entries.
 */
export function safeRecord<V extends z.ZodType>(key: z.ZodString, value: V, maxKeys: number, what: string): z.ZodType<Record<string, z.output<V>>, unknown> {
  return z.preprocess(
    (v, ctx) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
      if (Object.prototype.hasOwnProperty.call(v, '__proto__')) {
        ctx.addIssue({ code: 'custom', message: `cannot be ${what}`, path: ['__proto__'], input: v });
      }
      const n = Object.keys(v).length;
      if (n > maxKeys) ctx.addIssue({ code: 'custom', message: `has ${n} entries; at most ${maxKeys} are allowed`, input: v });
      return v;
    },
    z.record(key, value),
  ) as unknown as z.ZodType<Record<string, z.output<V>>, unknown>;
}

/** A whole number in a query string: digits only (no "1e3", no " 5"), then bounds. */
export function queryInt(min: number, max: number): z.ZodType<number, string> {
  return z
    .string()
    .regex(/^[0-9]{1,15}$/, { error: `must be a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: `must be a whole number from ${min} to ${max}` }).max(max, { error: `must be a whole number from ${min} to ${max}` }));
}

/** Identifiers made by core/ids.ts (`exe-…`, `sr-…`, `agt-…`). */
export function handrailId(prefix: string, what: string): z.ZodString {
  return z.string().max(64, { error: `is not ${what}`, abort: true }).regex(new RegExp(`^${prefix}-[0-9a-z]{1,40}$`), { error: `is not ${what}` });
}

/** Runbook ids as validate-runbook.ts allows them. */
export const RUNBOOK_ID = z
  .string()
  .max(63, { error: 'is not a runbook id (at most 63 characters)', abort: true })
  .regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'is not a runbook id (lower-case letters, digits and -)' })
  .openapi({ example: 'restart-web' });

/** User names as the user store allows them. */
export const USER_NAME = z
  .string()
  .max(63, { error: 'is not a user name (at most 63 characters)', abort: true })
  .regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'is not a user name (lower-case letters, digits, . _ -)' });

/** Team names: a runbook's metadata.owner as validate-runbook.ts allows it. */
export const TEAM = z
  .string()
  .max(63, { error: 'is not a team name (at most 63 characters)', abort: true })
  .regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'is not a team name (lower-case letters, digits, . _ -), as in a runbook\'s metadata.owner' });

/** A point in time for a filter (coordinator/engine/history-filters.ts says what it means). */
export const FILTER_TIME = z
  .string()
  .max(40, { error: `is not ${TIME_FORMS}`, abort: true })
  .superRefine((v, ctx) => {
    const t = historyTime(v, 'from');
    if ('error' in t) ctx.addIssue({ code: 'custom', message: t.error, input: v });
  })
  .openapi({ example: '2026-11-23' });

/** Durations as core/duration.ts reads them. */
export const DURATION = z
  .string()
  .max(32, { error: 'is not a duration (at most 32 characters)', abort: true })
  .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$/, { error: 'is not a duration: use a number and a unit, e.g. 500ms, 30s, 5m, 1h30m', abort: true })
  .openapi({ example: '30s' });

export const ErrorBodySchema = z
  .object({
    error: z.object({
      kind: z.enum(ERROR_KINDS),
      message: z.string(),
      hint: z.string().optional(),
      details: z.unknown().optional().openapi({ description: 'for invalid requests: `{problems: [{in, field, problem}], count}`' }),
      requestId: z.string().optional().openapi({ description: 'the id the audit records of this request carry (also in X-Request-Id)' }),
    }),
  })
  .openapi('Error');

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'the request is invalid: the message names each field and what it must be',
  401: 'no API token, or one that is invalid, expired or revoked',
  403: 'policy does not allow it (the message names the rule)',
  404: 'no such thing, or one this user may not see',
  409: 'not possible in the current state',
  413: 'the request body is larger than the limit',
  415: 'a body that is not JSON',
  503: 'not available right now; retry',
};

/** Error responses for a route's OpenAPI description (every one has the same body). */
export function errorResponses(...statuses: ReadonlyArray<keyof typeof ERROR_DESCRIPTIONS>): Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorBodySchema } } }> {
  const out: Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorBodySchema } } }> = {};
  for (const s of [400, 401, ...statuses]) out[s] = { description: ERROR_DESCRIPTIONS[s] ?? 'error', content: { 'application/json': { schema: ErrorBodySchema } } };
  return out;
}

/** A JSON response for a route's description. */
export function json<T extends z.ZodType>(schema: T, description: string): { description: string; content: { 'application/json': { schema: T } } } {
  return { description, content: { 'application/json': { schema } } };
}

/** An optional JSON body (POSTs that may carry a small object, or nothing). */
export function optionalBody<T extends z.ZodType>(schema: T): { required: false; content: { 'application/json': { schema: T } } } {
  return { required: false, content: { 'application/json': { schema } } };
}

/** A required JSON body. */
export function requiredBody<T extends z.ZodType>(schema: T): { required: true; content: { 'application/json': { schema: T } } } {
  return { required: true, content: { 'application/json': { schema } } };
}
