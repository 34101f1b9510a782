/**
 * The history's time filters and team choices, decided without the store: what `from` and `to`
 * mean as instants, whether they make a window, and which teams a reader may pick from.
 *
 * `from` and `to` are a UTC day (`2026-11-23`) or an instant (`2026-11-23T09:30`, with seconds,
 * fractions and a zone optional; no zone is UTC, as a browser's datetime field sends it).
 * `from` is inclusive; `to` is exclusive, and a day given as `to` includes that whole day, so
 * `from=2026-11-23&to=2026-11-23` is that one day.
 */
import type { ExecutionScope } from '../policy/visibility.js';
import { echo } from '../../core/echo.js';

const DAY_MS = 86_400_000;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?$/;

/** The forms the filters accept, said once for messages and descriptions. */
export const TIME_FORMS = 'a UTC date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM], UTC if no zone)';

function calendar(y: string, mo: string, d: string): number | undefined {
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d));
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-30 over to March: a date that does not round-trip is not one.
  if (back.getUTCFullYear() !== Number(y) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d)) return undefined;
  return ms;
}

/** The instant a filter value stands for, or why it is not one (a phrase: "is not a calendar date"). */
export function historyTime(text: string, edge: 'from' | 'to'): { ms: number } | { error: string } {
  const day = DAY.exec(text);
  if (day) {
    const ms = calendar(day[1] as string, day[2] as string, day[3] as string);
    if (ms === undefined) return { error: 'is not a calendar date' };
    return { ms: edge === 'to' ? ms + DAY_MS : ms };
  }
  const t = INSTANT.exec(text);
  if (!t) return { error: `is not ${TIME_FORMS}` };
  const [, y, mo, d, h, mi, s, frac, zone] = t;
  const base = calendar(y as string, mo as string, d as string);
  if (base === undefined) return { error: 'is not a calendar date' };
  if (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return { error: 'is not a time of day' };
  let offsetMin = 0;
  if (zone && zone !== 'Z') {
    const zm = /^([+-])(\d{2}):(\d{2})$/.exec(zone) as RegExpExecArray;
    if (Number(zm[2]) > 14 || Number(zm[3]) > 59) return { error: 'has no such zone offset (at most ±14:59)' };
    offsetMin = (zm[1] === '-' ? -1 : 1) * (Number(zm[2]) * 60 + Number(zm[3]));
  }
  const ms = base + Number(h) * 3_600_000 + Number(mi) * 60_000 + Number(s ?? 0) * 1000 + Number((frac ?? '0').padEnd(3, '0')) - offsetMin * 60_000;
  return { ms };
}

export interface HistoryWindow {
  readonly fromMs?: number;
  readonly toMs?: number;
}

/** Both filters as a window, or the one-line reason they are not one (naming the field). */
export function historyWindow(from: string | undefined, to: string | undefined): { window: HistoryWindow } | { error: string } {
  const window: { fromMs?: number; toMs?: number } = {};
  if (from !== undefined) {
    const f = historyTime(from, 'from');
    if ('error' in f) return { error: `query parameter "from" ${echo(from, 40)} ${f.error}` };
    window.fromMs = f.ms;
  }
  if (to !== undefined) {
    const t = historyTime(to, 'to');
    if ('error' in t) return { error: `query parameter "to" ${echo(to, 40)} ${t.error}` };
    window.toMs = t.ms;
  }
  if (window.fromMs !== undefined && window.toMs !== undefined && window.toMs <= window.fromMs) {
    return { error: `query parameter "to" (${echo(to ?? '', 40)}) is not after "from" (${echo(from ?? '', 40)}): give a later "to" or an earlier "from"` };
  }
  return { window };
}

/**
 * The teams a reader may filter by: those that ever owned a runbook whose executions the reader
 * may see (everything, for the unfiltered scope), so that the list names no other team.
 * Their own executions of other teams' runbooks can still be found by typing the team.
 */
export function teamChoices(pairs: ReadonlyArray<{ readonly team: string; readonly runbookId: string }>, scope: ExecutionScope): string[] {
  const visible = scope.all ? undefined : new Set(scope.runbookIds);
  const teams = new Set(pairs.filter((p) => visible === undefined || visible.has(p.runbookId)).map((p) => p.team));
  return [...teams].sort();
}
