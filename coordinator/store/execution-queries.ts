/**
 * The read side of executions: one execution with its nodes, step runs and approvals, a
 * keyset-paginated history filtered to what the reader may see, stored output (whole, or in
 * store order after a position for the live stream), the approvals inbox. Plain values for the
 * API (web/api/) and the CLI; the agent's signed result is decoded here so that nothing above
 * the coordinator sees protobuf.
 */
import type { Database, SqlValue } from './database.js';
import type { StepResult } from '../../core/step.js';
import { invalidArgument } from '../../core/errors.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';
import { stepOutputChunks } from './execution-store.js';
import type { ExecutionScope } from '../policy/visibility.js';
import type { RunbookRef } from '../policy/model.js';

import type { ExecutionState } from '../../core/execution-state.js';

export { ACTIVE_EXECUTION_STATES, EXECUTION_STATES, type ExecutionState } from '../../core/execution-state.js';

/** A decision on an approval: gate -1 is the execution's own approval, N the approval step at index N. */
export interface ApprovalRecord {
  gate: number;
  approver: string;
  decision: 'approve' | 'deny';
  comment: string;
  decidedAt: string;
}

/** What an execution awaiting approval waits for. */
export interface PendingApprovalGate {
  gate: number;
  required: number;
  /** Who may approve (user:NAME, group:NAME, *); empty: anyone but the requester. */
  from: string[];
  message: string;
  /** Approvals given so far at this gate. */
  approvals: number;
}

