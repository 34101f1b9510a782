/**
 * The audit trail through the portal (/audit) and the API (/api/v1/audit/*) over a real store
 * with real signed records: filters, keyset pages, who sees which records (whole trail for
 * admin and for view over every runbook; the records of their executions for everyone else;
 * 404 for a record outside that), hostile payload values rendered as text, the verify form's
 * CSRF check and recorded result, exports the real verifier accepts with the flag the download
 * names, and a one-line 400 for a bad filter.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditEvent, AuditEvents, type AuditEventInput } from '../../../coordinator/audit/events.js';
import { bundleItems } from '../../../coordinator/audit/bundle.js';
import { verifyItems } from '../../../coordinator/audit/verify-stream.js';
import { parseRange, type VerifyExpectation } from '../../../coordinator/audit/verify.js';
import { csrfIn, form, HOSTILE, ORIGIN, PortalHarness, T0 } from '../../../test/helpers/portal-app.js';
import { trailRows } from '../../../coordinator/store/audit-trail-queries.js';
import { auditTrailScope, type AuditTrailScope } from '../../../coordinator/policy/visibility.js';

const HOUR = 3_600_000;
let h: PortalHarness;

/** A second policy document: auditors view every runbook (no `runbooks`), nothing else. */
const AUDITOR_POLICY = `apiVersion: handrail/v1
kind: Policy
metadata:
  name: compliance
spec:
  rules:
    - name: auditors-view-everything
      effect: allow
      actions: [view]
      subjects: [group:auditors]
`;

const USERS: Record<string, readonly string[]> = { admin: ['admins'], audra: ['auditors'], alice: ['support-a'], carol: ['team-b'], nobody: [] };

/** Each user's session, logged in before the records are seeded (a login is a record too). */
const cookies = new Map<string, string>();
const cookieOf = async (name: string): Promise<string> => cookies.get(name) as string;


async function page(cookie: string, path: string): Promise<{ status: number; html: string }> {
  const r = await h.app.request(`${ORIGIN}${path}`, { headers: { cookie } });
  return { status: r.status, html: await r.text() };
}

async function api(cookie: string, path: string, init: RequestInit = {}): Promise<Response> {
  return h.api.request(`${ORIGIN}${path}`, { ...init, headers: { cookie, ...(init.headers ?? {}) } });
}

/** A user's audit scope under the loaded policies (the same rule the routes ask for). */
function visibilityOf(name: string): AuditTrailScope {
  const runbooks = h.catalog.list().map((l) => ({ id: l.runbook.metadata.id, tags: l.runbook.metadata.tags, owner: l.runbook.metadata.owner }));
  return auditTrailScope(h.catalog.policyList(), { user: name, groups: USERS[name] ?? [] }, runbooks);
}

const seqsIn = (html: string): number[] => [...html.matchAll(/<article class="record" data-seq="(\d+)"/g)].map((m) => Number(m[1]));

async function append(events: AuditEventInput[]): Promise<void> {
  await h.data.db.write((tx) => h.data.audit.append(tx, events));
}

const user = (id: string) => ({ kind: 'user' as const, id });
const system = { kind: 'system' as const, id: 'coordinator' };
const requested = (executionId: string, runbookId: string, by: string, options: Record<string, string> = {}): AuditEventInput =>
  auditEvent(AuditEvents.executionRequested, user(by), { executionId, kind: 'runbook', runbookId, runbookDigest: 'ab'.repeat(32), options, targets: 'role=web' });
const completed = (executionId: string): AuditEventInput => auditEvent(AuditEvents.executionCompleted, system, { executionId, state: 'succeeded' });

