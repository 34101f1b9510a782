/**
 * The read side of executions: one execution with its nodes and step runs, a keyset-paginated
 * history, stored output. Plain values for the API (web/api/executions.ts) and the CLI; the
 * agent's signed result is decoded here so that nothing above the coordinator sees protobuf.
 */
import type { Database } from '../store/database.js';
import type { StepResult } from '../../core/step.js';
import { invalidArgument } from '../../core/errors.js';
import { decodeStepResult } from '../../proto/codec/step-codec.js';

export interface ExecutionView {
  id: string;
  kind: string;
  runbookId: string | null;
  runbookDigest: string | null;
  requestedBy: string;
  options: Record<string, unknown>;
  targets: string;
  state: string;
  reason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
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
  const e = await db.get<{
    id: string; kind: string; runbook_id: string | null; runbook_digest: string | null; requested_by: string; options_json: string; targets: string;
    state: string; reason: string | null; created_at: number; started_at: number | null; finished_at: number | null;
  }>('SELECT * FROM executions WHERE id = ?', [id]);
  if (!e) return undefined;
  const nodes = await db.all<{ agent_id: string; agent_name: string; state: string; reason: string | null }>(
    'SELECT agent_id, agent_name, state, reason FROM execution_nodes WHERE execution_id = ? ORDER BY node_index',
    [id],
  );
  const steps = await db.all<{
    id: string; agent_id: string | null; step_index: number; attempt: number; handler: number; name: string; state: string; exit_code: number | null;
    error: string | null; dispatched_at: number | null; finished_at: number | null; stdout_bytes: number; stderr_bytes: number; result_payload: Buffer | null;
  }>(
    'SELECT id, agent_id, step_index, attempt, handler, name, state, exit_code, error, dispatched_at, finished_at, stdout_bytes, stderr_bytes, result_payload FROM step_runs WHERE execution_id = ? ORDER BY dispatched_at, id',
    [id],
  );
  return {
    id: e.id,
    kind: e.kind,
    runbookId: e.runbook_id,
    runbookDigest: e.runbook_digest,
    requestedBy: e.requested_by,
    options: JSON.parse(e.options_json) as Record<string, unknown>,
    targets: e.targets,
    state: e.state,
    reason: e.reason,
    createdAt: iso(e.created_at) as string,
    startedAt: iso(e.started_at),
    finishedAt: iso(e.finished_at),
    nodes: nodes.map((n) => ({ agentId: n.agent_id, agentName: n.agent_name, state: n.state, reason: n.reason })),
    steps: steps.map((s) => {
      const reported = reportedOutput(s.result_payload);
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

/** What a stored signed result says about the output (it was verified before it was stored). */
function reportedOutput(payload: Buffer | null): Pick<StepResult, 'stdoutTruncated' | 'stderrTruncated' | 'stdoutBytes' | 'stderrBytes'> | undefined {
  if (!payload) return undefined;
  try {
    return decodeStepResult(payload);
  } catch {
    return undefined;
  }
}

export async function readOutput(db: Database, stepRunId: string, stream: 1 | 2): Promise<Buffer> {
  const rows = await db.all<{ data: Buffer }>('SELECT data FROM step_output WHERE step_run_id = ? AND stream = ? ORDER BY offset', [stepRunId, stream]);
  return Buffer.concat(rows.map((r) => r.data));
}

export interface ExecutionSummary {
  id: string;
  kind: string;
  runbookId: string | null;
  requestedBy: string;
  targets: string;
  state: string;
  reason: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface ExecutionListQuery {
  readonly state?: string;
  readonly runbookId?: string;
  readonly requestedBy?: string;
  /** Opaque cursor from a previous page's `next`. */
  readonly before?: string;
  readonly limit: number;
}

/** Newest first, keyset-paginated on (created_at, id): constant cost however deep the history. */
export async function listExecutions(db: Database, q: ExecutionListQuery): Promise<{ executions: ExecutionSummary[]; next: string | null }> {
  const where: string[] = [];
  const params: (string | number)[] = [];
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
  if (q.before) {
    const m = /^(\d+):([a-z0-9-]+)$/.exec(q.before);
    if (!m) throw invalidArgument('"before" is not a cursor from a previous page');
    where.push('(created_at < ? OR (created_at = ? AND id < ?))');
    params.push(Number(m[1]), Number(m[1]), m[2] as string);
  }
  const rows = await db.all<{ id: string; kind: string; runbook_id: string | null; requested_by: string; targets: string; state: string; reason: string | null; created_at: number; finished_at: number | null }>(
    `SELECT id, kind, runbook_id, requested_by, targets, state, reason, created_at, finished_at FROM executions
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`,
    [...params, q.limit + 1],
  );
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    executions: page.map((e) => ({
      id: e.id,
      kind: e.kind,
      runbookId: e.runbook_id,
      requestedBy: e.requested_by,
      targets: e.targets,
      state: e.state,
      reason: e.reason,
      createdAt: new Date(e.created_at).toISOString(),
      finishedAt: iso(e.finished_at),
    })),
    next: rows.length > q.limit && last ? `${last.created_at}:${last.id}` : null,
  };
}

/** Who asked for an execution and what it runs: enough to decide who may see it. */
export interface ExecutionOwner {
  readonly kind: string;
  readonly runbookId: string | null;
  readonly requestedBy: string;
}

export async function executionOwner(db: Database, id: string): Promise<ExecutionOwner | undefined> {
  const row = await db.get<{ kind: string; runbook_id: string | null; requested_by: string }>('SELECT kind, runbook_id, requested_by FROM executions WHERE id = ?', [id]);
  return row ? { kind: row.kind, runbookId: row.runbook_id, requestedBy: row.requested_by } : undefined;
}

/** Whether a step run belongs to an execution. */
export async function hasStepRun(db: Database, executionId: string, stepRunId: string): Promise<boolean> {
  const row = await db.get<{ id: string }>('SELECT id FROM step_runs WHERE id = ? AND execution_id = ?', [stepRunId, executionId]);
  return row !== undefined;
}
