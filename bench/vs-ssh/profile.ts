/**
 * Where `handrail run … --follow` spends its wall time, end to end: one timeline per profiled
 * run from three clocks on the same machine — this script (spawn, exit seen), the CLI's preload
 * (cli-trace.ts: Node start, requests, event-stream chunks, final line, exit) and the
 * coordinator's store (execution created and finished; per node: step dispatched, agent process
 * started, finished per the agent's signed result, result stored).
 */
import { readFileSync } from 'node:fs';
import { Database } from '../../coordinator/store/database.js';
import { median } from '../proc-stats.js';

interface TraceEvent {
  readonly event: string;
  readonly t: number;
  readonly what?: string;
  readonly end?: boolean;
  readonly state?: boolean;
}

export interface Milestone {
  readonly label: string;
  /** Milliseconds after the CLI was spawned. */
  readonly at: number;
}

export interface RunTimes {
  readonly spawnedAt: number;
  readonly exitSeenAt: number;
  readonly traceFile: string;
  readonly executionId: string;
}

const pick = (xs: readonly number[], which: 'first' | 'median' | 'last'): number => (which === 'first' ? Math.min(...xs) : which === 'last' ? Math.max(...xs) : median(xs));

/** The milestones of one run, in the order a run passes them. */
export async function timeline(dbPath: string, r: RunTimes): Promise<Milestone[]> {
  const trace = readFileSync(r.traceFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceEvent);
  const ev = (pred: (e: TraceEvent) => boolean): number | undefined => trace.find(pred)?.t;
  const db = await Database.open(dbPath, { readonly: true });
  try {
    const exe = await db.get<{ created_at: number; started_at: number | null; finished_at: number | null }>('SELECT created_at, started_at, finished_at FROM executions WHERE id = ?', [r.executionId]);
    const steps = await db.all<{ dispatched_at: number | null; accepted_at: number | null; finished_at: number | null }>(
      'SELECT dispatched_at, accepted_at, finished_at FROM step_runs WHERE execution_id = ?',
      [r.executionId],
    );
    if (!exe || steps.length === 0) throw new Error(`execution ${r.executionId} not found in ${dbPath}`);
    const col = (f: (s: (typeof steps)[number]) => number | null | undefined): number[] => steps.map(f).filter((x): x is number => typeof x === 'number' && x > 0);
    const dispatched = col((s) => s.dispatched_at);
    const accepted = col((s) => s.accepted_at);
    // step_runs.finished_at is the agent's signed finish time, not when the coordinator stored the
    // result: that is the ts of the step.result audit record, written in the result's transaction.
    const processEnded = col((s) => s.finished_at);
    const audit = await db.all<{ payload: Buffer }>('SELECT payload FROM audit_records WHERE payload LIKE ?', [`%${r.executionId}%`]);
    const stored: number[] = [];
    for (const a of audit) {
      const rec = JSON.parse(a.payload.toString('utf8')) as { ts: string; type: string; data: { executionId?: string } };
      if (rec.type === 'step.result' && rec.data.executionId === r.executionId) stored.push(Date.parse(rec.ts));
    }
    const isPost = (e: TraceEvent): boolean => e.what?.startsWith('POST /api/v1/executions') ?? false;
    const isEvents = (e: TraceEvent): boolean => /\/events$/.test(e.what ?? '');
    const raw: Array<[string, number | undefined]> = [
      ['CLI spawned (this script)', r.spawnedAt],
      ['Node process started (performance.timeOrigin)', ev((e) => e.event === 'process-start')],
      ['Node bootstrap done, CLI modules start loading', ev((e) => e.event === 'preload')],
      ['POST /executions sent (CLI loaded, options parsed)', ev((e) => e.event === 'fetch-sent' && isPost(e))],
      ['execution row created (coordinator)', exe.created_at],
      ['first step dispatched (coordinator)', dispatched.length ? pick(dispatched, 'first') : undefined],
      ['last step dispatched (coordinator)', dispatched.length ? pick(dispatched, 'last') : undefined],
      ['POST answered (CLI)', ev((e) => e.event === 'fetch-headers' && isPost(e))],
      ['GET …/events sent (CLI)', ev((e) => e.event === 'fetch-sent' && isEvents(e))],
      ['event stream open (CLI)', ev((e) => e.event === 'fetch-headers' && isEvents(e))],
      ['first state event received (CLI)', ev((e) => e.event === 'fetch-chunk' && isEvents(e) && e.state === true)],
      ['first agent process started (agent)', accepted.length ? pick(accepted, 'first') : undefined],
      ['median agent process started', accepted.length ? pick(accepted, 'median') : undefined],
      ['last agent process started', accepted.length ? pick(accepted, 'last') : undefined],
      ['last agent process ended (agent clock, signed result)', processEnded.length ? pick(processEnded, 'last') : undefined],
      ['first result stored (coordinator)', stored.length ? pick(stored, 'first') : undefined],
      ['median result stored', stored.length ? pick(stored, 'median') : undefined],
      ['last result stored (its audit record)', stored.length ? pick(stored, 'last') : undefined],
      ['execution finished (coordinator)', exe.finished_at ?? undefined],
      ['"end" event received (CLI)', ev((e) => e.event === 'fetch-chunk' && isEvents(e) && e.end === true)],
      ['final line printed (CLI)', ev((e) => e.event === 'final-line')],
      ['process exit event (CLI)', ev((e) => e.event === 'exit')],
      ['exit seen (this script)', r.exitSeenAt],
    ];
    return raw.filter((m): m is [string, number] => m[1] !== undefined).map(([label, t]) => ({ label, at: t - r.spawnedAt }));
  } finally {
    await db.close();
  }
}

/**
 * The median of each milestone over several runs, in time order (the CLI's and the
 * coordinator's paths interleave), as text lines: "+ms after spawn (Δ from the line before) label".
 */
export function timelineLines(runs: readonly Milestone[][]): string[] {
  const labels = runs[0]?.map((m) => m.label) ?? [];
  const medians = labels
    .map((label) => ({ label, at: median(runs.map((r) => r.find((m) => m.label === label)?.at).filter((x): x is number => x !== undefined)) }))
    .sort((a, b) => a.at - b.at);
  let prev = 0;
  return medians.map(({ label, at }) => {
    const line = `${at.toFixed(1).padStart(8)} ms  (+${(at - prev).toFixed(1).padStart(6)})  ${label}`;
    prev = at;
    return line;
  });
}
