/**
 * GET /runbooks/:id — one runbook: what it is for, who owns it, the hosts it would touch now,
 * its steps as they will run, and (for users who may run it) the option form.
 * POST /runbooks/:id/run — checks the options with the runbook's own validation, starts the
 * execution through the same engine call as the API, and sends the browser to its page.
 *
 * A runbook the user may neither run nor view is "not found", exactly like one that does not exist.
 */
import { Hono, type Context } from 'hono';
import type { LoadedRunbook } from '../../../coordinator/runbooks/catalog.js';
import type { OptionDef, Step } from '../../../coordinator/runbooks/model.js';
import { ExecutionIdParam, StartExecutionBody } from '../../api/execution-schemas.js';
import { describeIssues, type DescribedIssues } from '../../validation/issues.js';
import type { User } from '../../../coordinator/auth/user-store.js';
import { resolveOptions } from '../../../coordinator/runbooks/options.js';
import { executionOwner, loadExecution } from '../../../coordinator/store/execution-queries.js';
import { listAgentRecords } from '../../../coordinator/registry/agent-registry.js';
import { hostLabels } from '../../../coordinator/engine/engine.js';
import { matches } from '../../../core/selector.js';
import { HandrailError, notFound, permissionDenied } from '../../../core/errors.js';
import { newId } from '../../../core/ids.js';
import { Page, render } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { statusOf } from '../page-errors.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';
import { initialFormState, optionsFromForm, RunForm, type RunFormState } from './option-form.js';