export interface ExecutionView {
  id: string;
  kind: string;
  runbookId: string | null;
  runbookDigest: string | null;
  requestedBy: string;
  options: Record<string, unknown>;
  targets: string;
  state: ExecutionState;
  /** Why the requester asked for it (`reason` of the request); never overwritten. */
  reason: string | null;
  /** Why it is in its state: the failure, who canceled or denied it and their comment. */
  stateReason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Who asked to cancel it, if anyone did. */
  canceledBy: string | null;
  /** Every approval decision, in the order they were made. */
  approvals: ApprovalRecord[];
  /** While awaiting approval: what it waits for. */
  pendingApproval: PendingApprovalGate | null;
  nodes: Array<{ agentId: string; agentName: string; state: string; reason: string | null }>;
  steps: Array<{
    id: string;
    agentId: string | null;
    stepIndex: number;
    attempt: number;
    handler: boolean;
    name: string;
    state: string;
    exitCode: number | null;
    error: string | null;
    dispatchedAt: string | null;
    finishedAt: string | null;
    /** Bytes of output the coordinator stored (at most the step's output limit). */
    stdoutBytes: number;
    stderrBytes: number;
    /**
     * From the agent's signed result (null until one is stored): whether the agent cut a
     * stream at the output limit, and how many bytes of it the agent kept and hashed.
     */
    stdoutTruncated: boolean | null;
    stderrTruncated: boolean | null;
    stdoutReportedBytes: number | null;
    stderrReportedBytes: number | null;
  }>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function loadExecution(db: Database, id: string): Promise<ExecutionView | undefined> {
  // The execution with its approvals, nodes and step runs in one statement (JSON arrays, in
  // their order; a signed result as hex): each statement is a round trip through libuv's pool.
  const e = await db.get<{
    id: string; kind: string; runbook_id: string | null; runbook_digest: string | null; requested_by: string; options_json: string; targets: string;
    state: string; reason: string | null; state_reason: string | null; created_at: number; started_at: number | null; finished_at: number | null;
    canceled_by: string | null; gate: number | null; approval_json: string | null; approvals: string; nodes: string; steps: string;
  }>(
    `SELECT id, kind, runbook_id, runbook_digest, requested_by, options_json, targets, state, reason, state_reason, created_at, started_at, finished_at,
       canceled_by, gate, approval_json,
       (SELECT json_group_array(json_array(a.gate, a.approver, a.decision, a.comment, a.decided_at) ORDER BY a.decided_at, a.approver)
          FROM approvals a WHERE a.execution_id = executions.id) AS approvals,
       (SELECT json_group_array(json_array(n.agent_id, n.agent_name, n.state, n.reason) ORDER BY n.node_index)
          FROM execution_nodes n WHERE n.execution_id = executions.id) AS nodes,
       (SELECT json_group_array(json_array(s.id, s.agent_id, s.step_index, s.attempt, s.handler, s.name, s.state, s.exit_code, s.error, s.dispatched_at,
               s.finished_at, s.stdout_bytes, s.stderr_bytes, s.stdout_reported_bytes, s.stderr_reported_bytes, s.stdout_truncated, s.stderr_truncated,
               CASE WHEN s.result_payload IS NOT NULL AND s.stdout_reported_bytes IS NULL THEN hex(s.result_payload) END) ORDER BY s.dispatched_at, s.id)
          FROM step_runs s WHERE s.execution_id = executions.id) AS steps
     FROM executions WHERE id = ?`,
    [id],
  );
  if (!e) return undefined;
  const decided = (JSON.parse(e.approvals) as Array<[number, string, 'approve' | 'deny', string, number]>).map(([gate, approver, decision, comment, decidedAt]) => ({ gate, approver, decision, comment, decided_at: decidedAt }));
  const nodes = (JSON.parse(e.nodes) as Array<[string, string, string, string | null]>).map(([agentId, agentName, state, reason]) => ({ agent_id: agentId, agent_name: agentName, state, reason }));
  type StepColumns = [
    string, string | null, number, number, number, string, string, number | null, string | null, number | null, number | null, number, number,
    number | null, number | null, number | null, number | null, string | null,
  ];
  const steps = (JSON.parse(e.steps) as StepColumns[]).map(([sid, agentId, stepIndex, attempt, handler, name, state, exitCode, error, dispatchedAt, finishedAt, stdoutBytes, stderrBytes, stdoutReported, stderrReported, stdoutCut, stderrCut, resultHex]) => ({
    id: sid, agent_id: agentId, step_index: stepIndex, attempt, handler, name, state, exit_code: exitCode, error, dispatched_at: dispatchedAt, finished_at: finishedAt,
    stdout_bytes: stdoutBytes, stderr_bytes: stderrBytes,
    // Stored with the result since schema 12; a result stored before is decoded (its columns are NULL).
    reported: resultHex !== null
      ? reportedOutput(Buffer.from(resultHex, 'hex'))
      : stdoutReported === null
        ? undefined
        : { stdoutBytes: stdoutReported, stderrBytes: stderrReported ?? 0, stdoutTruncated: stdoutCut === 1, stderrTruncated: stderrCut === 1 },
  }));
  return {
    id: e.id,
    kind: e.kind,
    runbookId: e.runbook_id,
    runbookDigest: e.runbook_digest,
    requestedBy: e.requested_by,
    options: JSON.parse(e.options_json) as Record<string, unknown>,
    targets: e.targets,
    state: e.state as ExecutionState,
    reason: e.reason,
    stateReason: e.state_reason,
    createdAt: iso(e.created_at) as string,
    startedAt: iso(e.started_at),
    finishedAt: iso(e.finished_at),
    canceledBy: e.canceled_by,
    approvals: decided.map((a) => ({ gate: a.gate, approver: a.approver, decision: a.decision, comment: a.comment, decidedAt: iso(a.decided_at) as string })),
    pendingApproval: pendingGate(e.state, e.gate, e.approval_json, decided),
    nodes: nodes.map((n) => ({ agentId: n.agent_id, agentName: n.agent_name, state: n.state, reason: n.reason })),
    steps: steps.map((s) => {
      const reported = s.reported;
      return {
        id: s.id,
        agentId: s.agent_id,
        stepIndex: s.step_index,
        attempt: s.attempt,
        handler: s.handler === 1,
        name: s.name,
        state: s.state,
        exitCode: s.exit_code,
        error: s.error,
        dispatchedAt: iso(s.dispatched_at),
        finishedAt: iso(s.finished_at),
        stdoutBytes: s.stdout_bytes,
        stderrBytes: s.stderr_bytes,
        stdoutTruncated: reported?.stdoutTruncated ?? null,
        stderrTruncated: reported?.stderrTruncated ?? null,
        stdoutReportedBytes: reported?.stdoutBytes ?? null,
        stderrReportedBytes: reported?.stderrBytes ?? null,
      };
    }),
  };
}

function pendingGate(state: string, gate: number | null, approvalJson: string | null, decided: ReadonlyArray<{ gate: number; decision: string }>): PendingApprovalGate | null {
  if (state !== 'awaiting_approval' || gate === null || approvalJson === null) return null;
  const a = JSON.parse(approvalJson) as { required: number; from?: string[]; message?: string };
  return { gate, required: a.required, from: a.from ?? [], message: a.message ?? '', approvals: decided.filter((d) => d.gate === gate && d.decision === 'approve').length };
}

/** What a stored signed result says about the output (it was verified before it was stored). */
function reportedOutput(payload: Buffer): Pick<StepResult, 'stdoutTruncated' | 'stderrTruncated' | 'stdoutBytes' | 'stderrBytes'> | undefined {
  try {
    return decodeStepResult(payload);
  } catch {
    return undefined;
  }
}

export async function readOutput(db: Database, stepRunId: string, stream: 1 | 2): Promise<Buffer> {
  return Buffer.concat(await stepOutputChunks(db, stepRunId, stream));
}

export interface ExecutionSummary {
  id: string;
  kind: string;
  runbookId: string | null;
  /** The team that owned the runbook when the execution was requested (null: ad-hoc, or unknown). */
  team: string | null;
  requestedBy: string;
  targets: string;
  state: ExecutionState;
  reason: string | null;
  stateReason: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface ExecutionListQuery {
  readonly state?: string;
  readonly runbookId?: string;
  readonly requestedBy?: string;
  /** Only executions of runbooks this team owned when they were requested. */
  readonly team?: string;
  /** Requested at or after this instant (ms). */
  readonly fromMs?: number;
  /** Requested before this instant (ms). */
  readonly toMs?: number;
  /** Opaque cursor from a previous page's `next`. */
  readonly before?: string;
  readonly limit: number;
}

const SUMMARY_COLUMNS = 'id, kind, runbook_id, owner_team, requested_by, targets, state, reason, state_reason, created_at, finished_at';
const NEWEST_FIRST = 'ORDER BY created_at DESC, id DESC';
/** SQLite's limit on the arms of one compound SELECT is 500; beyond this many runbooks, one IN list instead. */
const MAX_ARMS = 400;

/**
 * The history query for a reader's scope: newest first, keyset-paginated on (created_at, id),
 * visibility applied in the query itself so that a page and its cursor hold only rows the
 * reader may see. A limited reader's query is a union of one arm per thing they may see (own
 * executions, each visible runbook, ad-hoc ones), each arm an index range with its own limit.
 *
 * A team filter needs `teamRunbooks`, every runbook the team ever owned (runbook_teams): the
 * query is then one arm per such runbook — the reader's visible ones whole, the others only for
 * their own executions — each an executions_runbook (or _runbook_requester) range whose rows
 * nearly all belong to the team, so no index on the team itself is needed. Time bounds narrow
 * every arm's range on created_at.
 */
export function historyQuery(q: ExecutionListQuery, scope: ExecutionScope, teamRunbooks: readonly string[] = []): { sql: string; params: SqlValue[] } {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (q.state) {
    where.push('state = ?');
    params.push(q.state);
  }
  if (q.runbookId) {
    where.push('runbook_id = ?');
    params.push(q.runbookId);
  }
  if (q.requestedBy) {
    where.push('requested_by = ?');
    params.push(q.requestedBy);
  }
  if (q.team !== undefined) {
    where.push('owner_team = ?');
    params.push(q.team);
  }
  if (q.fromMs !== undefined) {
    where.push('created_at >= ?');
    params.push(q.fromMs);
  }
  if (q.toMs !== undefined) {
    where.push('created_at < ?');
    params.push(q.toMs);
  }
  if (q.before) {
    const m = /^(\d{1,15}):([a-z0-9-]{1,64})$/.exec(q.before);
    if (!m) throw invalidArgument('"before" is not a cursor from a previous page');
    // Written so that `created_at <= ?` bounds an index range: a deep page costs what a first one does.
    where.push('created_at <= ? AND (created_at < ? OR id < ?)');
    params.push(Number(m[1]), Number(m[1]), m[2] as string);
  }
  const n = q.limit + 1;
  const arm = (extra: readonly string[], extraParams: readonly SqlValue[]): { sql: string; params: SqlValue[] } => {
    const all = [...extra, ...where];
    return { sql: `SELECT ${SUMMARY_COLUMNS} FROM executions ${all.length ? `WHERE ${all.join(' AND ')}` : ''} ${NEWEST_FIRST} LIMIT ?`, params: [...extraParams, ...params, n] };
  };
  const arms: Array<{ sql: string; params: SqlValue[] }> = [];
  const byRunbook = (ids: readonly string[], extra: string, extraParams: readonly SqlValue[]): void => {
    if (ids.length > MAX_ARMS) arms.push(arm([`kind = 'runbook' AND runbook_id IN (${ids.map(() => '?').join(', ')})${extra}`], [...ids, ...extraParams]));
    else for (const id of ids) arms.push(arm([`kind = 'runbook' AND runbook_id = ?${extra}`], [id, ...extraParams]));
  };
  if (q.team !== undefined) {
    const ids = q.runbookId ? teamRunbooks.filter((id) => id === q.runbookId) : [...teamRunbooks];
    if (scope.all) byRunbook(ids, '', []);
    else {
      const visible = new Set(scope.runbookIds);
      byRunbook(ids.filter((id) => visible.has(id)), '', []);
      if (!q.requestedBy || q.requestedBy === scope.user) byRunbook(ids.filter((id) => !visible.has(id)), ' AND requested_by = ?', [scope.user]);
    }
  } else if (scope.all) return arm([], []);
  else {
    if (!q.requestedBy || q.requestedBy === scope.user) arms.push(arm(['requested_by = ?'], [scope.user]));
    byRunbook(q.runbookId ? scope.runbookIds.filter((id) => id === q.runbookId) : scope.runbookIds, '', []);
    if (scope.adhoc && !q.runbookId) arms.push(arm(["kind = 'adhoc'"], []));
  }
  if (arms.length === 1) return arms[0] as { sql: string; params: SqlValue[] };
  if (arms.length === 0) return { sql: `SELECT ${SUMMARY_COLUMNS} FROM executions WHERE 0 LIMIT ?`, params: [n] };
  // UNION (not UNION ALL): an own execution of a visible runbook comes back from two arms.
  return {
    sql: `SELECT * FROM (${arms.map((a) => `SELECT * FROM (${a.sql})`).join(' UNION ')}) ${NEWEST_FIRST} LIMIT ?`,
    params: [...arms.flatMap((a) => a.params), n],
  };
}

/** Newest first, keyset-paginated on (created_at, id): constant cost however deep the history. */
export async function listExecutions(db: Database, q: ExecutionListQuery, scope: ExecutionScope): Promise<{ executions: ExecutionSummary[]; next: string | null }> {
  const { sql, params } = historyQuery(q, scope, q.team === undefined ? [] : await teamRunbooks(db, q.team));
  const rows = await db.all<{ id: string; kind: string; runbook_id: string | null; owner_team: string | null; requested_by: string; targets: string; state: string; reason: string | null; state_reason: string | null; created_at: number; finished_at: number | null }>(sql, params);
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    executions: page.map((e) => ({
      id: e.id,
      kind: e.kind,
      runbookId: e.runbook_id,
      team: e.owner_team,
      requestedBy: e.requested_by,
      targets: e.targets,
      state: e.state as ExecutionState,
      reason: e.reason,
      stateReason: e.state_reason,
      createdAt: new Date(e.created_at).toISOString(),
      finishedAt: iso(e.finished_at),
    })),
    // From the last row shown: the next page starts right after what this reader saw.
    next: rows.length > q.limit && last ? `${last.created_at}:${last.id}` : null,
  };
}

/** Every runbook a team ever owned when one of its executions was requested. */
export async function teamRunbooks(db: Database, team: string): Promise<string[]> {
  const rows = await db.all<{ runbook_id: string }>('SELECT runbook_id FROM runbook_teams WHERE team = ? ORDER BY runbook_id', [team]);
  return rows.map((r) => r.runbook_id);
}

/** Every (team, runbook) ownership recorded: what the history's team filter can choose from. */
export async function recordedTeams(db: Database): Promise<Array<{ team: string; runbookId: string }>> {
  const rows = await db.all<{ team: string; runbook_id: string }>('SELECT team, runbook_id FROM runbook_teams ORDER BY team, runbook_id');
  return rows.map((r) => ({ team: r.team, runbookId: r.runbook_id }));
}

/** Runbooks executions were recorded for, with the owner and tags they had when last run. */
export async function recordedRunbooks(db: Database): Promise<RunbookRef[]> {
  const rows = await db.all<{ id: string; owner: string; tags_json: string }>('SELECT id, owner, tags_json FROM runbook_refs ORDER BY id');
  return rows.map((r) => ({ id: r.id, owner: r.owner, tags: JSON.parse(r.tags_json) as string[] }));
}

export async function recordedRunbook(db: Database, id: string): Promise<RunbookRef | undefined> {
  const r = await db.get<{ id: string; owner: string; tags_json: string }>('SELECT id, owner, tags_json FROM runbook_refs WHERE id = ?', [id]);
  return r ? { id: r.id, owner: r.owner, tags: JSON.parse(r.tags_json) as string[] } : undefined;
}

/** Who asked for an execution and what it runs: enough to decide who may see it. */
export interface ExecutionOwner {
  readonly kind: string;
  readonly runbookId: string | null;
  readonly requestedBy: string;
}

export async function executionOwner(db: Database, id: string): Promise<(ExecutionOwner & { state: ExecutionState }) | undefined> {
  const row = await db.get<{ kind: string; runbook_id: string | null; requested_by: string; state: ExecutionState }>('SELECT kind, runbook_id, requested_by, state FROM executions WHERE id = ?', [id]);
  return row ? { kind: row.kind, runbookId: row.runbook_id, requestedBy: row.requested_by, state: row.state } : undefined;
}

/** Whether a step run belongs to an execution. */
export async function hasStepRun(db: Database, executionId: string, stepRunId: string): Promise<boolean> {
  const row = await db.get<{ id: string }>('SELECT id FROM step_runs WHERE id = ? AND execution_id = ?', [stepRunId, executionId]);
  return row !== undefined;
}

/** One stored output chunk, with its place in the store's output order. */
export interface StoredOutput {
  readonly seq: number;
  readonly stepRunId: string;
  readonly agentId: string | null;
  readonly stream: 'stdout' | 'stderr';
  readonly offset: number;
  readonly data: Buffer;
}

/**
 * An execution's stored output after position `afterSeq`, in store order, at most `limit`
 * chunks. The keys are found in the (step_run_id, seq) index alone; only the chunks returned
 * are read, so paging through a large output costs what it returns.
 */
export async function outputAfter(db: Database, executionId: string, afterSeq: number, limit: number): Promise<StoredOutput[]> {
  const keys = await db.all<{ seq: number; step_run_id: string; stream: number; offset: number; agent_id: string | null }>(
    `SELECT o.seq, o.step_run_id, o.stream, o.offset, s.agent_id
       FROM step_runs s CROSS JOIN step_output o INDEXED BY step_output_run_seq ON o.step_run_id = s.id AND o.seq > ?
      WHERE s.execution_id = ? ORDER BY o.seq LIMIT ?`,
    [afterSeq, executionId, limit],
  );
  if (keys.length === 0) return [];
  const data = await db.all<{ step_run_id: string; stream: number; offset: number; data: Buffer }>(
    `SELECT step_run_id, stream, offset, data FROM step_output WHERE (step_run_id, stream, offset) IN (VALUES ${keys.map(() => '(?, ?, ?)').join(', ')})`,
    keys.flatMap((k) => [k.step_run_id, k.stream, k.offset]),
  );
  const byKey = new Map(data.map((d) => [`${d.step_run_id}:${d.stream}:${d.offset}`, d.data]));
  return keys.map((k) => ({
    seq: k.seq,
    stepRunId: k.step_run_id,
    agentId: k.agent_id,
    stream: k.stream === 1 ? 'stdout' : 'stderr',
    offset: k.offset,
    data: byKey.get(`${k.step_run_id}:${k.stream}:${k.offset}`) ?? Buffer.alloc(0),
  }));
}

/** Agent id → the host name an execution shows for it. */
export async function nodeNames(db: Database, executionId: string): Promise<Map<string, string>> {
  const rows = await db.all<{ agent_id: string; agent_name: string }>('SELECT agent_id, agent_name FROM execution_nodes WHERE execution_id = ?', [executionId]);
  return new Map(rows.map((r) => [r.agent_id, r.agent_name]));
}

/** An execution waiting for approval, with what the approver needs to decide. */
export interface AwaitingApproval {
  readonly executionId: string;
  readonly runbookId: string | null;
  readonly requestedBy: string;
  readonly reason: string | null;
  readonly targets: string;
  readonly options: Record<string, string>;
  readonly createdAt: string;
  readonly gate: number;
  readonly required: number;
  readonly from: readonly string[];
  readonly message: string;
  readonly decided: ReadonlyArray<{ readonly approver: string; readonly decision: string; readonly comment: string }>;
}

export async function awaitingApprovals(db: Database): Promise<AwaitingApproval[]> {
  const rows = await db.all<{ id: string; runbook_id: string | null; requested_by: string; reason: string | null; targets: string; options_json: string; created_at: number; gate: number; approval_json: string }>(
    "SELECT id, runbook_id, requested_by, reason, targets, options_json, created_at, gate, approval_json FROM executions WHERE state = 'awaiting_approval' AND approval_json IS NOT NULL AND gate IS NOT NULL ORDER BY created_at",
  );
  if (rows.length === 0) return [];
  const decisions = await db.all<{ execution_id: string; gate: number; approver: string; decision: string; comment: string }>(
    `SELECT a.execution_id, a.gate, a.approver, a.decision, a.comment FROM approvals a JOIN executions e ON e.id = a.execution_id
      WHERE e.state = 'awaiting_approval' ORDER BY a.decided_at`,
  );
  return rows.map((r) => {
    const a = JSON.parse(r.approval_json) as { required: number; from?: string[]; message?: string };
    return {
      executionId: r.id,
      runbookId: r.runbook_id,
      requestedBy: r.requested_by,
      reason: r.reason,
      targets: r.targets,
      options: JSON.parse(r.options_json) as Record<string, string>,
      createdAt: new Date(r.created_at).toISOString(),
      gate: r.gate,
      required: a.required,
      from: a.from ?? [],
      message: a.message ?? '',
      decided: decisions.filter((d) => d.execution_id === r.id && d.gate === r.gate).map((d) => ({ approver: d.approver, decision: d.decision, comment: d.comment })),
    };
  });
}