/** The records: seq 1 at T0, each next one an hour later. */
async function seedRecords(): Promise<void> {
  const timeline: AuditEventInput[] = [
    auditEvent(AuditEvents.loginFailed, user('unknown'), { user: 'mallory', remote: '10.0.0.9', reason: 'bad password' }), // 1: no execution
    requested('exe-a1', 'portal-echo', 'alice', { message: HOSTILE }), // 2
    auditEvent(AuditEvents.policyDecided, system, { requestId: null, executionId: 'exe-a1', user: 'alice', action: 'run', runbookId: 'portal-echo', allowed: true, rule: 'portal-test/support-a-runs-team-a', reason: 'allowed' }), // 3
    requested('exe-b1', 'portal-other', 'carol'), // 4
    completed('exe-a1'), // 5
    completed('exe-b1'), // 6
  ];
  h.auditClock = T0;
  for (const e of timeline) {
    await append([e]);
    h.auditClock += HOUR;
  }
  h.auditClock = T0 + 10 * HOUR;
}

async function setup(): Promise<void> {
  h = await PortalHarness.create({ extraRunbooks: AUDITOR_POLICY });
  for (const [name, groups] of Object.entries(USERS)) await h.addUser(name, groups, `${name}-password`);
  await h.insertExecution({ id: 'exe-a1', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'succeeded' });
  await h.insertExecution({ id: 'exe-b1', runbookId: 'portal-other', requestedBy: 'carol', options: {}, state: 'succeeded' });
  for (const name of Object.keys(USERS)) cookies.set(name, (await h.login(name)).cookie);
  // Users and logins wrote records: the timeline starts a fresh log (seq 1 at T0).
  expect((await h.data.audit.head()).seq).toBeGreaterThan(0);
  await h.clearAuditLog();
  await seedRecords();
}

