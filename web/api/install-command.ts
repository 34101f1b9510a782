/**
 * POST /api/v1/agents/install-command (admin): mints a one-time bootstrap token pinned to the
 * given labels and answers the one line to paste on a host (coordinator/install/install-kit.ts).
 * The CLI's `handrail agent install-command` and the hosts page call it. The answer holds the
 * token's secret, once; the store keeps only its hash, and nothing here logs the line.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { CreatedToken, CreateTokenInput } from '../../coordinator/registry/token-store.js';
import { installLine, type InstallKit } from '../../coordinator/install/install-kit.js';
import { failedPrecondition, invalidArgument, permissionDenied, HandrailError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { labelProblems } from '../../core/labels.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { User } from '../../coordinator/auth/user-store.js';
import { apiRouter, type ApiEnv } from './router.js';
import { DURATION, errorResponses, json, NOTHING, requiredBody, safeRecord, strictObject } from '../validation/schemas.js';

export interface InstallCommandDeps {
  /** undefined: no agent bundle on this coordinator; `unavailable` says why. */
  readonly kit: InstallKit | undefined;
  readonly unavailable: string;
  /** The agent port this coordinator listens on (the default port in the line). */
  readonly grpcPort: number;
  /** --public-url: the web address hosts use (default: the one this request came to). */
  readonly publicUrl?: string;
  /** --agent-address: HOST:PORT hosts dial (default: the public URL's host, the agent port). */
  readonly agentAddress?: string;
  readonly createToken: (input: CreateTokenInput, now: number) => Promise<CreatedToken>;
  readonly now: () => number;
}

const MAX_TTL_MS = 7 * 86_400_000;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}$/;

export const InstallCommandBody = strictObject({
  labels: safeRecord(z.string().max(63), z.string().max(63), 64, 'a label name').optional().openapi({ description: 'labels pinned on the agent (they override its own)' }),
  ttl: DURATION.optional().openapi({ description: 'how long the token is valid (default 1h, at most 7d)' }),
  namePattern: z.string().regex(/^[A-Za-z0-9._*?-]{1,63}$/, { error: 'must be a glob of letters, digits, . _ - * ?' }).optional().openapi({ description: 'glob the agent name must match, e.g. "web-*"' }),
  uses: z.number().int().min(1).max(100_000).optional().openapi({ description: 'how many hosts may enroll with the line (default 1)' }),
  server: z.string().max(2048).optional().openapi({ description: 'the https URL hosts reach the coordinator\'s web port at (default: --public-url, else this request\'s)' }),
  coordinator: z.string().max(300).regex(HOST_PORT, { error: 'must be HOST:PORT' }).optional().openapi({ description: 'HOST:PORT hosts reach the agent port at' }),
}).openapi('InstallCommandRequest');

const Answer = z
  .object({
    line: z.string().openapi({ description: 'paste it in a root (or sudo-capable) shell on the host' }),
    tokenId: z.string(),
    expiresAt: z.string(),
    uses: z.number(),
    labels: z.record(z.string(), z.string()),
    namePattern: z.string().nullable(),
    server: z.string(),
    coordinator: z.string(),
    caSha256: z.string(),
    bundleSha256: z.string(),
    version: z.string(),
  })
  .openapi('InstallCommand');

const route = createRoute({
  method: 'post',
  path: '/install-command',
  tags: ['agents'],
  summary: 'A one-line agent installer with a fresh one-time enrollment token (admin)',
  request: { query: NOTHING, body: requiredBody(InstallCommandBody) },
  responses: { 201: json(Answer, 'the line and its token'), ...errorResponses(403, 409, 413, 415, 503) },
});

function httpsUrl(text: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidArgument(`${where} "${text.slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'https:') {
    throw failedPrecondition(`${where} ${url.origin} is not https: the install line downloads the agent, which only a CA-checked connection may deliver`, 'serve the web port over HTTPS (`handrail coordinator --http-tls`) and give its https:// address (--public-url)');
  }
  return url;
}

export type InstallCommand = z.infer<typeof Answer>;

const NOT_SERVED = 'this coordinator does not serve the agent installer';

/**
 * Why no install command can be made with the defaults (no installer, no agent bundle, a web
 * address that is not https), as one sentence with what to do; undefined when one can.
 */
export function installUnavailable(d: InstallCommandDeps | undefined, requestUrl: string): string | undefined {
  if (!d) return NOT_SERVED;
  if (!d.kit) return d.unavailable;
  try {
    httpsUrl(d.publicUrl ?? new URL(requestUrl).origin, d.publicUrl ? '--public-url' : "this coordinator's web address");
    return undefined;
  } catch (e) {
    return e instanceof HandrailError ? `${e.message}${e.hint ? `; ${e.hint}` : ''}` : String(e);
  }
}

/**
 * Mints a one-time token for `user` (an admin) and builds the line: the API route and the hosts
 * page both come here. `requestUrl`: the URL the request came to (the default server address).
 */
export async function mintInstallCommand(d: InstallCommandDeps | undefined, authz: Authorizer, user: User, b: z.infer<typeof InstallCommandBody>, requestUrl: string): Promise<InstallCommand> {
  const decision = authz.decide(user, 'admin');
  if (!decision.allowed) throw permissionDenied(`install commands mint enrollment tokens, an admin action: ${decision.reason}`);
  if (!d) throw new HandrailError('unavailable', NOT_SERVED);
  if (!d.kit) throw new HandrailError('unavailable', d.unavailable);
  const labels = b.labels ?? {};
  const problems = labelProblems(labels);
  if (problems.length > 0) throw invalidArgument(`labels: ${problems.join('; ')}`);
  const ttlMs = b.ttl === undefined ? 3_600_000 : parseDuration(b.ttl);
  if (ttlMs < 1_000 || ttlMs > MAX_TTL_MS) throw invalidArgument('ttl must be at least 1s and at most 7d');
  const server = httpsUrl(b.server ?? d.publicUrl ?? new URL(requestUrl).origin, b.server ? 'server' : d.publicUrl ? '--public-url' : 'this request\'s address');
  const coordinator = b.coordinator ?? d.agentAddress ?? `${server.hostname}:${d.grpcPort}`;
  const uses = b.uses ?? 1;
  const namePattern = b.namePattern ?? null;
  const token = await d.createToken({ labels, ttlMs, uses, namePattern, description: 'install-command', createdBy: user.name, actorKind: 'user' }, d.now());
  const line = installLine({ serverUrl: server.origin, coordinator, caSha256: d.kit.caSha256, token: token.token });
  return { line, tokenId: token.id, expiresAt: new Date(token.expiresAt).toISOString(), uses, labels, namePattern, server: server.origin, coordinator, caSha256: d.kit.caSha256, bundleSha256: d.kit.bundleSha256, version: d.kit.version };
}

export function installCommandRoutes(d: InstallCommandDeps, authz: Authorizer): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  app.openapi(route, async (c) => c.json(await mintInstallCommand(d, authz, c.get('user'), c.req.valid('json'), c.req.url), 201));
  return app;
}
