/**
 * A page's query string read through the API's schema for it (the same names, limits and
 * messages). A filter form sends its untouched fields empty: those are not given. A bad value
 * is a 400 that names the field.
 */
import type { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HandrailError } from '../../core/errors.js';
import { describeIssues } from '../validation/issues.js';

export function pageQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const given = Object.fromEntries(
    Object.entries(c.req.queries())
      .filter(([, v]) => !(v.length === 1 && v[0] === ''))
      .map(([k, v]) => [k, v.length === 1 ? (v[0] as string) : v]),
  );
  const parsed = schema.safeParse(given);
  if (!parsed.success) throw new HandrailError('invalid_argument', describeIssues('query', parsed.error.issues, given).message);
  return parsed.data;
}
