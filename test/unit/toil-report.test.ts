/**
 * The toil report's pure aggregation (coordinator/engine/toil-report.ts): per-runbook
 * aggregates and the catalog in, team and runbook rows out; and the period from query dates.
 */
import { describe, expect, it } from 'vitest';
import { median, presetPeriod, toilPeriod, toilReport, UNKNOWN_TEAM, type ToilAggregate, type ToilRunbookInfo } from '../../coordinator/engine/toil-report.js';

const CATALOG: ToilRunbookInfo[] = [
  { id: 'restart-web', title: 'Restart web', owner: 'team-web', manualMinutes: 30 },
  { id: 'rotate-logs', title: 'Rotate logs', owner: 'team-web', manualMinutes: 6 },
  { id: 'vacuum-db', title: 'Vacuum DB', owner: 'team-db', manualMinutes: undefined },
];

const agg = (runbookId: string, executions: number, succeeded: number, successDurationsMs: number[] = []): ToilAggregate => ({ runbookId, executions, succeeded, successDurationsMs });

describe('toilReport', () => {
  const cases: Array<{ name: string; input: ToilAggregate[]; teams: unknown[]; runbooks: unknown[] }> = [
    { name: 'nothing ran', input: [], teams: [], runbooks: [] },
    {
      name: 'one runbook: hours are successes × manual minutes, median of successful runs',
      input: [agg('restart-web', 4, 3, [3000, 1000, 2000])],
      teams: [{ team: 'team-web', executions: 4, succeeded: 3, successRate: 0.75, medianDurationMs: 2000, hoursSaved: 1.5 }],
      runbooks: [{ runbookId: 'restart-web', title: 'Restart web', team: 'team-web', manualMinutes: 30, executions: 4, succeeded: 3, successRate: 0.75, medianDurationMs: 2000, hoursSaved: 1.5 }],
    },
    {
      name: 'a team sums its runbooks and takes the median over all their successful runs',
      input: [agg('restart-web', 2, 2, [1000, 5000]), agg('rotate-logs', 10, 5, [100, 200, 300, 400, 500])],
      teams: [{ team: 'team-web', executions: 12, succeeded: 7, successRate: 7 / 12, medianDurationMs: 400, hoursSaved: 1.5 }],
      runbooks: [
        { runbookId: 'restart-web', title: 'Restart web', team: 'team-web', manualMinutes: 30, executions: 2, succeeded: 2, successRate: 1, medianDurationMs: 3000, hoursSaved: 1 },
        { runbookId: 'rotate-logs', title: 'Rotate logs', team: 'team-web', manualMinutes: 6, executions: 10, succeeded: 5, successRate: 0.5, medianDurationMs: 300, hoursSaved: 0.5 },
      ],
    },
    {
      name: 'no manualMinutes saves nothing; none succeeded has no median; teams by hours saved',
      input: [agg('vacuum-db', 3, 0), agg('restart-web', 1, 1, [60_000])],
      teams: [
        { team: 'team-web', executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 60_000, hoursSaved: 0.5 },
        { team: 'team-db', executions: 3, succeeded: 0, successRate: 0, medianDurationMs: null, hoursSaved: 0 },
      ],
      runbooks: [
        { runbookId: 'vacuum-db', title: 'Vacuum DB', team: 'team-db', manualMinutes: null, executions: 3, succeeded: 0, successRate: 0, medianDurationMs: null, hoursSaved: 0 },
        { runbookId: 'restart-web', title: 'Restart web', team: 'team-web', manualMinutes: 30, executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 60_000, hoursSaved: 0.5 },
      ],
    },
    {
      name: 'a runbook removed from the catalog still counts, known by its id',
      input: [agg('gone', 2, 2, [10, 20])],
      teams: [{ team: UNKNOWN_TEAM, executions: 2, succeeded: 2, successRate: 1, medianDurationMs: 15, hoursSaved: 0 }],
      runbooks: [{ runbookId: 'gone', title: 'gone', team: UNKNOWN_TEAM, manualMinutes: null, executions: 2, succeeded: 2, successRate: 1, medianDurationMs: 15, hoursSaved: 0 }],
    },
    {
      name: 'runs keep the team recorded when they ran: a runbook handed from team-ops to team-web counts for each',
      input: [{ ...agg('restart-web', 2, 2, [1000, 3000]), team: 'team-ops' }, { ...agg('restart-web', 1, 1, [5000]), team: 'team-web' }, { ...agg('gone', 1, 1, [7]), team: 'team-old' }],
      teams: [
        { team: 'team-ops', executions: 2, succeeded: 2, successRate: 1, medianDurationMs: 2000, hoursSaved: 1 },
        { team: 'team-web', executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 5000, hoursSaved: 0.5 },
        { team: 'team-old', executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 7, hoursSaved: 0 },
      ],
      runbooks: [
        { runbookId: 'gone', title: 'gone', team: 'team-old', manualMinutes: null, executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 7, hoursSaved: 0 },
        { runbookId: 'restart-web', title: 'Restart web', team: 'team-ops', manualMinutes: 30, executions: 2, succeeded: 2, successRate: 1, medianDurationMs: 2000, hoursSaved: 1 },
        { runbookId: 'restart-web', title: 'Restart web', team: 'team-web', manualMinutes: 30, executions: 1, succeeded: 1, successRate: 1, medianDurationMs: 5000, hoursSaved: 0.5 },
      ],
    },
    { name: 'a runbook with no executions is no row', input: [agg('restart-web', 0, 0)], teams: [], runbooks: [] },
  ];
  it.each(cases)('$name', ({ input, teams, runbooks }) => {
    expect(toilReport(input, CATALOG)).toEqual({ teams, runbooks });
  });
});

