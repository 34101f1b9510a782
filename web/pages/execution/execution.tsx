/**
 * GET /executions/:id — one execution: who started it and when, the runbook version (digest),
 * its options (secrets masked as they were stored), each host's state and each step's exit
 * status, duration and output. While it runs, the page follows the execution's event stream
 * (web/static/live-output.ts); without JavaScript, reloading shows the progress.
 * POST /executions/:id/cancel — the Cancel button.
 *
 * An execution the user may not see is "not found", exactly like one that does not exist.
 */
import { Hono, type Context } from 'hono';
import type { User } from '../../../coordinator/auth/user-store.js';
import { ACTIVE_EXECUTION_STATES, executionOwner, loadExecution, readOutput, type ExecutionView } from '../../../coordinator/store/execution-queries.js';
import { MASK } from '../../../coordinator/runbooks/options.js';
import { notFound } from '../../../core/errors.js';
import { echo } from '../../../core/echo.js';
import { ExecutionIdParam } from '../../api/execution-schemas.js';
import { CsrfField, duration, Notice, Page, render, StateBadge, Time } from '../layout/layout.js';
import { STATE_LOOKS, stateClass, stateLabel, stateLook } from '../layout/states.js';
import { pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

export const ACTIVE_STATES = ACTIVE_EXECUTION_STATES;

/** Output shown inline per stream and step; the rest is a download away. */
export const MAX_SHOWN_BYTES = 256 * 1024;

type StepView = ExecutionView['steps'][number];

interface StepOutput {
  readonly text: string;
  /** Bytes stored. */
  readonly bytes: number;
  readonly cut: boolean;
}

interface ExecutionPageData {
  readonly view: ExecutionView;
  readonly title: string;
  readonly runbookLink: boolean;
  readonly canCancel: boolean;
  readonly canRerun: boolean;
  readonly secretNames: ReadonlySet<string>;
  readonly output: ReadonlyMap<string, { stdout: StepOutput; stderr: StepOutput }>;
  readonly notice: string | undefined;
}

const NOTICES: Readonly<Record<string, string>> = {
  cancel: 'Cancel requested: steps still running are being stopped.',
  ended: 'This execution had already ended; there was nothing to cancel.',
  approve: 'You approved this execution.',
  deny: 'You denied this execution: it is canceled.',
};

function Output(p: { step: StepView; out: StepOutput; stream: 'stdout' | 'stderr'; executionId: string }) {
  if (p.out.bytes === 0 && p.stream === 'stderr') return null;
  return (
    <>
      <pre data-stream={p.stream} data-bytes={String(Math.min(p.out.bytes, MAX_SHOWN_BYTES))} data-cut={p.out.cut ? '' : undefined} class={p.stream === 'stderr' ? 'stderr' : undefined} aria-label={`${p.step.name}: ${p.stream}`}>
        {p.out.text}
      </pre>
      {p.out.cut ? (
        <p class="hint">
          Showing the first {MAX_SHOWN_BYTES / 1024} KiB of {p.out.bytes} bytes:{' '}
          <a href={`/api/v1/executions/${encodeURIComponent(p.executionId)}/steps/${encodeURIComponent(p.step.id)}/output?stream=${p.stream}`}>download all of {p.stream}</a>
        </p>
      ) : null}
    </>
  );
}

function StepItem(p: { step: StepView; output: { stdout: StepOutput; stderr: StepOutput } | undefined; executionId: string }) {
  const s = p.step;
  const took = duration(s.dispatchedAt, s.finishedAt);
  return (
    <li data-step-run={s.id}>
      <strong>{s.name}</strong>
      {s.handler ? ' (on failure)' : ''}
      {s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}{' '}
      <span class={stateClass(s.state)} title={stateLook(s.state)?.means} data-step-state="">
        {stateLabel(s.state)}
        {s.exitCode === null ? '' : ` (exit ${s.exitCode})`}
      </span>
      {took ? <span class="muted"> · {took}</span> : null}
      {s.state === 'interrupted' ? <p class="hint">{STATE_LOOKS.interrupted.means}.</p> : null}
      {s.error ? <p class="error">{s.error}</p> : null}
      {p.output ? (
        <>
          <Output step={s} out={p.output.stdout} stream="stdout" executionId={p.executionId} />
          <Output step={s} out={p.output.stderr} stream="stderr" executionId={p.executionId} />
        </>
      ) : null}
    </li>
  );
}

function ExecutionPage(p: ExecutionPageData & { csrfToken: string }) {
  const v = p.view;
  const active = ACTIVE_STATES.has(v.state);
  const coordinatorSteps = v.steps.filter((s) => s.agentId === null);
  const options = Object.entries(v.options);
  return (
    <>
      <p>
        <a href="/executions">← History</a>
      </p>
      <h1>
        {p.title} <StateBadge state={v.state} attrs={{ 'data-execution-state': '' }} />
      </h1>
      <Notice text={p.notice} />
      {active ? (
        <p class="muted" data-live-status="" aria-live="polite">
          This execution is still going: reload the page to see its progress.
        </p>
      ) : null}
      {v.state === 'awaiting_approval' ? (
        <p class="notice">
          Waiting for approval: nothing runs until the approvers named by the runbook have approved it. Approvers decide in their <a href="/approvals">approvals inbox</a>.
        </p>
      ) : null}
      <dl class="facts">
        <dt>Execution</dt>
        <dd>
          <code>{v.id}</code>
        </dd>
        <dt>Runbook</dt>
        <dd>
          {v.runbookId === null ? (
            'ad-hoc command'
          ) : p.runbookLink ? (
            <a href={`/runbooks/${encodeURIComponent(v.runbookId)}`}>
              <code>{v.runbookId}</code>
            </a>
          ) : (
            <code>{v.runbookId}</code>
          )}
          {v.runbookDigest ? (
            <>
              {' '}
              version <code title="SHA-256 of the runbook source this execution ran">{v.runbookDigest}</code>
            </>
          ) : null}
        </dd>
        <dt>Requested by</dt>
        <dd data-testid="requested-by">{v.requestedBy}</dd>
        <dt>Requested</dt>
        <dd>
          <Time iso={v.createdAt} />
        </dd>
        <dt>Started</dt>
        <dd>
          <Time iso={v.startedAt} empty="not yet" />
        </dd>
        <dt>Finished</dt>
        <dd>
          <Time iso={v.finishedAt} empty="not yet" />
          {v.finishedAt && v.startedAt ? <span class="muted"> · took {duration(v.startedAt, v.finishedAt)}</span> : null}
        </dd>
        <dt>Targets</dt>
        <dd>
          <code>{v.targets}</code>
        </dd>
        {v.reason ? (
          <>
            <dt>Reason</dt>
            <dd>{v.reason}</dd>
          </>
        ) : null}
        {v.stateReason ? (
          <>
            {/* Why it ended as it did (a denial, a cancel, a failed node): the engine's words, kept apart from the requester's. */}
            <dt>Outcome</dt>
            <dd data-testid="state-reason">
              {v.stateReason}
              {v.canceledBy ? <span class="muted"> · canceled by {v.canceledBy}</span> : null}
            </dd>
          </>
        ) : v.canceledBy ? (
          <>
            <dt>Canceled by</dt>
            <dd>{v.canceledBy}</dd>
          </>
        ) : null}
        <dt>Audit records</dt>
        <dd>
          {/* Whoever may see an execution may see its records (coordinator/policy/visibility.ts). */}
          <a href={`/audit?execution=${encodeURIComponent(v.id)}`} data-testid="audit-link">
            The signed audit records of this execution
          </a>
        </dd>
      </dl>
      {active && p.canCancel ? (
        <form method="post" action={`/executions/${encodeURIComponent(v.id)}/cancel`}>
          <CsrfField token={p.csrfToken} />
          <button type="submit" class="danger">
            Cancel execution
          </button>
        </form>
      ) : null}
      {!active && p.canRerun && v.runbookId ? (
        <p>
          <a class="button secondary" href={`/runbooks/${encodeURIComponent(v.runbookId)}?rerun=${encodeURIComponent(v.id)}`}>
            Run again with these options
          </a>
        </p>
      ) : null}

      {p.view.approvals.length > 0 ? (
        <>
          <h2>Approvals</h2>
          <table data-testid="decisions">
            <thead>
              <tr>
                <th scope="col">Who</th>
                <th scope="col">Decision</th>
                <th scope="col">Comment</th>
                <th scope="col">When</th>
              </tr>
            </thead>
            <tbody>
              {p.view.approvals.map((x) => (
                <tr>
                  <td>{x.approver}</td>
                  <td>{x.decision === 'approve' ? 'approved' : 'denied'}</td>
                  <td>{x.comment}</td>
                  <td>
                    <Time iso={x.decidedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}

      <h2>Options</h2>
      {options.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <table data-testid="options">
          <thead>
            <tr>
              <th scope="col">Option</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            {options.map(([k, value]) => (
              <tr>
                <th scope="row">{k}</th>
                <td>
                  <code>{p.secretNames.has(k) ? MASK : typeof value === 'string' ? value : JSON.stringify(value)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Hosts</h2>
      {v.nodes.length === 0 ? <p class="muted">No host was selected.</p> : null}
      <table class="wide" hidden={v.nodes.length === 0}>
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">State</th>
            <th scope="col">Note</th>
          </tr>
        </thead>
        <tbody>
          {v.nodes.map((n) => (
            <tr>
              <td>
                <a href={`#host-${n.agentId}`}>{n.agentName}</a>
              </td>
              <td>
                <StateBadge state={n.state} attrs={{ 'data-node-state': n.agentId }} />
              </td>
              <td>{n.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>

      {v.nodes.map((n) => (
        <section class="host" id={`host-${n.agentId}`} data-host={n.agentName} aria-labelledby={`host-${n.agentId}-h`}>
          <h3 id={`host-${n.agentId}-h`}>{n.agentName}</h3>
          <ol class="steps" data-host-steps={n.agentId}>
            {v.steps
              .filter((s) => s.agentId === n.agentId)
              .map((s) => (
                <StepItem step={s} output={p.output.get(s.id)} executionId={v.id} />
              ))}
          </ol>
        </section>
      ))}
      {coordinatorSteps.length > 0 || active ? (
        <section class="host" data-host="coordinator" aria-labelledby="host-coordinator-h" hidden={coordinatorSteps.length === 0}>
          <h3 id="host-coordinator-h">On the coordinator</h3>
          <ol class="steps" data-host-steps="coordinator">
            {coordinatorSteps.map((s) => (
              <StepItem step={s} output={undefined} executionId={v.id} />
            ))}
          </ol>
        </section>
      ) : null}
    </>
  );
}

async function stepOutput(d: PortalDeps, s: StepView, stream: 1 | 2): Promise<StepOutput> {
  const bytes = stream === 1 ? s.stdoutBytes : s.stderrBytes;
  if (bytes === 0) return { text: '', bytes: 0, cut: false };
  const data = await readOutput(d.reader, s.id, stream);
  const cut = data.length > MAX_SHOWN_BYTES;
  return { text: (cut ? data.subarray(0, MAX_SHOWN_BYTES) : data).toString('utf8'), bytes: data.length, cut };
}

export function executionRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);

  const visible = async (user: User, id: string): Promise<ExecutionView> => {
    // The API's id schema: anything that is not an execution id is simply not one.
    if (!ExecutionIdParam.safeParse({ id }).success) throw notFound(`no execution ${echo(id)} that you may see`);
    const owner = await executionOwner(d.reader, id);
    const view = owner && (await d.access.canView(user, owner)) ? await loadExecution(d.reader, id) : undefined;
    if (!view) throw notFound(`no execution ${echo(id)} that you may see`);
    return view;
  };

  const show = async (c: Context<PortalEnv>, view: ExecutionView): Promise<Response> => {
    const user = c.get('user');
    const loaded = view.runbookId === null ? undefined : d.catalog.get(view.runbookId);
    const meta = loaded?.runbook.metadata;
    const r = meta ? { id: meta.id, tags: meta.tags, owner: meta.owner } : undefined;
    const output = new Map<string, { stdout: StepOutput; stderr: StepOutput }>();
    for (const s of view.steps) output.set(s.id, { stdout: await stepOutput(d, s, 1), stderr: await stepOutput(d, s, 2) });
    const data: ExecutionPageData = {
      view,
      title: meta?.title ?? (view.kind === 'adhoc' ? 'Ad-hoc command' : (view.runbookId ?? 'Execution')),
      runbookLink: r !== undefined && (d.authz.decide(user, 'view', r).allowed || d.authz.decide(user, 'run', r).allowed),
      canCancel: view.requestedBy === user.name || (r !== undefined ? d.authz.decide(user, 'cancel', r).allowed : d.authz.decide(user, 'admin').allowed),
      canRerun: r !== undefined && d.authz.decide(user, 'run', r).allowed,
      secretNames: new Set((loaded?.runbook.spec.options ?? []).filter((o) => o.type === 'secret').map((o) => o.name)),
      output,
      notice: NOTICES[c.req.query('notice') ?? ''],
    };
    const active = ACTIVE_STATES.has(view.state);
    return render(
      c,
      <Page title={`${data.title} (${view.state.replace(/_/g, ' ')})`} viewer={viewerOf(c.var)} section="executions" live={active ? { eventsUrl: `/api/v1/executions/${encodeURIComponent(view.id)}/events`, executionId: view.id } : undefined}>
        <ExecutionPage {...data} csrfToken={c.get('csrfToken')} />
      </Page>,
    );
  };

  app.get('/executions/:id', page, async (c) => show(c, await visible(c.get('user'), c.req.param('id'))));

  app.post('/executions/:id/cancel', post, async (c) => {
    const view = await visible(c.get('user'), c.req.param('id'));
    const changed = await d.executions.cancel(view.id, c.get('user'));
    return c.redirect(`/executions/${encodeURIComponent(view.id)}?notice=${changed ? 'cancel' : 'ended'}`, 303);
  });
  return app;
}
