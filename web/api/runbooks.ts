/** Runbooks API: what the user may see or run (with the option schema for forms), and reload. */
import { Hono } from 'hono';
import type { Catalog, ReloadReport } from '../../coordinator/runbooks/catalog.js';
import type { Runbook, Step } from '../../coordinator/runbooks/model.js';
import type { User } from '../../coordinator/auth/user-store.js';
import { notFound, permissionDenied } from '../../core/errors.js';
import type { AuthVariables } from '../auth/bearer.js';
import type { Authorizer } from '../auth/authorizer.js';

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

export function runbookRoutes(catalog: Catalog, authz: Authorizer, reload: (user: User) => Promise<ReloadReport>): Hono<{ Variables: AuthVariables }> {
  const app = new Hono<{ Variables: AuthVariables }>();
  const ref = (rb: Runbook): { id: string; tags: readonly string[]; owner: string } => ({ id: rb.metadata.id, tags: rb.metadata.tags, owner: rb.metadata.owner });
  app.get('/', (c) => {
    const user = c.get('user');
    const out: RunbookView[] = [];
    for (const l of catalog.list()) {
      const canRun = authz.decide(user, 'run', ref(l.runbook)).allowed;
      if (canRun || authz.decide(user, 'view', ref(l.runbook)).allowed) out.push(runbookView(l.runbook, l.digest, l.file, canRun));
    }
    return c.json({ runbooks: out });
  });
  app.get('/:id', (c) => {
    const user = c.get('user');
    const l = catalog.get(c.req.param('id'));
    const canRun = l ? authz.decide(user, 'run', ref(l.runbook)).allowed : false;
    if (!l || !(canRun || authz.decide(user, 'view', ref(l.runbook)).allowed)) throw notFound(`no runbook "${c.req.param('id')}" that you may see`);
    return c.json(runbookView(l.runbook, l.digest, l.file, canRun));
  });
  app.post('/reload', async (c) => {
    const user = c.get('user');
    const d = authz.decide(user, 'admin');
    if (!d.allowed) throw permissionDenied(`reloading runbooks is an admin action: ${d.reason}`);
    const r = await reload(user);
    return c.json({ added: r.added, updated: r.updated, removed: r.removed, kept: r.kept, policies: r.policies, problems: r.problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.message}`) });
  });
  return app;
}