describe('median', () => {
  it.each([
    { values: [], out: null },
    { values: [7], out: 7 },
    { values: [9, 1, 5], out: 5 },
    { values: [4, 1, 3, 2], out: 3 },
  ])('$values → $out', ({ values, out }) => {
    expect(median(values)).toBe(out);
  });
});

describe('toilPeriod', () => {
  const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);
  it.each([
    { name: 'default: the last 30 days up to today', from: undefined, to: undefined, out: { from: '2026-11-04', to: '2026-12-03' } },
    { name: 'both given, whole days inclusive', from: '2026-11-01', to: '2026-11-30', out: { from: '2026-11-01', to: '2026-11-30', fromMs: Date.UTC(2026, 10, 1), toMs: Date.UTC(2026, 11, 1) } },
    { name: 'one day', from: '2026-11-05', to: '2026-11-05', out: { fromMs: Date.UTC(2026, 10, 5), toMs: Date.UTC(2026, 10, 6) } },
    { name: 'only to: 30 days up to it', from: undefined, to: '2026-01-30', out: { from: '2026-01-01', to: '2026-01-30' } },
    { name: 'from after to', from: '2026-11-02', to: '2026-11-01', out: { error: '"from" (2026-11-02) is after "to" (2026-11-01): give from on or before to' } },
    { name: 'longer than a year', from: '2024-01-01', to: '2026-01-01', out: { error: 'the period 2024-01-01 to 2026-01-01 is longer than 366 days: choose a shorter one' } },
  ])('$name', ({ from, to, out }) => {
    expect(toilPeriod(from, to, NOW)).toMatchObject(out);
  });
  it('presets end today and cover that many days', () => {
    expect(presetPeriod(7, NOW)).toEqual({ from: '2026-11-27', to: '2026-12-03' });
    expect(toilPeriod(presetPeriod(90, NOW).from, presetPeriod(90, NOW).to, NOW)).toMatchObject({ toMs: Date.UTC(2026, 11, 4), fromMs: Date.UTC(2026, 11, 4) - 90 * 86_400_000 });
  });
});
