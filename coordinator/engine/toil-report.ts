/**
 * The toil report (issue 8): per team and per runbook, how many executions ran in a period,
 * how many succeeded, their median duration and the hours they saved (successful runs × the
 * runbook's `metadata.manualMinutes`). Pure: the store's per-runbook aggregates
 * (coordinator/store/toil-queries.ts) and what the catalog says about each runbook in, rows out.
 */

/** One runbook's executions in the period, as the aggregate query returns them. */
export interface ToilAggregate {
  readonly runbookId: string;
  /** The runbook's owner team when these ran (null: not recorded, before migration 10): the catalog's owner then. */
  readonly team?: string | null;
  readonly executions: number;
  readonly succeeded: number;
  /** Durations (ms, started to finished) of the successful runs, in any order. */
  readonly successDurationsMs: readonly number[];
}

/** What the report needs from the catalog about a runbook. */
export interface ToilRunbookInfo {
  readonly id: string;
  readonly title: string;
  readonly owner: string;
  readonly manualMinutes: number | undefined;
}

interface ToilFigures {
  executions: number;
  succeeded: number;
  /** succeeded / executions, 0..1; null without executions. */
  successRate: number | null;
  /** Median duration of the successful runs, ms; null without one. */
  medianDurationMs: number | null;
  hoursSaved: number;
}

export interface ToilRunbookRow extends ToilFigures {
  runbookId: string;
  title: string;
  team: string;
  /** null: the runbook declares none (or is no longer in the catalog), so it saves nothing on paper. */
  manualMinutes: number | null;
}

export interface ToilTeamRow extends ToilFigures {
  team: string;
}

export interface ToilReport {
  teams: ToilTeamRow[];
  runbooks: ToilRunbookRow[];
}

/** A runbook no longer in the catalog still counts, under this team. */
export const UNKNOWN_TEAM = '(not in catalog)';

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
}

/** Hours to two decimals: the report shows one, the API keeps a little more. */
const hours = (minutes: number): number => Math.round((minutes / 60) * 100) / 100;

/** The team recorded with the executions, else the catalog's owner, else UNKNOWN_TEAM. */
const teamOf = (a: ToilAggregate, rb: ToilRunbookInfo | undefined): string => a.team || rb?.owner || UNKNOWN_TEAM;

const rate = (succeeded: number, executions: number): number | null => (executions === 0 ? null : succeeded / executions);

export function toilReport(aggregates: readonly ToilAggregate[], catalog: readonly ToilRunbookInfo[]): ToilReport {
  const info = new Map(catalog.map((r) => [r.id, r] as const));
  const runbooks: ToilRunbookRow[] = aggregates
    .filter((a) => a.executions > 0)
    .map((a) => {
      const rb = info.get(a.runbookId);
      const manualMinutes = rb?.manualMinutes ?? null;
      return {
        runbookId: a.runbookId,
        title: rb?.title ?? a.runbookId,
        team: teamOf(a, rb),
        manualMinutes,
        executions: a.executions,
        succeeded: a.succeeded,
        successRate: rate(a.succeeded, a.executions),
        medianDurationMs: median(a.successDurationsMs),
        hoursSaved: hours(a.succeeded * (manualMinutes ?? 0)),
      };
    });
  const byTeam = new Map<string, { executions: number; succeeded: number; durations: number[]; minutes: number }>();
  for (const a of aggregates) {
    if (a.executions === 0) continue;
    const rb = info.get(a.runbookId);
    const team = teamOf(a, rb);
    const t = byTeam.get(team) ?? { executions: 0, succeeded: 0, durations: [], minutes: 0 };
    t.executions += a.executions;
    t.succeeded += a.succeeded;
    t.durations.push(...a.successDurationsMs);
    t.minutes += a.succeeded * (rb?.manualMinutes ?? 0);
    byTeam.set(team, t);
  }
  const teams: ToilTeamRow[] = [...byTeam].map(([team, t]) => ({
    team,
    executions: t.executions,
    succeeded: t.succeeded,
    successRate: rate(t.succeeded, t.executions),
    medianDurationMs: median(t.durations),
    hoursSaved: hours(t.minutes),
  }));
  // Most hours saved first; ties by name, so the order is stable.
  teams.sort((a, b) => b.hoursSaved - a.hoursSaved || a.team.localeCompare(b.team));
  runbooks.sort((a, b) => a.team.localeCompare(b.team) || b.hoursSaved - a.hoursSaved || a.runbookId.localeCompare(b.runbookId));
  return { teams, runbooks };
}

/** The period a report covers: [fromMs, toMs), whole UTC days. */
export interface ToilPeriod {
  /** YYYY-MM-DD, inclusive. */
  readonly from: string;
  /** YYYY-MM-DD, inclusive. */
  readonly to: string;
  readonly fromMs: number;
  readonly toMs: number;
}

const DAY_MS = 86_400_000;
export const DEFAULT_TOIL_DAYS = 30;
export const MAX_TOIL_DAYS = 366;
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The last `days` days up to and including today (UTC). */
export function presetPeriod(days: number, nowMs: number): { from: string; to: string } {
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  return { from: day(today - (days - 1) * DAY_MS), to: day(today) };
}

/**
 * From the query's dates (either may be missing: the default is the last 30 days up to `to`),
 * or a one-line reason why not. The dates are valid YYYY-MM-DD already (the schema checks).
 */
export function toilPeriod(from: string | undefined, to: string | undefined, nowMs: number): ToilPeriod | { error: string } {
  const toDay = to ?? presetPeriod(1, nowMs).to;
  const toMs = Date.parse(`${toDay}T00:00:00Z`) + DAY_MS;
  const fromDay = from ?? day(toMs - DEFAULT_TOIL_DAYS * DAY_MS);
  const fromMs = Date.parse(`${fromDay}T00:00:00Z`);
  if (fromMs >= toMs) return { error: `"from" (${fromDay}) is after "to" (${toDay}): give from on or before to` };
  if (toMs - fromMs > MAX_TOIL_DAYS * DAY_MS) return { error: `the period ${fromDay} to ${toDay} is longer than ${MAX_TOIL_DAYS} days: choose a shorter one` };
  return { from: fromDay, to: toDay, fromMs, toMs };
}