interface HostPreview {
  readonly id: string;
  readonly name: string;
  readonly online: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

interface Access {
  readonly loaded: LoadedRunbook;
  readonly canRun: boolean;
}

function StepDetail(p: { step: Step }) {
  const s = p.step;
  const limits = [`timeout ${Math.round(s.timeoutMs / 1000)} s`, ...(s.retries > 0 ? [`${s.retries} retr${s.retries === 1 ? 'y' : 'ies'}`] : []), ...(s.continueOnError ? ['continues on error'] : [])].join(' · ');
  switch (s.kind) {
    case 'agent':
      return (
        <>
          {s.run ? (
            <p class="argv" aria-label="Command, one argument per box">
              {s.run.map((a) => (
                <code>{a}</code>
              ))}
            </p>
          ) : null}
          {s.script ? (
            <>
              <p class="hint">script run by {s.script.interpreter.join(' ')}</p>
              <pre>{s.script.body}</pre>
            </>
          ) : null}
          {Object.keys(s.env).length > 0 ? (
            <p class="hint">
              environment:{' '}
              {Object.entries(s.env).map(([k, v]) => (
                <code>{`${k}=${v}`} </code>
              ))}
            </p>
          ) : null}
          <p class="hint">on each host · {limits}</p>
        </>
      );
    case 'http':
      return (
        <p class="hint">
          HTTP request from the coordinator: <code>{`${s.method} ${s.url}`}</code> · {limits}
        </p>
      );
    case 'sleep':
      return <p class="hint">waits {Math.round(s.durationMs / 100) / 10} s on the coordinator</p>;
    case 'approval':
      return (
        <p class="hint">
          waits for {s.required} approval{s.required === 1 ? '' : 's'} from {s.from.join(', ') || 'anyone allowed to approve'}
          {s.message ? `: ${s.message}` : ''}
        </p>
      );
  }
}

function Steps(p: { steps: readonly Step[] }) {
  return (
    <ol class="steps">
      {p.steps.map((s) => (
        <li>
          <strong>{s.name}</strong>
          <StepDetail step={s} />
        </li>
      ))}
    </ol>
  );
}

function RunbookPage(p: { access: Access; hosts: readonly HostPreview[]; policyRefusal: string | undefined; form: RunFormState; csrfToken: string }) {
  const rb = p.access.loaded.runbook;
  const m = rb.metadata;
  const s = rb.spec;
  const online = p.hosts.filter((h) => h.online).length;
  return (
    <>
      <p>
        <a href="/runbooks">← All runbooks</a>
      </p>
      <h1>{m.title}</h1>
      {m.description ? <p>{m.description}</p> : null}
      <dl class="facts">
        <dt>Id</dt>
        <dd>
          <code>{m.id}</code>
        </dd>
        <dt>Owner</dt>
        <dd>{m.owner}</dd>
        {m.tags.length > 0 ? (
          <>
            <dt>Tags</dt>
            <dd>{m.tags.join(', ')}</dd>
          </>
        ) : null}
        {m.manualMinutes !== undefined ? (
          <>
            <dt>Saves</dt>
            <dd>about {m.manualMinutes} minutes of manual work per run</dd>
          </>
        ) : null}
        <dt>Targets</dt>
        <dd>
          <code>{s.selectorText}</code>, {s.strategy === 'rolling' ? 'one batch after another' : 'in parallel'} ({'count' in s.concurrency ? `${s.concurrency.count} at a time` : `${s.concurrency.percent}% at a time`}),{' '}
          {s.maxErrors === 0 ? 'stops at the first failed host' : `carries on through up to ${s.maxErrors} failed host${s.maxErrors === 1 ? '' : 's'}`}
        </dd>
        <dt>Version</dt>
        <dd>
          <code title="SHA-256 of the runbook's source">{p.access.loaded.digest.slice(0, 16)}</code> from {p.access.loaded.file}
        </dd>
      </dl>

      <h2>Hosts it would run on now</h2>
      {p.hosts.length === 0 ? (
        <p class="notice">No enrolled host matches {s.selectorText} right now, so a run would have nothing to do.</p>
      ) : (
        <>
          <p class="muted">
            {p.hosts.length} host{p.hosts.length === 1 ? '' : 's'}, {online} online
          </p>
          <ul data-testid="host-preview">
            {p.hosts.map((h) => (
              <li>
                <strong>{h.name}</strong> — {h.online ? 'online' : 'offline'}{' '}
                <span class="muted">
                  {Object.entries(h.labels)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}

      <h2>Steps, in order, on each host</h2>
      <Steps steps={s.steps} />
      {s.onFailure.length > 0 ? (
        <>
          <h3>If a host fails</h3>
          <Steps steps={s.onFailure} />
        </>
      ) : null}

      <h2 id="run-heading">Run</h2>
      {p.access.canRun ? (
        <>
          {p.policyRefusal ? (
            <p class="notice" role="status">
              Policy would refuse a run on these hosts now: {p.policyRefusal}
            </p>
          ) : null}
          <RunForm runbookId={m.id} defs={s.options} state={p.form} csrfToken={p.csrfToken} approval={s.approval} />
        </>
      ) : (
        <p class="notice">You may look at this runbook but not run it.</p>
      )}
    </>
  );
}

/** The request schema's problems as the form shows them: an option's beside its field, the rest above the form. */
function requestProblems(d: DescribedIssues, defs: readonly OptionDef[]): { errors: Record<string, string>; formError?: string } {
  const errors: Record<string, string> = {};
  const rest: string[] = [];
  for (const p of d.problems) {
    const name = p.field.startsWith('options.') ? p.field.slice('options.'.length) : undefined;
    if (name !== undefined && defs.some((o) => o.name === name)) errors[name] ??= p.problem;
    else rest.push(`${p.field === 'reason' ? 'The reason' : p.field} ${p.problem}`);
  }
  return rest.length > 0 ? { errors, formError: rest.join('; ') } : { errors };
}

export function runbookRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);

  const access = (user: User, id: string): Access => {
    const loaded = d.catalog.get(id);
    if (loaded) {
      const r = { id: loaded.runbook.metadata.id, tags: loaded.runbook.metadata.tags, owner: loaded.runbook.metadata.owner };
      const canRun = d.authz.decide(user, 'run', r).allowed;
      if (canRun || d.authz.decide(user, 'view', r).allowed) return { loaded, canRun };
    }
    throw notFound(`no runbook "${id.slice(0, 80)}" that you may see`);
  };

  const hostsFor = async (user: User, a: Access): Promise<{ hosts: HostPreview[]; refusal: string | undefined }> => {
    const rb = a.loaded.runbook;
    const agents = (await listAgentRecords(d.reader)).filter((x) => x.revokedAt === null && matches(rb.spec.selector, hostLabels(x)));
    const hosts = agents.map((x) => ({ id: x.id, name: x.name, online: d.isOnline(x.id), labels: x.labels })).sort((x, y) => x.name.localeCompare(y.name));
    let refusal: string | undefined;
    if (a.canRun && agents.length > 0) {
      const decision = d.authz.decide(user, 'run', { id: rb.metadata.id, tags: rb.metadata.tags, owner: rb.metadata.owner }, { selector: rb.spec.selectorText, agents: agents.map((x) => ({ id: x.id, name: x.name, labels: x.labels })) });
      if (!decision.allowed) refusal = decision.reason;
    }
    return { hosts, refusal };
  };

  const show = async (c: Context<PortalEnv>, a: Access, form: RunFormState, status: 200 | 400 | 403 | 404 | 409 | 503 = 200): Promise<Response> => {
    const user = c.get('user');
    const { hosts, refusal } = await hostsFor(user, a);
    return render(
      c,
      <Page title={a.loaded.runbook.metadata.title} viewer={viewerOf(c.var)} section="runbooks">
        <RunbookPage access={a} hosts={hosts} policyRefusal={refusal} form={form} csrfToken={c.get('csrfToken')} />
      </Page>,
      status,
    );
  };

  app.get('/runbooks/:id', page, async (c) => {
    const a = access(c.get('user'), c.req.param('id'));
    // ?rerun=EXECUTION prefills the form with that execution's options (secrets left empty).
    const rerun = c.req.query('rerun');
    let prefill: Record<string, string> = {};
    if (rerun && ExecutionIdParam.safeParse({ id: rerun }).success) {
      const owner = await executionOwner(d.reader, rerun);
      if (owner && owner.runbookId === a.loaded.runbook.metadata.id && (await d.access.canView(c.get('user'), owner))) {
        const view = await loadExecution(d.reader, rerun);
        for (const [k, v] of Object.entries(view?.options ?? {})) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') prefill[k] = String(v);
      } else prefill = {};
    }
    return show(c, a, initialFormState(a.loaded.runbook.spec.options, prefill));
  });

  app.post('/runbooks/:id/run', post, async (c) => {
    const user = c.get('user');
    const a = access(user, c.req.param('id'));
    if (!a.canRun) throw permissionDenied(`you may not run ${a.loaded.runbook.metadata.id}`);
    const form = c.get('form');
    const defs = a.loaded.runbook.spec.options;
    const options = optionsFromForm(defs, form);
    const reason = (form['reason'] ?? '').trim();
    const kept: Record<string, string> = {};
    for (const def of defs) if (def.type !== 'secret' && form[`opt.${def.name}`] !== undefined) kept[def.name] = form[`opt.${def.name}`] as string;
    // The API's request schema first (the same bounds as a request with a token), then the runbook's own option checks.
    const request = { runbook: a.loaded.runbook.metadata.id, options, ...(reason ? { reason } : {}) };
    const checked = StartExecutionBody.safeParse(request);
    if (!checked.success) return show(c, a, { values: kept, ...requestProblems(describeIssues('form', checked.error.issues, request), defs), reason }, 400);
    const resolved = resolveOptions(a.loaded.runbook, options);
    if (resolved.problems.length > 0) {
      const errors: Record<string, string> = {};
      for (const p of resolved.problems) if (p.declared && errors[p.option] === undefined) errors[p.option] = p.message;
      return show(c, a, { values: kept, errors, reason }, 400);
    }
    try {
      const out = await d.executions.start({ runbookId: a.loaded.runbook.metadata.id, options, targets: undefined, reason: reason === '' ? undefined : reason, user, requestId: c.get('requestId') ?? newId('req') });
      return c.redirect(`/executions/${encodeURIComponent(out.executionId)}`, 303);
    } catch (e) {
      if (!(e instanceof HandrailError) || e.kind === 'internal') throw e;
      const status = statusOf(e.kind);
      return show(c, a, { values: kept, errors: {}, reason, formError: e.message }, status === 404 || status === 403 || status === 409 || status === 503 ? status : 400);
    }
  });
  return app;
}
