/**
 * The audit trail pages:
 *
 *   GET  /audit?type&actor&execution&from&to&before   records newest first, filtered, keyset-paginated on seq
 *   GET  /audit/:seq                                  one record (its permalink)
 *   GET  /audit/export?execution | ?from&to           download an export bundle of the selection
 *   POST /audit/verify                                verify the whole live log now (CSRF-checked form)
 *
 * Who sees what is the policy engine's decision (coordinator/policy/visibility.ts,
 * auditTrailScope): `admin`, or `view` over every runbook (a compliance role), sees every
 * record, exports time ranges and runs and sees verifications; everyone else sees and exports
 * only the records of executions they may see (the history page's scope), and a record outside
 * that is "not found" (404), like an execution they may not see. Records are shown as signed:
 * secrets were masked before writing, and nothing here unmasks them. Filters and their
 * messages are the API's (web/api/audit.ts), so the two cannot disagree.
 */
import { Hono } from 'hono';
import { AUDIT_CODES, AUDIT_EVENT_TYPES } from '../../../coordinator/audit/events.js';
import { isFiltered, TRAIL_PAGE_SIZE, type TrailFilter } from '../../../coordinator/audit/trail-filter.js';
import { shortHash, type TrailRecord } from '../../../coordinator/audit/trail-record.js';
import type { RunningVerification, VerificationRun } from '../../../coordinator/audit/audit-trail.js';
import { notFound } from '../../../core/errors.js';
import { echo } from '../../../core/echo.js';
import { bundleHeaders, exportFor, filterOf, requireWholeTrail, TrailQuery, ExportQuery } from '../../api/audit.js';
import { CsrfField, Page, render, Time } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { pageQuery } from '../page-query.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

/** The raw filter values, as the form shows them again. */
interface FormValues {
  readonly type: string;
  readonly actor: string;
  readonly execution: string;
  readonly from: string;
  readonly to: string;
}

