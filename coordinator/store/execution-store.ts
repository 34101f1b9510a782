/**
 * The executions aggregate's SQL for the engine, the ad-hoc runner and the step dispatcher:
 * executions, their nodes, step runs and stored output. Writes take the caller's transaction
 * (a state change commits with its audit record); hot-path rows are queued (queueInsert /
 * queueUpdate) so that one commit writes a whole group of them in a few statements. The read
 * models for the API and portal are in execution-queries.ts.
 */
import type { Queryable, RunResult, Tx } from './database.js';

// ---- output

/** One stream of one step run's stored output, in order (1 stdout, 2 stderr). */
export async function stepOutputChunks(q: Queryable, stepRunId: string, stream: 1 | 2): Promise<Buffer[]> {
  return (await q.all<{ data: Buffer }>('SELECT data FROM step_output WHERE step_run_id = ? AND stream = ? ORDER BY offset', [stepRunId, stream])).map((r) => r.data);
}

/** The stored output of several step runs (at most a few hundred ids), by run, stream and offset. */
export function stepOutputOfMany(q: Queryable, stepRunIds: readonly string[]): Promise<Array<{ step_run_id: string; stream: number; data: Buffer }>> {
  return q.all(`SELECT step_run_id, stream, data FROM step_output WHERE step_run_id IN (${stepRunIds.map(() => '?').join(',')}) ORDER BY step_run_id, stream, offset`, [...stepRunIds]);
}

export async function lastOutputSeq(q: Queryable): Promise<number> {
  return (await q.get<{ m: number | null }>('SELECT max(seq) AS m FROM step_output'))?.m ?? 0;
}

const OUTPUT_COLUMNS = ['step_run_id', 'stream', 'offset', 'data', 'received_at', 'seq'] as const;

/** A chunk of output (stream 1 stdout, 2 stderr) and the stream's new stored length, queued. */
export function queueOutputChunk(tx: Tx, c: { stepRunId: string; stream: 1 | 2; offset: number; data: Buffer; receivedAt: number; seq: number }, storedBytes: number): void {
  tx.queueInsert('step_output', OUTPUT_COLUMNS, [c.stepRunId, c.stream, c.offset, c.data, c.receivedAt, c.seq], 'IGNORE');
  tx.queueUpdate('step_runs', { id: c.stepRunId }, c.stream === 1 ? { stdout_bytes: storedBytes } : { stderr_bytes: storedBytes });
}

// ---- executions

export interface NewRunbookExecution {
  readonly id: string;
  readonly runbookId: string;
  readonly runbookDigest: string;
  readonly runbookJson: string;
  readonly requestedBy: string;
  readonly optionsJson: string;
  readonly secretsSealed: Buffer | null;
  readonly targets: string;
  readonly state: 'awaiting_approval' | 'running';
  readonly reason: string | null;
  readonly approvalJson: string | null;
  readonly gate: number | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  /** The runbook's owner team when requested: the history's team filter (migration 10). */
  readonly ownerTeam: string | null;
}

