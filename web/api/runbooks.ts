/** Runbooks API: what the user may see or run (with the option schema for forms), and reload. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Catalog, ReloadReport } from '../../coordinator/runbooks/catalog.js';
import type { Runbook, Step } from '../../coordinator/runbooks/model.js';
import type { User } from '../../coordinator/auth/user-store.js';
import { notFound, RefusedError } from '../../core/errors.js';
import { DEFAULT_DENY_RULE } from '../../coordinator/audit/events.js';
import type { Authorizer } from '../auth/authorizer.js';
import { apiRouter, type ApiEnv } from './router.js';
import { errorResponses, json, NOTHING, optionalBody, RUNBOOK_ID } from '../validation/schemas.js';
import type { Expect, Same } from '../validation/same.js';

export interface RunbookView {
  id: string;
  title: string;
  description: string | null;
  owner: string;
  tags: readonly string[];
  digest: string;
  file: string;
  targets: string;
  strategy: string;
  concurrency: string;
  maxErrors: number;
  approval: { required: number; from: readonly string[] } | null;
  manualMinutes: number | null;
  canRun: boolean;
  options: Array<{ name: string; type: string; required: boolean; default: string | null; pattern: string | null; values: readonly string[] | null; min: number | null; max: number | null; label: string | null; description: string | null }>;
  steps: Array<{ name: string; kind: string; detail: string; timeoutMs: number; retries: number }>;
  onFailure: Array<{ name: string; kind: string; detail: string }>;
}

const RunbookViewSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    description: z.string().nullable(),
    owner: z.string(),
    tags: z.array(z.string()).readonly(),
    digest: z.string().openapi({ description: 'SHA-256 of the runbook document' }),
    file: z.string(),
    targets: z.string().openapi({ description: 'the widest selector it may touch' }),
    strategy: z.string(),
    concurrency: z.string(),
    maxErrors: z.number(),
    approval: z.object({ required: z.number(), from: z.array(z.string()).readonly() }).nullable(),
    manualMinutes: z.number().nullable(),
    canRun: z.boolean(),
    options: z.array(
      z.object({
        name: z.string(),
        type: z.string(),
        required: z.boolean(),
        default: z.string().nullable(),
        pattern: z.string().nullable(),
        values: z.array(z.string()).readonly().nullable(),
        min: z.number().nullable(),
        max: z.number().nullable(),
        label: z.string().nullable(),
        description: z.string().nullable(),
      }),
    ),
    steps: z.array(z.object({ name: z.string(), kind: z.string(), detail: z.string(), timeoutMs: z.number(), retries: z.number() })),
    onFailure: z.array(z.object({ name: z.string(), kind: z.string(), detail: z.string() })),
  })
  .openapi('Runbook');

export type RunbookSchemaMatches = Expect<Same<z.infer<typeof RunbookViewSchema>, RunbookView>>;

const ReloadSchema = z
  .object({
    added: z.array(z.object({ id: z.string(), digest: z.string() })),
    updated: z.array(z.object({ id: z.string(), digest: z.string(), previousDigest: z.string() })),
    removed: z.array(z.string()),
    kept: z.array(z.string()),
    policies: z.array(z.object({ name: z.string(), digest: z.string() })),
    problems: z.array(z.string()).openapi({ description: 'file:line:col message' }),
  })
  .openapi('RunbookReload');

const tags = ['runbooks'];
const listRoute = createRoute({ method: 'get', path: '/', tags, summary: 'Runbooks you may see or run', request: { query: NOTHING }, responses: { 200: json(z.object({ runbooks: z.array(RunbookViewSchema) }).openapi('RunbookList'), 'the runbooks'), ...errorResponses() } });
const showRoute = createRoute({
  method: 'get',
  path: '/{id}',
  tags,
  summary: 'One runbook, with its option schema',
  request: { params: z.object({ id: RUNBOOK_ID.openapi({ param: { name: 'id', in: 'path' } }) }), query: NOTHING },
  responses: { 200: json(RunbookViewSchema, 'the runbook'), ...errorResponses(404) },
});
const reloadRoute = createRoute({ method: 'post', path: '/reload', tags, summary: 'Reload runbooks and policies from the runbooks directory (admin)', request: { query: NOTHING, body: optionalBody(NOTHING) }, responses: { 200: json(ReloadSchema, 'what changed'), ...errorResponses(403, 413, 415) } });

function describeStep(s: Step): string {
  switch (s.kind) {
    case 'agent':
      return s.run ? JSON.stringify(s.run) : `script (${s.script?.interpreter.join(' ')}, ${s.script?.body.split('\n').length ?? 0} lines)`;
    case 'http':
      return `${s.method} ${s.url}`;
    case 'sleep':
      return `sleep ${s.durationMs} ms`;
    case 'approval':
      return `approval: ${s.required} from ${s.from.join(', ') || 'anyone'}`;
  }
}

export function runbookView(rb: Runbook, digest: string, file: string, canRun: boolean): RunbookView {
  const s = rb.spec;
  return {
    id: rb.metadata.id,
    title: rb.metadata.title,
    description: rb.metadata.description ?? null,
    owner: rb.metadata.owner,
    tags: rb.metadata.tags,
    digest,
    file,
    targets: s.selectorText,
    strategy: s.strategy,
    concurrency: 'count' in s.concurrency ? String(s.concurrency.count) : `${s.concurrency.percent}%`,
    maxErrors: s.maxErrors,
    approval: s.approval,
    manualMinutes: rb.metadata.manualMinutes ?? null,
    canRun,
    options: s.options.map((o) => ({
      name: o.name,
      type: o.type,
      required: o.required,
      default: o.default ?? null,
      pattern: o.pattern ?? null,
      values: o.values ?? null,
      min: o.min ?? null,
      max: o.max ?? null,
      label: o.label ?? null,
      description: o.description ?? null,
    })),
    steps: s.steps.map((st) => ({ name: st.name, kind: st.kind, detail: describeStep(st), timeoutMs: st.timeoutMs, retries: st.retries })),
    onFailure: s.onFailure.map((st) => ({ name: st.name, kind: st.kind, detail: describeStep(st) })),
  };
}

export function runbookRoutes(catalog: Catalog, authz: Authorizer, reload: (user: User) => Promise<ReloadReport>): OpenAPIHono<ApiEnv> {
  const app = apiRouter();
  const ref = (rb: Runbook): { id: string; tags: readonly string[]; owner: string } => ({ id: rb.metadata.id, tags: rb.metadata.tags, owner: rb.metadata.owner });
  app.openapi(listRoute, (c) => {
    const user = c.get('user');
    const out: RunbookView[] = [];
    for (const l of catalog.list()) {
      const canRun = authz.decide(user, 'run', ref(l.runbook)).allowed;
      if (canRun || authz.decide(user, 'view', ref(l.runbook)).allowed) out.push(runbookView(l.runbook, l.digest, l.file, canRun));
    }
    return c.json({ runbooks: out }, 200);
  });
  app.openapi(showRoute, (c) => {
    const { id } = c.req.valid('param');
    const user = c.get('user');
    const l = catalog.get(id);
    const canRun = l ? authz.decide(user, 'run', ref(l.runbook)).allowed : false;
    if (!l || !(canRun || authz.decide(user, 'view', ref(l.runbook)).allowed)) throw notFound(`no runbook "${id}" that you may see`);
    return c.json(runbookView(l.runbook, l.digest, l.file, canRun), 200);
  });
  app.openapi(reloadRoute, async (c) => {
    const user = c.get('user');
    const d = authz.decide(user, 'admin');
    if (!d.allowed) throw new RefusedError('permission_denied', `reloading runbooks is an admin action: ${d.reason}`, { action: 'reload', targetId: null, runbookId: null, rule: d.rule ?? DEFAULT_DENY_RULE, reason: d.reason });
    const r = await reload(user);
    return c.json({ added: r.added, updated: r.updated, removed: r.removed, kept: r.kept, policies: r.policies, problems: r.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.message}`) }, 200);
  });
  return app;
}