describe('audit trail page', () => {
  beforeAll(setup);
  afterAll(() => h.close());

  it.each([
    ['admin', [6, 5, 4, 3, 2, 1]],
    ['audra', [6, 5, 4, 3, 2, 1]],
    ['alice', [5, 3, 2]],
    ['carol', [6, 4]],
    ['nobody', []],
  ])('%s sees the records policy lets them see, newest first', async (name, seqs) => {
    const c = await cookieOf(name);
    const { status, html } = await page(c, '/audit');
    expect(status).toBe(200);
    expect(html).toContain('href="/audit" aria-current="page"');
    expect(seqsIn(html)).toEqual(seqs);
    if (seqs.length === 0) expect(html).toContain('No audit records you may see yet');
  });

  it.each([
    ['admin', 1, 200],
    ['audra', 4, 200],
    ['alice', 2, 200],
    ['alice', 1, 404],
    ['alice', 4, 404],
    ['carol', 2, 404],
    ['carol', 6, 200],
    ['nobody', 2, 404],
    ['admin', 99, 404],
  ])('%s opening record %i by URL gets %i', async (name, seq, status) => {
    const r = await page(await cookieOf(name), `/audit/${seq}`);
    expect(r.status).toBe(status);
    if (status === 200) expect(seqsIn(r.html)).toEqual([seq]);
    else expect(r.html).not.toContain('data-seq=');
  });

  it('filters by type, actor, execution and time, each narrowing what the reader may see', async () => {
    const admin = await cookieOf('admin');
    const alice = await cookieOf('alice');
    const cases: Array<[string, string, number[]]> = [
      [admin, 'type=execution.requested', [4, 2]],
      [admin, 'type=execution.completed&execution=exe-b1', [6]],
      [admin, 'actor=carol', [4]],
      [admin, 'actor=coordinator', [6, 5, 3]],
      [admin, 'execution=exe-a1', [5, 3, 2]],
      // Seq 2 is at T0+1h, seq 4 at T0+3h: both ends included, a minute covers all of it.
      [admin, 'from=2026-11-23T10:00&to=2026-11-23T12:00', [4, 3, 2]],
      [admin, 'from=2026-11-23T10:00:00.001Z&to=2026-11-23T12:00', [4, 3]],
      [admin, 'to=2026-11-23', [6, 5, 4, 3, 2, 1]],
      [admin, 'from=2026-11-24', []],
      // Empty fields (an untouched form) are no filters.
      [admin, 'type=&actor=&execution=&from=&to=', [6, 5, 4, 3, 2, 1]],
      [alice, 'execution=exe-b1', []],
      [alice, 'actor=carol', []],
      [alice, 'type=execution.completed', [5]],
    ];
    for (const [c, q, seqs] of cases) {
      const r = await page(c, `/audit?${q}`);
      expect(r.status, q).toBe(200);
      expect(seqsIn(r.html), q).toEqual(seqs);
    }
    const none = await page(admin, '/audit?from=2026-11-24');
    expect(none.html).toContain('No audit records match these filters');
  });

  it('pages newest first by seq with the filters kept, each page full, the last without Older', async () => {
    const admin = await cookieOf('admin');
    const first = await page(admin, '/audit?limit=2&actor=coordinator');
    expect(seqsIn(first.html)).toEqual([6, 5]);
    const older = /href="(\/audit\?[^"]*before=5[^"]*)">Older/.exec(first.html)?.[1];
    expect(older).toBeDefined();
    const second = await page(admin, (older as string).replace(/&amp;/g, '&') + '&limit=2');
    expect(seqsIn(second.html)).toEqual([3]);
    expect(second.html).toContain('actor=coordinator');
    expect(second.html).not.toContain('>Older<');
    expect(second.html).toContain('>Newest<');
    // A restricted reader's pages hold only their records, however far back the cursor points.
    const alice = await cookieOf('alice');
    const a1 = await page(alice, '/audit?limit=2');
    expect(seqsIn(a1.html)).toEqual([5, 3]);
    const a2 = await page(alice, '/audit?limit=2&before=3');
    expect(seqsIn(a2.html)).toEqual([2]);
  });

  it("shows each record's fields readably, hostile values as text, with links to the execution and the full hashes", async () => {
    const { html } = await page(await cookieOf('alice'), '/audit/2');
    expect(html).toContain('<code>execution.requested</code>');
    expect(html).toContain('HR2001');
    expect(html).toContain('<strong>alice</strong>');
    expect(html).toContain('href="/executions/exe-a1"');
    expect(html).toContain('href="/audit?execution=exe-a1"');
    expect(html).toContain('<dt>options.message</dt>');
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    const rec = await h.auditTrail.record(2, { all: true });
    expect(html).toContain(`>${rec?.hash}</code>`);
    expect(html).toContain(`>${rec?.prev}</code>`);
    expect(html).toContain(`<code>${rec?.keyId}</code>`);
    // Every event type is an option of the type filter, named with its code.
    const list = await page(await cookieOf('admin'), '/audit?type=login.failed');
    expect(list.html).toContain('<option value="login.failed" selected="">login.failed (HR5005)</option>');
  });

  it('renders a hostile actor and execution filter value escaped in the form', async () => {
    const r = await page(await cookieOf('admin'), `/audit?actor=${encodeURIComponent('a"><b')}`);
    expect(r.status).toBe(400);
    expect(r.html).not.toContain('"><b');
  });

  it.each([
    ['type=made.up', /type/],
    ['before=abc', /before/],
    ['limit=0', /limit/],
    ['from=yesterday', /from: &quot;yesterday&quot; is not a time/],
    ['from=2026-02-30', /from: &quot;2026-02-30&quot; is not a time/],
    ['from=2026-11-24&to=2026-11-23', /from .* is after to/],
    ['execution=not-an-id', /execution/],
    ['colour=red', /unknown field/],
  ])('a bad filter (%s) is a one-line 400 naming it', async (q, message) => {
    const r = await page(await cookieOf('admin'), `/audit?${q}`);
    expect(r.status).toBe(400);
    const alert = /<p class="alert" role="alert">([^<]*)<\/p>/.exec(r.html)?.[1] ?? r.html;
    expect(alert).toMatch(message);
    expect(alert).not.toContain('\n');
    expect(r.html).not.toMatch(/at .*\.ts:\d+/);
  });

  it('links every execution page to its audit records', async () => {
    const { html } = await page(await cookieOf('alice'), '/executions/exe-a1');
    expect(html).toContain('href="/audit?execution=exe-a1"');
  });
});

