/**
 * The hook every API route's validators call: a request that does not match its schema is
 * refused with 400 and the one error body (web/errors.ts), naming each field it got wrong.
 */
import type { Context } from 'hono';
import type { ZodError } from 'zod';
import { HandrailError } from '../../core/errors.js';
import { describeIssues, type InputTarget } from './issues.js';

type Result = { target: InputTarget } & ({ success: true } | { success: false; error: ZodError });

export async function validationHook(result: Result, c: Context): Promise<undefined> {
  if (result.success) return undefined;
  const d = describeIssues(result.target, result.error.issues, await receivedInput(c, result.target));
  throw new HandrailError('invalid_argument', d.message, { details: { problems: d.problems, count: d.count } });
}

/** What the validator saw, to name received values in messages (the body is parsed once and cached). */
async function receivedInput(c: Context, target: InputTarget): Promise<unknown> {
  switch (target) {
    case 'json':
      return c.req.json().catch(() => undefined);
    case 'query':
      return Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
    case 'param':
      return c.req.param();
    case 'header':
      return c.req.header();
    case 'form':
    case 'cookie':
      return undefined;
  }
}