export function insertRunbookExecution(q: Queryable, e: NewRunbookExecution): Promise<RunResult> {
  return q.run(
    `INSERT INTO executions (id, kind, runbook_id, runbook_digest, runbook_json, requested_by, options_json, secrets_sealed, targets, state, reason, approval_json, gate, created_at, started_at, owner_team)
     VALUES (?, 'runbook', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [e.id, e.runbookId, e.runbookDigest, e.runbookJson, e.requestedBy, e.optionsJson, e.secretsSealed, e.targets, e.state, e.reason, e.approvalJson, e.gate, e.createdAt, e.startedAt, e.ownerTeam],
  );
}

export function insertAdhocExecution(q: Queryable, e: { id: string; requestedBy: string; targets: string; createdAt: number }): Promise<RunResult> {
  return q.run(`INSERT INTO executions (id, kind, requested_by, targets, state, created_at, started_at) VALUES (?, 'adhoc', ?, ?, 'running', ?, ?)`, [e.id, e.requestedBy, e.targets, e.createdAt, e.createdAt]);
}

/** Who may see an execution is decided on its runbook's owner and tags, also once the runbook is gone. */
export function queueRunbookRef(tx: Tx, r: { id: string; owner: string; tags: readonly string[]; at: number }): void {
  tx.queueInsert('runbook_refs', ['id', 'owner', 'tags_json', 'updated_at'], [r.id, r.owner, JSON.stringify(r.tags), r.at], 'REPLACE');
}

/** The history's team filter finds a team's runbooks here, the owners of the past included. */
export function queueRunbookTeam(tx: Tx, team: string, runbookId: string): void {
  tx.queueInsert('runbook_teams', ['team', 'runbook_id'], [team, runbookId], 'IGNORE');
}

export function queueNodes(tx: Tx, executionId: string, nodes: ReadonlyArray<{ agentId: string; name: string }>, state: 'pending' | 'running', startedAt?: number): void {
  nodes.forEach((n, i) =>
    startedAt === undefined
      ? tx.queueInsert('execution_nodes', ['execution_id', 'agent_id', 'node_index', 'agent_name', 'state'], [executionId, n.agentId, i, n.name, state])
      : tx.queueInsert('execution_nodes', ['execution_id', 'agent_id', 'node_index', 'agent_name', 'state', 'started_at'], [executionId, n.agentId, i, n.name, state, startedAt]),
  );
}

/** A node's new state: `finishedAt` when it ended, else `startedAt`. */
export function queueNodeState(tx: Tx, executionId: string, agentId: string, s: { state: string; reason: string | null; finishedAt?: number; startedAt?: number }): void {
  tx.queueUpdate(
    'execution_nodes',
    { execution_id: executionId, agent_id: agentId },
    s.finishedAt !== undefined ? { state: s.state, reason: s.reason, finished_at: s.finishedAt } : { state: s.state, reason: s.reason, started_at: s.startedAt ?? null },
  );
}

/** An ad-hoc node's outcome (its columns in this order: state, finished_at, reason). */
export function queueAdhocNodeOutcome(tx: Tx, executionId: string, agentId: string, state: string, finishedAt: number, reason: string | null): void {
  tx.queueUpdate('execution_nodes', { execution_id: executionId, agent_id: agentId }, { state, finished_at: finishedAt, reason });
}

export function executionKind(q: Queryable, id: string): Promise<{ kind: string; state: string } | undefined> {
  return q.get<{ kind: string; state: string }>('SELECT kind, state FROM executions WHERE id = ?', [id]);
}

export function executionApprovalState(q: Queryable, id: string): Promise<{ state: string; gate: number | null; approval_json: string | null; requested_by: string; runbook_id: string | null } | undefined> {
  return q.get('SELECT state, gate, approval_json, requested_by, runbook_id FROM executions WHERE id = ?', [id]);
}

export function approvalsAtGate(q: Queryable, executionId: string, gate: number): Promise<Array<{ approver: string; decision: string }>> {
  return q.all('SELECT approver, decision FROM approvals WHERE execution_id = ? AND gate = ?', [executionId, gate]);
}

export function approvedCountsByGate(q: Queryable, executionId: string): Promise<Array<{ gate: number; n: number }>> {
  return q.all("SELECT gate, count(*) AS n FROM approvals WHERE execution_id = ? AND decision = 'approve' GROUP BY gate", [executionId]);
}

export function insertApproval(q: Queryable, a: { executionId: string; gate: number; approver: string; decision: string; comment: string; decidedAt: number }): Promise<RunResult> {
  return q.run('INSERT INTO approvals (execution_id, gate, approver, decision, comment, decided_at) VALUES (?, ?, ?, ?, ?, ?)', [a.executionId, a.gate, a.approver, a.decision, a.comment, a.decidedAt]);
}

/** Approved: the execution runs (again), its gate cleared. */
export function startApprovedExecution(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run("UPDATE executions SET state = 'running', gate = NULL, approval_json = NULL, started_at = coalesce(started_at, ?) WHERE id = ?", [at, id]);
}

export function markCancelRequested(q: Queryable, id: string, at: number, by: string): Promise<RunResult> {
  return q.run('UPDATE executions SET cancel_requested_at = ?, canceled_by = ? WHERE id = ?', [at, by, id]);
}

/** Ends a running ad-hoc execution as canceled at once; changes is 0 if it was not running. */
export function cancelRunningAdhoc(q: Queryable, id: string, at: number, by: string): Promise<RunResult> {
  return q.run("UPDATE executions SET cancel_requested_at = ?, canceled_by = ?, state = 'canceled', state_reason = ?, finished_at = ? WHERE id = ? AND kind = 'adhoc' AND state = 'running'", [
    at, by, `canceled by ${by}`, at, id,
  ]);
}

/** Ends a running ad-hoc execution; changes is 0 if it had ended already. */
/**
 * Ends a running ad-hoc execution: as canceled if a cancel was asked for, else in `state`. The
 * state it ended in, or undefined if it was not running. One statement, not a read and a write.
 */
/**
 * Ends a running ad-hoc execution; the state it ended in, undefined if it was not running.
 * Touches the executions row only (not its id), so it runs ahead of rows queued for other
 * tables (the result's step run, node and audit record): one statement fewer per result.
 */
export async function finishRunningAdhoc(tx: Tx, id: string, state: string, at: number): Promise<string | undefined> {
  const [row] = await tx.allOn<{ state: string }>(
    ['executions'],
    "UPDATE executions SET state = CASE WHEN cancel_requested_at IS NOT NULL THEN 'canceled' ELSE ? END, finished_at = ? WHERE id = ? AND state = 'running' RETURNING state",
    [state, at, id],
  );
  return row?.state;
}

/** A running execution stops at an approval gate; changes is 0 if it was not running. */
export function awaitApprovalAt(q: Queryable, id: string, gate: number, approvalJson: string): Promise<RunResult> {
  return q.run("UPDATE executions SET state = 'awaiting_approval', gate = ?, approval_json = ? WHERE id = ? AND state = 'running'", [gate, approvalJson, id]);
}

const ACTIVE_STATES = ['queued', 'awaiting_approval', 'running'];

/**
 * Ends an active execution (its sealed secrets dropped); false if it had ended already. Touches
 * the executions row only (not its id), so it runs ahead of rows queued for other tables (the
 * last result's step run and audit record, node states): the audit record queued before it and
 * the execution.completed one go out as one INSERT, one statement fewer.
 */
export async function finishActiveExecution(tx: Tx, id: string, state: string, reason: string | null, at: number): Promise<boolean> {
  const rows = await tx.allOn<{ id: string }>(
    ['executions'],
    `UPDATE executions SET state = ?, state_reason = ?, finished_at = ?, secrets_sealed = NULL, gate = NULL WHERE id = ? AND state IN (${ACTIVE_STATES.map(() => '?').join(', ')}) RETURNING id`,
    [state, reason, at, id, ...ACTIVE_STATES],
  );
  return rows.length === 1;
}

export interface ResumableExecutionRow {
  id: string;
  runbook_json: string;
  requested_by: string;
  options_json: string;
  secrets_sealed: Buffer | null;
  state: string;
  gate: number | null;
}

/** Runbook executions a restarted coordinator picks up again. */
export function resumableExecutions(q: Queryable): Promise<ResumableExecutionRow[]> {
  return q.all<ResumableExecutionRow>(`SELECT id, runbook_json, requested_by, options_json, secrets_sealed, state, gate FROM executions WHERE kind = 'runbook' AND state IN ('queued', 'awaiting_approval', 'running')`);
}

export function nodesOf<S extends string = string>(q: Queryable, executionId: string): Promise<Array<{ agent_id: string; agent_name: string; state: S; reason: string | null }>> {
  return q.all('SELECT agent_id, agent_name, state, reason FROM execution_nodes WHERE execution_id = ? ORDER BY node_index', [executionId]);
}

// ---- step runs

export interface StepRunRow<S extends string = string> {
  id: string;
  execution_id: string;
  agent_id: string;
  state: S;
  request_payload: Buffer | null;
  request_sha256: string | null;
  request_key_id: string | null;
  request_signature: Buffer | null;
  not_after: number | null;
  stdout_bytes: number;
  stderr_bytes: number;
  cancel_requested_at: number | null;
  result_payload: Buffer | null;
}

/** A step run's steps in the order they were dispatched (resume). */
export function stepRunsForResume(q: Queryable, executionId: string): Promise<Array<{ id: string; agent_id: string; step_index: number; attempt: number; handler: number; state: string; error: string | null; exit_code: number | null }>> {
  return q.all('SELECT id, agent_id, step_index, attempt, handler, state, error, exit_code FROM step_runs WHERE execution_id = ? ORDER BY dispatched_at, rowid', [executionId]);
}

export function markStepLostOnRestart(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run("UPDATE step_runs SET state = 'lost', finished_at = ?, error = 'interrupted by a coordinator restart' WHERE id = ?", [at, id]);
}

const DISPATCHED_COLUMNS = ['id', 'execution_id', 'agent_id', 'step_index', 'attempt', 'handler', 'name', 'state', 'request_payload', 'request_sha256', 'request_key_id', 'request_signature', 'not_after', 'dispatched_at'] as const;

/** A signed step request as sent to its agent, queued. */
export function queueDispatchedStep(
  tx: Tx,
  s: { id: string; executionId: string; agentId: string; stepIndex: number; attempt: number; handler: boolean; name: string; requestPayload: Buffer; requestSha256: string; requestKeyId: string; requestSignature: Buffer; notAfter: number; dispatchedAt: number },
): void {
  tx.queueInsert('step_runs', DISPATCHED_COLUMNS, [s.id, s.executionId, s.agentId, s.stepIndex, s.attempt, s.handler ? 1 : 0, s.name, 'dispatched', s.requestPayload, s.requestSha256, s.requestKeyId, s.requestSignature, s.notAfter, s.dispatchedAt]);
}

/** A step the coordinator runs itself (http, sleep), started, queued. */
export function queueLocalStep(tx: Tx, s: { id: string; executionId: string; agentId: string; stepIndex: number; attempt: number; handler: boolean; name: string; startedAt: number }): void {
  tx.queueInsert('step_runs', ['id', 'execution_id', 'agent_id', 'step_index', 'attempt', 'handler', 'name', 'state', 'dispatched_at', 'accepted_at'], [
    s.id, s.executionId, s.agentId, s.stepIndex, s.attempt, s.handler ? 1 : 0, s.name, 'running', s.startedAt, s.startedAt,
  ]);
}

export function queueLocalStepEnd(tx: Tx, id: string, e: { state: string; finishedAt: number; exitCode: number | null; error: string | null; stdoutBytes: number }): void {
  tx.queueUpdate('step_runs', { id }, { state: e.state, finished_at: e.finishedAt, exit_code: e.exitCode, error: e.error, stdout_bytes: e.stdoutBytes });
}

/** The agent took a dispatched step (a no-op for any other state, or another agent's step). */
export function queueStepAccepted(tx: Tx, id: string, agentId: string, acceptedAt: number): void {
  tx.queueUpdate('step_runs', { id, agent_id: agentId }, { state: 'running', accepted_at: acceptedAt }, "step_runs.state = 'dispatched'");
}

export interface StoredResult {
  readonly state: string;
  readonly finishedAt: number;
  readonly exitCode: number;
  readonly signal: string | null;
  readonly payload: Buffer;
  readonly signature: Buffer;
  readonly certSerial: string;
  readonly error: string | null;
  readonly acceptedAt: number;
  /** From the signed result: the bytes of each stream the agent kept and hashed, and whether it cut it at the limit. */
  readonly reported: { readonly stdoutBytes: number; readonly stderrBytes: number; readonly stdoutTruncated: boolean; readonly stderrTruncated: boolean };
}

/**
 * A signed result, queued (the fast path: a step this process dispatched). The signed request
 * may carry secret values: it is not kept once the step has ended.
 */
export function queueStepResult(tx: Tx, id: string, r: StoredResult): void {
  tx.queueUpdate('step_runs', { id }, {
    state: r.state, finished_at: r.finishedAt, exit_code: r.exitCode, signal: r.signal, result_payload: r.payload, result_signature: r.signature,
    result_cert_serial: r.certSerial, error: r.error, accepted_at: r.acceptedAt, request_payload: null,
    stdout_reported_bytes: r.reported.stdoutBytes, stderr_reported_bytes: r.reported.stderrBytes,
    stdout_truncated: r.reported.stdoutTruncated ? 1 : 0, stderr_truncated: r.reported.stderrTruncated ? 1 : 0,
  });
}

/** A signed result for a step read from the store (the slow path): keeps an earlier acceptance time. */
export function storeStepResult(q: Queryable, id: string, r: StoredResult): Promise<RunResult> {
  return q.run(
    `UPDATE step_runs SET state = ?, finished_at = ?, exit_code = ?, signal = ?, result_payload = ?, result_signature = ?, result_cert_serial = ?, error = ?,
       accepted_at = coalesce(accepted_at, ?), request_payload = ?, stdout_reported_bytes = ?, stderr_reported_bytes = ?, stdout_truncated = ?, stderr_truncated = ?
     WHERE id = ?`,
    [
      r.state, r.finishedAt, r.exitCode, r.signal, r.payload, r.signature, r.certSerial, r.error, r.acceptedAt, null,
      r.reported.stdoutBytes, r.reported.stderrBytes, r.reported.stdoutTruncated ? 1 : 0, r.reported.stderrTruncated ? 1 : 0, id,
    ],
  );
}

export function findStepRun<S extends string = string>(q: Queryable, id: string): Promise<StepRunRow<S> | undefined> {
  return q.get<StepRunRow<S>>('SELECT * FROM step_runs WHERE id = ?', [id]);
}

export function findAgentStepRun<S extends string = string>(q: Queryable, id: string, agentId: string): Promise<StepRunRow<S> | undefined> {
  return q.get<StepRunRow<S>>('SELECT * FROM step_runs WHERE id = ? AND agent_id = ?', [id, agentId]);
}

/** Every agent step not ended yet whose signed request is still held (watchdogs after a restart). */
export function openStepRunsWithRequest<S extends string = string>(q: Queryable): Promise<StepRunRow<S>[]> {
  return q.all<StepRunRow<S>>("SELECT * FROM step_runs WHERE state IN ('dispatched', 'running') AND request_payload IS NOT NULL");
}

/** An agent's steps not ended yet, oldest first (sent again when it reconnects). */
export function openStepRunsOf<S extends string = string>(q: Queryable, agentId: string): Promise<StepRunRow<S>[]> {
  return q.all<StepRunRow<S>>("SELECT * FROM step_runs WHERE agent_id = ? AND state IN ('dispatched', 'running') ORDER BY dispatched_at", [agentId]);
}

/** The ids of an execution's steps not ended yet. */
export async function openStepRunIds(q: Queryable, executionId: string): Promise<string[]> {
  return (await q.all<{ id: string }>("SELECT id FROM step_runs WHERE execution_id = ? AND state IN ('dispatched', 'running')", [executionId])).map((r) => r.id);
}

/** How many of an execution's steps are still open, and how many ended other than succeeded. */
export async function stepCounts(q: Queryable, executionId: string): Promise<{ open: number; bad: number }> {
  const r = await q.get<{ open: number | null; bad: number | null }>(
    "SELECT sum(state IN ('dispatched', 'running')) AS open, sum(state NOT IN ('dispatched', 'running', 'succeeded')) AS bad FROM step_runs WHERE execution_id = ?",
    [executionId],
  );
  return { open: r?.open ?? 0, bad: r?.bad ?? 0 };
}

export function stepCancelRequestedAt(q: Queryable, id: string): Promise<{ cancel_requested_at: number | null } | undefined> {
  return q.get<{ cancel_requested_at: number | null }>('SELECT cancel_requested_at FROM step_runs WHERE id = ?', [id]);
}

export function markStepCancelRequested(q: Queryable, id: string, at: number): Promise<RunResult> {
  return q.run('UPDATE step_runs SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ?', [at, id]);
}

/** The agent refused a step (its request dropped). */
export function markStepRefused(q: Queryable, id: string, state: string, at: number, error: string): Promise<RunResult> {
  return q.run('UPDATE step_runs SET state = ?, finished_at = ?, error = ?, request_payload = NULL WHERE id = ?', [state, at, error, id]);
}

/** Gives up on an open step (its request dropped); changes is 0 if it had ended already. */
export function closeOpenStep(q: Queryable, id: string, state: string, at: number, why: string): Promise<RunResult> {
  return q.run(`UPDATE step_runs SET state = ?, finished_at = ?, error = ?, request_payload = NULL WHERE id = ? AND state IN ('dispatched', 'running')`, [state, at, why, id]);
}

/** A coordinator step's whole output (an http step's response body), stdout at offset 0, queued. */
export function queueLocalStepOutput(tx: Tx, o: { stepRunId: string; data: Buffer; receivedAt: number; seq: number }): void {
  tx.queueInsert('step_output', OUTPUT_COLUMNS, [o.stepRunId, 1, 0, o.data, o.receivedAt, o.seq]);
}