function query(f: FormValues, before?: number): string {
  const p = new URLSearchParams();
  for (const k of ['type', 'actor', 'execution', 'from', 'to'] as const) if (f[k]) p.set(k, f[k]);
  if (before !== undefined) p.set('before', String(before));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** A long value shortened, the whole of it one keyboard step away. */
function Hash(p: { label: string; value: string }) {
  return (
    <details class="hash">
      <summary>
        <code>{shortHash(p.value)}</code>
      </summary>
      <code aria-label={`${p.label}, in full`}>{p.value}</code>
    </details>
  );
}

export function RecordView(p: { r: TrailRecord; heading: 'h2' | 'h1' }) {
  const r = p.r;
  const title = (
    <>
      <a href={`/audit/${r.seq}`}>#{r.seq}</a> <code>{r.type}</code> <span class="muted">{r.code}</span>
    </>
  );
  return (
    <article class="record" data-seq={r.seq} data-type={r.type} aria-labelledby={`rec-${r.seq}`}>
      {p.heading === 'h1' ? <h1 id={`rec-${r.seq}`}>{title}</h1> : <h2 id={`rec-${r.seq}`}>{title}</h2>}
      <dl class="facts">
        <dt>Time</dt>
        <dd>
          <Time iso={r.ts} />
        </dd>
        <dt>Actor</dt>
        <dd>
          {r.actor.kind} <strong>{r.actor.id}</strong>
        </dd>
        {r.executionId !== null ? (
          <>
            <dt>Execution</dt>
            <dd>
              <a href={`/executions/${encodeURIComponent(r.executionId)}`} data-testid="record-execution">
                <code>{r.executionId}</code>
              </a>
            </dd>
          </>
        ) : null}
        <dt>Key</dt>
        <dd>
          <code>{r.keyId}</code>
        </dd>
        <dt>Hash</dt>
        <dd>
          <Hash label="hash" value={r.hash} />
        </dd>
        <dt>Previous</dt>
        <dd>
          <Hash label="previous record's hash" value={r.prev} />
        </dd>
      </dl>
      {r.fields.length > 0 ? (
        <dl class="facts data" aria-label={`data of record ${r.seq}`}>
          {r.fields.map((f) => (
            <>
              <dt>{f.name}</dt>
              <dd>
                <code>{f.value}</code>
              </dd>
            </>
          ))}
        </dl>
      ) : null}
    </article>
  );
}

function VerificationView(p: { last: VerificationRun | undefined; running: RunningVerification | undefined; csrfToken: string }) {
  const l = p.last;
  const iso = (ms: number): string => new Date(ms).toISOString();
  return (
    <section id="verification" aria-labelledby="verification-h" data-testid="verification">
      <h2 id="verification-h">Verification</h2>
      {l === undefined ? (
        <p>The log has not been verified from here yet.</p>
      ) : l.ok ? (
        <p class="info" data-result="ok">
          <strong class="tone-good">OK</strong>: {l.records} records checked (seq {l.firstSeq ?? '–'}..{l.lastSeq ?? '–'}), finished <Time iso={iso(l.finishedAt)} />, started by {l.actor.id} ({l.source}).
        </p>
      ) : (
        <p class="alert" role="alert" data-result="failed">
          <strong>FAILED</strong> {l.firstBadSeq !== null ? <>at record <a href={`/audit/${l.firstBadSeq}`}>#{l.firstBadSeq}</a></> : 'for the log as a whole'}: {l.reason ?? ''}. {l.records} records checked, finished <Time iso={iso(l.finishedAt)} />, started by {l.actor.id} ({l.source}).
        </p>
      )}
      {p.running ? (
        <p class="notice" role="status">
          A verification started by {p.running.actor.id} at <Time iso={iso(p.running.startedAt)} /> is running; reload to see its result.
        </p>
      ) : (
        <form method="post" action="/audit/verify">
          <CsrfField token={p.csrfToken} />
          <p class="hint">Checks the chain, every coordinator and agent signature and the stored output of the whole live log, as <code>handrail audit verify --data-dir</code> does. The result is kept and audited.</p>
          <button type="submit">Verify the log now</button>
        </form>
      )}
    </section>
  );
}

function ExportView(p: { f: FormValues; filter: TrailFilter; all: boolean }) {
  const exe = p.filter.executionId;
  if (!exe && !p.all) {
    return (
      <section aria-labelledby="export-h">
        <h2 id="export-h">Export</h2>
        <p>Filter by one execution to download its records as a bundle you can verify offline.</p>
      </section>
    );
  }
  return (
    <section aria-labelledby="export-h">
      <h2 id="export-h">Export</h2>
      <form method="get" action="/audit/export" data-testid="export-form">
        {exe ? <input type="hidden" name="execution" value={exe} /> : null}
        {!exe && p.f.from ? <input type="hidden" name="from" value={p.f.from} /> : null}
        {!exe && p.f.to ? <input type="hidden" name="to" value={p.f.to} /> : null}
        <p class="hint">
          {exe ? (
            <>
              The records of execution <code>{exe}</code>, with the keys, certificates and output needed to check them. Verify the file with <code>handrail audit verify FILE --execution {exe}</code>.
            </>
          ) : p.f.from || p.f.to ? (
            <>
              Every record from the first to the last in this time range (a bundle is a stretch of the chain, so type and actor filters do not narrow it). Verify it with <code>handrail audit verify FILE --range FIRST..LAST</code>: the file is named{' '}
              <code>handrail-audit-FIRST-LAST.jsonl</code> (<code>…-FIRST-head.jsonl</code>: <code>--range FIRST..</code>).
            </>
          ) : (
            <>
              The whole log (type and actor filters do not narrow a bundle). Verify it with <code>handrail audit verify FILE</code>.
            </>
          )}
        </p>
        <button type="submit" class="secondary">
          Download export bundle
        </button>
      </form>
    </section>
  );
}

function TrailPage(p: { records: readonly TrailRecord[]; f: FormValues; filter: TrailFilter; next: number | null; paged: boolean; all: boolean; last: VerificationRun | undefined; running: RunningVerification | undefined; csrfToken: string }) {
  const f = p.f;
  return (
    <>
      <h1>Audit trail</h1>
      <p class="hint">{p.all ? 'Every record of the signed, hash-chained log.' : 'The records of the executions you may see.'} Newest first.</p>
      <form class="filters" method="get" action="/audit" role="search">
        <div class="field">
          <label for="type">Event type</label>
          <select id="type" name="type">
            <option value="">any</option>
            {AUDIT_EVENT_TYPES.map((t) => (
              <option value={t} selected={f.type === t}>
                {t} ({AUDIT_CODES[t]})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="actor">Actor</label>
          <input id="actor" name="actor" value={f.actor} aria-describedby="actor-hint" />
          <p class="hint" id="actor-hint">
            a user's name or an agent's id
          </p>
        </div>
        <div class="field">
          <label for="execution">Execution id</label>
          <input id="execution" name="execution" value={f.execution} />
        </div>
        <div class="field">
          <label for="from">From</label>
          <input id="from" name="from" value={f.from} placeholder="YYYY-MM-DD" aria-describedby="time-hint" />
        </div>
        <div class="field">
          <label for="to">To</label>
          <input id="to" name="to" value={f.to} placeholder="YYYY-MM-DDTHH:MM" aria-describedby="time-hint" />
        </div>
        <button type="submit">Filter</button>
        <p class="hint" id="time-hint">
          Times in UTC (or with a zone), both ends included: a day or a minute covers all of it.
        </p>
      </form>
      {p.all ? <VerificationView last={p.last} running={p.running} csrfToken={p.csrfToken} /> : null}
      <ExportView f={f} filter={p.filter} all={p.all} />
      <h2>Records</h2>
      {p.records.length === 0 ? <p data-testid="no-records">No audit records {isFiltered(p.filter) ? 'match these filters' : 'you may see yet'}.</p> : null}
      <div data-testid="records">
        {p.records.map((r) => (
          <RecordView r={r} heading="h2" />
        ))}
      </div>
      <nav aria-label="Pages">
        {p.paged ? <a href={`/audit${query(f)}`}>Newest</a> : null}
        {p.paged && p.next !== null ? ' · ' : null}
        {p.next !== null ? <a href={`/audit${query(f, p.next)}`}>Older</a> : null}
      </nav>
    </>
  );
}

export function auditRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);

  app.get('/audit', page, async (c) => {
    const q = pageQuery(c, TrailQuery);
    const filter = filterOf(q);
    const user = c.get('user');
    const scope = await d.access.auditScope(user);
    const result = await d.auditTrail.page({ ...filter, ...(q.before !== undefined ? { before: q.before } : {}), limit: q.limit ?? TRAIL_PAGE_SIZE }, scope);
    const f: FormValues = { type: q.type ?? '', actor: q.actor ?? '', execution: q.execution ?? '', from: q.from ?? '', to: q.to ?? '' };
    const last = scope.all ? await d.auditTrail.last() : undefined;
    return render(
      c,
      <Page title="Audit trail" viewer={viewerOf(c.var)} section="audit">
        <TrailPage records={result.records} f={f} filter={filter} next={result.next} paged={q.before !== undefined} all={scope.all} last={last} running={scope.all ? d.auditTrail.inProgress() : undefined} csrfToken={c.get('csrfToken')} />
      </Page>,
    );
  });

  app.get('/audit/export', page, async (c) => {
    const b = await exportFor(d.auditTrail, filterOf(pageQuery(c, ExportQuery)), await d.access.auditScope(c.get('user')));
    return c.body(b.body(), 200, bundleHeaders(b));
  });

  app.post('/audit/verify', post, async (c) => {
    const user = c.get('user');
    requireWholeTrail(await d.access.auditScope(user), 'verifying the audit log');
    const v = d.auditTrail.verify({ kind: 'user', id: user.name }, 'portal');
    // The run records its own result (or failure); the page shows it when it is done.
    v.done.catch((e: unknown) => d.log.error({ event: 'audit.verify_failed', err: e }, 'recording an audit verification failed'));
    return c.redirect('/audit#verification', 303);
  });

  app.get('/audit/:seq', page, async (c) => {
    const text = c.req.param('seq');
    const seq = /^[1-9][0-9]{0,14}$/.test(text) ? Number(text) : undefined;
    const r = seq === undefined ? undefined : await d.auditTrail.record(seq, await d.access.auditScope(c.get('user')));
    if (!r) throw notFound(`no audit record ${echo(text)} that you may see`);
    return render(
      c,
      <Page title={`Audit record ${r.seq}`} viewer={viewerOf(c.var)} section="audit">
        <p>
          <a href="/audit">All records</a>
          {r.executionId !== null ? (
            <>
              {' · '}
              <a href={`/audit?execution=${encodeURIComponent(r.executionId)}`}>This execution's records</a>
            </>
          ) : null}
        </p>
        <RecordView r={r} heading="h1" />
      </Page>,
    );
  });
  return app;
}