describe('verifying the live log from the page', () => {
  beforeEach(setup);
  afterEach(() => h.close());

  it('needs the CSRF token, runs for a whole-trail reader, records and audits the result', async () => {
    const audra = await cookieOf('audra');
    const before = await page(audra, '/audit');
    expect(before.html).toContain('The log has not been verified from here yet.');
    const noToken = form({});
    const refused = await h.app.request(`${ORIGIN}/audit/verify`, { method: 'POST', body: noToken.body, headers: { ...noToken.headers, cookie: audra, origin: ORIGIN } });
    expect(refused.status).toBe(403);
    expect(h.auditTrail.inProgress()).toBeUndefined();
    const crossSite = form({ _csrf: csrfIn(before.html) });
    const foreign = await h.app.request(`${ORIGIN}/audit/verify`, { method: 'POST', body: crossSite.body, headers: { ...crossSite.headers, cookie: audra, origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(await h.auditTrail.last()).toBeUndefined();

    const ok = form({ _csrf: csrfIn(before.html) });
    const res = await h.app.request(`${ORIGIN}/audit/verify`, { method: 'POST', body: ok.body, headers: { ...ok.headers, cookie: audra, origin: ORIGIN } });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/audit#verification');
    await h.auditTrail.idle();
    const run = await h.auditTrail.last();
    expect(run).toMatchObject({ ok: true, records: 6, firstSeq: 1, lastSeq: 6, firstBadSeq: null, actor: { kind: 'user', id: 'audra' }, source: 'portal' });
    const after = await page(audra, '/audit');
    expect(after.html).toContain('data-result="ok"');
    expect(after.html).toContain('6 records checked (seq 1..6)');
    expect(after.html).toContain('started by audra (portal)');
    const recorded = await h.audited('audit.verified');
    expect(recorded).toEqual([{ verificationId: run?.id, ok: true, records: 6, firstSeq: 1, lastSeq: 6, firstBadSeq: null, reason: null, source: 'portal' }]);
  });

  it('names the first bad record when the log was changed', async () => {
    await h.tamperAuditPayload(3, '"allowed":true', '"allowed":false');
    const run = await h.auditTrail.verify({ kind: 'user', id: 'admin' }, 'portal').done;
    expect(run.ok).toBe(false);
    expect(run.firstBadSeq).toBe(3);
    const { html } = await page(await cookieOf('admin'), '/audit');
    expect(html).toContain('data-result="failed"');
    expect(html).toContain('href="/audit/3">#3</a>');
  });

  it('limited readers see no verification and may not start one', async () => {
    for (const name of ['alice', 'carol', 'nobody']) {
      const c = await cookieOf(name);
      const p = await page(c, '/audit');
      expect(p.html).not.toContain('data-testid="verification"');
      const f = form({ _csrf: csrfIn(p.html) });
      const res = await h.app.request(`${ORIGIN}/audit/verify`, { method: 'POST', body: f.body, headers: { ...f.headers, cookie: c, origin: ORIGIN } });
      expect(res.status, name).toBe(403);
      expect(h.auditTrail.inProgress()).toBeUndefined();
    }
  });
});

describe('records as committed', () => {
  beforeEach(setup);
  afterEach(() => h.close());

  it('a record whose transaction is open is not on the page, by URL or in an export; after it rolls back, nor is it', async () => {
    const admin = await cookieOf('admin');
    // Record 7 (a copy of record 1, the failed login of mallory), written in a transaction still open.
    const open = await h.openTransaction((tx) => h.copyAuditRecord(tx, 1, 7));
    expect(seqsIn((await page(admin, '/audit')).html)).toEqual([6, 5, 4, 3, 2, 1]);
    expect((await page(admin, '/audit/7')).status).toBe(404);
    const all = await api(admin, '/api/v1/audit/export');
    expect(all.headers.get('x-handrail-records')).toBe('1..6');
    expect(await verifyDownload(all)).toEqual({ ok: true, records: 6, flag: '' });
    await open.end('rollback');
    expect(seqsIn((await page(admin, '/audit')).html)).toEqual([6, 5, 4, 3, 2, 1]);
    expect((await page(admin, '/audit/7')).status).toBe(404);
  });
});

/** Verifies a downloaded bundle as `handrail audit verify FILE FLAG` would. */
async function verifyDownload(res: Response): Promise<{ ok: boolean; records: number; flag: string }> {
  const text = await res.text();
  const verify = res.headers.get('x-handrail-verify') ?? '';
  const flag = verify.replace(/^handrail audit verify \S+ ?/, '');
  let expect_: VerifyExpectation = { kind: 'full' };
  if (flag.startsWith('--execution ')) expect_ = { kind: 'execution', executionId: flag.slice('--execution '.length) };
  else if (flag.startsWith('--range ')) expect_ = parseRange(flag.slice('--range '.length)) as VerifyExpectation;
  async function* lines(): AsyncGenerator<string> {
    yield* text.trim().split('\n');
  }
  const r = await verifyItems(bundleItems(lines()), { expect: expect_, threads: 1 });
  return { ok: r.ok, records: r.records, flag };
}

describe('exports', () => {
  beforeAll(setup);
  afterAll(() => h.close());

  it("downloads one execution's records from the page, and the verifier accepts them with the flag it names", async () => {
    const alice = await cookieOf('alice');
    const p = await page(alice, '/audit?execution=exe-a1');
    expect(p.html).toContain('handrail audit verify FILE --execution exe-a1');
    const res = await h.app.request(`${ORIGIN}/audit/export?execution=exe-a1`, { headers: { cookie: alice } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="handrail-audit-exe-a1.jsonl"');
    expect(res.headers.get('x-handrail-records')).toBe('2..5');
    expect(await verifyDownload(res)).toEqual({ ok: true, records: 3, flag: '--execution exe-a1' });
  });

  it('exports a time range for a whole-trail reader, as the range the header names', async () => {
    const res = await api(await cookieOf('audra'), '/api/v1/audit/export?from=2026-11-23T10:00&to=2026-11-23T12:00');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-handrail-verify')).toBe('handrail audit verify handrail-audit-2-4.jsonl --range 2..4');
    expect(await verifyDownload(res)).toEqual({ ok: true, records: 3, flag: '--range 2..4' });
    const all = await api(await cookieOf('admin'), '/api/v1/audit/export');
    expect(all.headers.get('x-handrail-verify')).toBe('handrail audit verify handrail-audit-1-head.jsonl');
    expect(await verifyDownload(all)).toEqual({ ok: true, records: 6, flag: '' });
  });

  it("refuses a limited reader a time range, and hides another team's execution as not found", async () => {
    const alice = await cookieOf('alice');
    expect((await api(alice, '/api/v1/audit/export?from=2026-11-23')).status).toBe(403);
    expect((await api(alice, '/api/v1/audit/export')).status).toBe(403);
    const hidden = await api(alice, '/api/v1/audit/export?execution=exe-b1');
    expect(hidden.status).toBe(404);
    const unknown = await api(alice, '/api/v1/audit/export?execution=exe-nothere');
    expect(unknown.status).toBe(404);
    expect(((await hidden.json()) as { error: { message: string } }).error.message).toBe(((await unknown.json()) as { error: { message: string } }).error.message.replace('exe-nothere', 'exe-b1'));
    const page404 = await h.app.request(`${ORIGIN}/audit/export?execution=exe-b1`, { headers: { cookie: alice } });
    expect(page404.status).toBe(404);
  });
});

describe('audit API authorization (each role × each route)', () => {
  beforeAll(setup);
  afterAll(() => h.close());

  const routes: Array<[string, string, string]> = [
    ['GET', '/api/v1/audit/records', 'list'],
    ['GET', '/api/v1/audit/records/1', 'record without execution'],
    ['GET', '/api/v1/audit/records/2', "record of alice's execution"],
    ['GET', '/api/v1/audit/records/4', "record of carol's execution"],
    ['GET', '/api/v1/audit/export?execution=exe-a1', "export of alice's execution"],
    ['GET', '/api/v1/audit/export?from=2026-11-23', 'export of a time range'],
    ['GET', '/api/v1/audit/verifications', 'last verification'],
  ];
  const expected: Record<string, number[]> = {
    admin: [200, 200, 200, 200, 200, 200, 200],
    audra: [200, 200, 200, 200, 200, 200, 200],
    alice: [200, 404, 200, 404, 200, 403, 403],
    carol: [200, 404, 404, 200, 404, 403, 403],
    nobody: [200, 404, 404, 404, 404, 403, 403],
  };
  it.each(Object.keys(expected))('%s', async (name) => {
    const c = await cookieOf(name);
    const got: number[] = [];
    for (const [method, path] of routes) {
      const r = await api(c, path, { method });
      got.push(r.status);
      await r.arrayBuffer();
    }
    expect(got).toEqual(expected[name]);
    // The record list holds exactly what the page shows.
    const list = (await (await api(c, '/api/v1/audit/records')).json()) as { records: Array<{ seq: number }> };
    expect(list.records.map((r) => r.seq)).toEqual(seqsIn((await page(c, '/audit')).html));
  });

  it('a limited reader gets the same records whether the log is walked or their executions are looked up one by one', async () => {
    for (const name of ['alice', 'carol', 'nobody']) {
      const scope = visibilityOf(name);
      expect(scope.all).toBe(false);
      for (const q of [{ limit: 50 }, { limit: 2, before: 4 }, { limit: 50, type: 'execution.completed' as const }]) {
        const walked = (await trailRows(h.data.db, q, scope)).map((r) => r.seq);
        const looked = (await trailRows(h.data.db, { ...q, fewExecutions: true }, scope)).map((r) => r.seq);
        expect(looked, `${name} ${JSON.stringify(q)}`).toEqual(walked);
      }
    }
  });

  it('POST /verifications needs an API token (the session cookie only reads) and a whole-trail reader', async () => {
    const admin = await cookieOf('admin');
    const viaCookie = await api(admin, '/api/v1/audit/verifications', { method: 'POST' });
    expect(viaCookie.status).toBe(401);
    expect(h.auditTrail.inProgress()).toBeUndefined();
  });

  it('GET /records: the same filters and cursor as the page, records as signed, one error body for bad input', async () => {
    const admin = await cookieOf('admin');
    const r = await api(admin, '/api/v1/audit/records?actor=coordinator&limit=2');
    const body = (await r.json()) as { records: Array<{ seq: number; type: string; code: string; executionId: string | null; data: Record<string, unknown>; actor: { kind: string; id: string } }>; next: number | null };
    expect(body.records.map((x) => x.seq)).toEqual([6, 5]);
    expect(body.next).toBe(5);
    expect(body.records[0]).toMatchObject({ type: 'execution.completed', code: 'HR2003', executionId: 'exe-b1', actor: { kind: 'system', id: 'coordinator' }, data: { executionId: 'exe-b1', state: 'succeeded' } });
    const next = (await (await api(admin, `/api/v1/audit/records?actor=coordinator&limit=2&before=${body.next}`)).json()) as { records: Array<{ seq: number }>; next: number | null };
    expect([next.records.map((x) => x.seq), next.next]).toEqual([[3], null]);
    const bad = await api(admin, '/api/v1/audit/records?from=soon');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { kind: 'invalid_argument', message: 'query from: "soon" is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601 (UTC unless a zone is given)' } });
  });
});
