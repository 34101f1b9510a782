/**
 * Refused state-changing requests are audited (`request.refused`) without changing what the
 * caller sees — against a real coordinator with two teams: another team's approve, deny and
 * cancel (a 404 exactly like an unknown id's), self-approval, not an approver, policy refusals,
 * ad-hoc and reload without the right; a flood is bounded; the export still verifies.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { cli, type LogLine } from '../helpers/processes.js';

const RUNBOOKS = `apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-guarded, title: Guarded db change, owner: team-db, tags: [db] }
spec:
  options:
    - { name: reason, type: string, required: true }
  targets: { selector: role=db }
  approval: { required: 1, from: [group:db-leads] }
  steps:
    - { name: act, run: [echo, approved] }
---
apiVersion: handrail/v1
kind: Runbook
metadata: { id: db-long, title: Long db job, owner: team-db, tags: [db] }
spec:
  targets: { selector: role=db }
  steps:
    - { name: wait, run: [sleep, "30"] }
`;

const POLICY = `apiVersion: handrail/v1
kind: Policy
metadata: { name: teams }
spec:
  rules:
    - { name: admins, effect: allow, actions: ["*"], subjects: [group:admins] }
    - { name: web-team, effect: allow, actions: [run, view, cancel], subjects: [group:web], runbooks: { tags: [web] }, targets: role=web }
    - { name: db-team, effect: allow, actions: [run, view, cancel], subjects: [group:db], runbooks: { tags: [db] }, targets: role=db }
    - { name: db-leads, effect: allow, actions: [approve, view], subjects: [group:db-leads], runbooks: { tags: [db] } }
    - { name: db-ops, effect: allow, actions: [approve, view], subjects: [group:db-ops], runbooks: { tags: [db] } }
    - { name: no-ops-cancel, effect: deny, actions: [cancel], subjects: [group:db-ops], runbooks: { tags: [db] } }
`;

interface ErrorBody {
  error: { kind: string; message: string; requestId: string };
}
type Refused = { requestId: string; user: string; action: string; targetId: string | null; runbookId: string | null; rule: string; reason: string; suppressed: number };

describe('refused requests are audited, and the caller sees nothing of it', () => {
  let fleet: Fleet;
  let wendy: string; // web team
  let dora: string; // db team: runs db runbooks
  let dan: string; // db lead: approves, views
  let lee: string; // db team and db lead: runs and approves
  let otto: string; // db ops: may approve by policy, but is not one of db-guarded's approvers; may not cancel
  let nina: string; // nobody
  let guarded = '';
  let long = '';
  let dbAgent = '';

  const api = <T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> => fleet.api<T>(method, path, body, token);
  /** Status, headers (but the request id) and body (the id replaced) of one request. */
  const answer = async (method: string, path: string, token: string, body?: unknown): Promise<{ status: number; headers: string[]; body: ErrorBody; requestId: string }> => {
    const res = await fetch(`${fleet.coordinator!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const parsed = JSON.parse(await res.text()) as ErrorBody;
    const headers = [...res.headers.entries()].filter(([k]) => k !== 'date' && k !== 'x-request-id').map(([k, v]) => `${k}: ${k === 'content-length' ? '' : v}`);
    return { status: res.status, headers, body: parsed, requestId: res.headers.get('x-request-id') ?? '' };
  };
  const refusedLog = (requestId: string): Promise<LogLine> => fleet.coordinator!.proc.waitForLog((l) => l.event === 'request.refused' && l['requestId'] === requestId, undefined, `request.refused of ${requestId}`);
  const exportRecords = async (name: string): Promise<{ path: string; text: string; refused: Refused[] }> => {
    const path = join(fleet.dir, `${name}.jsonl`);
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', path]);
    expect(ex.code, ex.stderr).toBe(0);
    const text = await readFile(path, 'utf8');
    const refused = text
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as { t: string; payload?: string })
      .filter((l) => l.t === 'record')
      .map((l) => JSON.parse(Buffer.from(l.payload!, 'base64').toString('utf8')) as { type: string; code: string; actor: { kind: string; id: string }; data: Refused })
      .filter((r) => r.type === 'request.refused')
      .map((r) => {
        expect([r.code, r.actor]).toEqual(['HR2005', { kind: 'user', id: r.data.user }]);
        return r.data;
      });
    return { path, text, refused };
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    const dir = join(fleet.dir, 'runbooks');
    await mkdir(dir);
    await writeFile(join(dir, 'runbooks.yaml'), RUNBOOKS);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await fleet.startCoordinator(['--runbooks-dir', dir]);
    await fleet.ensureAdmin();
    wendy = await fleet.user('wendy', ['web']);
    dora = await fleet.user('dora', ['db']);
    dan = await fleet.user('dan', ['db-leads']);
    lee = await fleet.user('lee', ['db', 'db-leads']);
    otto = await fleet.user('otto', ['db-ops']);
    nina = await fleet.user('nina', ['nobody']);
    await fleet.startAgent('db-1', { token: await fleet.token(['--labels', 'role=db']) });
    dbAgent = await fleet.waitOnline('db-1');
    const g = await api<{ executionId: string; state: string }>('POST', '/api/v1/executions', { runbook: 'db-guarded', options: { reason: 'schema change' } }, lee);
    expect(g.body.state).toBe('awaiting_approval');
    guarded = g.body.executionId;
    const l = await api<{ executionId: string; state: string }>('POST', '/api/v1/executions', { runbook: 'db-long' }, dora);
    expect(l.body.state).toBe('running');
    long = l.body.executionId;
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('another team\'s approve, deny and cancel: the 404 of an unknown id, and a record naming who, what and why', async () => {
    const unknown = 'exe-0000000000000000';
    const expected: Array<Partial<Refused>> = [];
    for (const [id, action] of [
      [guarded, 'approve'],
      [guarded, 'deny'],
      [long, 'cancel'],
    ] as const) {
      const body = action === 'cancel' ? undefined : { comment: 'secret-comment-hunter2' };
      const hidden = await answer('POST', `/api/v1/executions/${id}/${action}`, wendy, body);
      const none = await answer('POST', `/api/v1/executions/${unknown}/${action}`, wendy, body);
      expect(hidden.status).toBe(404);
      expect(hidden.headers).toEqual(none.headers);
      expect(JSON.stringify(hidden.body).replace(id, 'ID').replace(hidden.requestId, 'REQ')).toBe(JSON.stringify(none.body).replace(unknown, 'ID').replace(none.requestId, 'REQ'));
      const line = await refusedLog(hidden.requestId);
      expect(line['audited']).toBe(true);
      expected.push({ requestId: hidden.requestId, user: 'wendy', action, targetId: id, runbookId: id === guarded ? 'db-guarded' : 'db-long', rule: 'default-deny', suppressed: 0 });
    }
    // Nothing happened to them, and an unknown id is no refusal (nothing to hide).
    expect((await api<{ state: string }>('GET', `/api/v1/executions/${guarded}`, undefined, lee)).body.state).toBe('awaiting_approval');
    expect((await api<{ state: string }>('GET', `/api/v1/executions/${long}`, undefined, dora)).body.state).toBe('running');
    const { refused, text } = await exportRecords('hidden');
    for (const e of expected) expect(refused.find((r) => r.requestId === e.requestId)).toMatchObject({ ...e, reason: expect.stringMatching(/default deny$/) as unknown });
    expect(refused.filter((r) => r.targetId === unknown)).toEqual([]);
    expect(text).not.toContain('hunter2');
  });

  it('self-approval, not an approver, and policy refusals: the same 403 as before, each audited with its rule', async () => {
    const cases = [
      { who: 'lee', token: lee, path: `/api/v1/executions/${guarded}/approve`, body: { comment: 'me' }, message: 'two-person rule: the requester cannot approve their own execution', want: { action: 'approve', targetId: guarded, runbookId: 'db-guarded', rule: 'two-person-rule' } },
      { who: 'otto', token: otto, path: `/api/v1/executions/${guarded}/deny`, body: { comment: 'no' }, message: 'otto is not one of the approvers (group:db-leads)', want: { action: 'deny', targetId: guarded, runbookId: 'db-guarded', rule: 'not-an-approver' } },
      { who: 'dora', token: dora, path: `/api/v1/executions/${guarded}/approve`, body: {}, message: /^not allowed to approve db-guarded: .*default deny$/, want: { action: 'approve', targetId: guarded, runbookId: 'db-guarded', rule: 'default-deny' } },
      { who: 'otto', token: otto, path: `/api/v1/executions/${long}/cancel`, body: undefined, message: /^not allowed to cancel db-long: .*no-ops-cancel/, want: { action: 'cancel', targetId: long, runbookId: 'db-long', rule: 'teams/no-ops-cancel' } },
      { who: 'dora', token: dora, path: '/api/v1/adhoc', body: { agents: [dbAgent], argv: ['id'], env: { PASSWORD: 'hunter2-env' } }, message: /^ad-hoc commands need the admin action: .*default deny$/, want: { action: 'adhoc', targetId: dbAgent, runbookId: null, rule: 'default-deny' } },
      { who: 'nina', token: nina, path: '/api/v1/runbooks/reload', body: undefined, message: /^reloading runbooks is an admin action: .*default deny$/, want: { action: 'reload', targetId: null, runbookId: null, rule: 'default-deny' } },
    ];
    const ids: string[] = [];
    for (const c of cases) {
      const r = await answer('POST', c.path, c.token, c.body);
      expect([r.status, r.body.error.kind], c.path).toEqual([403, 'permission_denied']);
      // Exactly the members every error has: nothing says a record was written.
      expect(Object.keys(r.body.error).sort()).toEqual(['kind', 'message', 'requestId']);
      if (typeof c.message === 'string') expect(r.body.error.message).toBe(c.message);
      else expect(r.body.error.message).toMatch(c.message);
      await refusedLog(r.requestId);
      ids.push(r.requestId);
    }
    expect((await api<{ state: string }>('GET', `/api/v1/executions/${guarded}`, undefined, lee)).body.state).toBe('awaiting_approval');
    const { refused, text } = await exportRecords('refusals');
    cases.forEach((c, i) => expect(refused.find((r) => r.requestId === ids[i]), c.path).toMatchObject({ user: c.who, suppressed: 0, ...c.want }));
    expect(text).not.toContain('hunter2');
    // The ones that may act still can: the lead approves.
    expect((await api('POST', `/api/v1/executions/${guarded}/approve`, { comment: 'ok' }, dan)).status).toBe(200);
  });

  it('a flood of refusals writes a bounded number of records; the export still verifies', async () => {
    const before = (await exportRecords('before-flood')).refused.filter((r) => r.user === 'nina' && r.action === 'cancel').length;
    expect(before).toBe(0);
    const answers = await Promise.all(Array.from({ length: 40 }, () => answer('POST', `/api/v1/executions/${long}/cancel`, nina)));
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([404]));
    const lines = await Promise.all(answers.map((a) => refusedLog(a.requestId)));
    expect(lines.filter((l) => l['audited'] === true)).toHaveLength(5);
    // Refused runs are rated the same way: of a runbook dan may see but not run (403, policy.decided),
    // and of one nina may not even see (404 as for a missing runbook, request.refused).
    const runs = await Promise.all(Array.from({ length: 20 }, () => answer('POST', '/api/v1/executions', dan, { runbook: 'db-long' })));
    expect(new Set(runs.map((a) => a.status))).toEqual(new Set([403]));
    const hidden = await Promise.all(Array.from({ length: 20 }, () => answer('POST', '/api/v1/executions', nina, { runbook: 'db-long' })));
    expect(new Set(hidden.map((a) => a.status))).toEqual(new Set([404]));
    const missing = await answer('POST', '/api/v1/executions', nina, { runbook: 'db-lung' });
    expect(hidden[0]!.body.error.message.replace('db-long', 'X')).toBe(missing.body.error.message.replace('db-lung', 'X'));
    await Promise.all(hidden.map((a) => refusedLog(a.requestId)));
    const { path, refused, text } = await exportRecords('flood');
    expect(refused.filter((r) => r.user === 'nina' && r.action === 'cancel')).toHaveLength(5);
    expect(refused.filter((r) => r.user === 'nina' && r.action === 'run' && r.runbookId === 'db-long' && r.rule === 'default-deny')).toHaveLength(5);
    const decided = text.trim().split('\n').slice(1).map((l) => JSON.parse(l) as { t: string; payload?: string }).filter((l) => l.t === 'record')
      .map((l) => JSON.parse(Buffer.from(l.payload!, 'base64').toString('utf8')) as { type: string; data: { user: string; allowed: boolean } })
      .filter((r) => r.type === 'policy.decided' && !r.data.allowed);
    expect(decided.filter((r) => r.data.user === 'dan')).toHaveLength(5);
    expect(decided.filter((r) => r.data.user === 'nina')).toHaveLength(0);
    const v = await cli(['audit', 'verify', path]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect((await api('POST', `/api/v1/executions/${long}/cancel`, undefined, dora)).status).toBe(202);
    await fleet.waitExecution(long);
  });
});
