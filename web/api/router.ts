/**
 * Every API route module builds its routes on one of these: an OpenAPIHono whose validators
 * refuse what the route's schemas do not describe (web/validation/hook.ts), and whose routes
 * end up in the OpenAPI document.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthVariables } from '../auth/bearer.js';
import type { RequestIdVariables } from '../request-id.js';
import { validationHook } from '../validation/hook.js';

export type ApiEnv = { Variables: AuthVariables & RequestIdVariables };

export function apiRouter(): OpenAPIHono<ApiEnv> {
  return new OpenAPIHono<ApiEnv>({ defaultHook: validationHook });
}
