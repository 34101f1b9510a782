/**
 * The audit trail's pure decisions (the portal's /audit page and /api/v1/audit/*): what a
 * filter means (times as inclusive ISO bounds), how a page and its cursor are cut, and what an
 * export of a selection holds and which `handrail audit verify` flag it then needs. Values in,
 * values out: the store's query module (coordinator/store/audit-trail-queries.ts) applies them.
 */
import type { AuditEventType } from './events.js';
import type { AuditTrailScope } from '../policy/visibility.js';

/** Records per page unless asked otherwise, and the most one page may hold. */
export const TRAIL_PAGE_SIZE = 50;
export const TRAIL_MAX_PAGE = 200;

/** A filter as the store applies it: every member optional, times as ISO strings (inclusive). */
export interface TrailFilter {
  readonly type?: AuditEventType;
  /** The actor's id (a user name, an agent id, `cli` user, `coordinator`…). */
  readonly actor?: string;
  readonly executionId?: string;
  /** ISO 8601 UTC with milliseconds, as records write `ts`: compared as strings. */
  readonly fromIso?: string;
  readonly toIso?: string;
}

/**
 * How far out of order record times may be and a time filter still finds every record in its
 * range. A time filter reads a stretch of seq numbers (found through the time index, whose
 * order is seq order as long as clocks only move forward) widened by this much on each side,
 * then keeps the records whose own time is in range: records are never shown outside the range,
 * and none inside it is missed unless a clock stepped back by more than this.
 */
export const TIME_SLACK_MS = 3_600_000;

/** The times to look up the seq stretch of a time filter at (each bound widened by TIME_SLACK_MS). */
export function slackBounds(f: Pick<TrailFilter, 'fromIso' | 'toIso'>): { readonly fromIso?: string; readonly toIso?: string } {
  const widen = (iso: string, by: number): string => new Date(Date.parse(iso) + by).toISOString();
  return { ...(f.fromIso !== undefined ? { fromIso: widen(f.fromIso, -TIME_SLACK_MS) } : {}), ...(f.toIso !== undefined ? { toIso: widen(f.toIso, TIME_SLACK_MS) } : {}) };
}

/**
 * A limited reader who may see at most this many executions has their records looked up
 * execution by execution (the execution index); one who sees more has the log walked newest
 * first, keeping their records, which soon fills a page.
 */
export const FEW_EXECUTIONS = 2000;

export interface TrailPageQuery extends TrailFilter {
  /** Records with a smaller seq only: the `next` cursor of the previous page. */
  readonly before?: number;
  readonly limit: number;
  /** The seq stretch a time filter covers (from the store's time index), inclusive. */
  readonly seqWindow?: { readonly from: number; readonly to: number };
  /** A limited reader sees few executions: look their records up by execution. */
  readonly fewExecutions?: boolean;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

const TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * A time bound from a form or a query string: `2026-11-23`, `2026-11-23T09:30` (what a
 * browser's datetime-local field sends), or with seconds, milliseconds and a zone. Without a
 * zone it is UTC. A `to` bound covers the whole unit it names (the day, the minute, the
 * second), so `from=2026-11-23&to=2026-11-23` is that whole day.
 */
export function parseTrailTime(text: string, edge: 'from' | 'to'): Parsed<number> {
  const m = TIME.exec(text.trim());
  const bad: Parsed<number> = { ok: false, message: `"${text.slice(0, 40)}" is not a time: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or ISO 8601 (UTC unless a zone is given)` };
  if (!m) return bad;
  const [, y, mo, d, h, mi, s, ms, zone] = m;
  const base = `${y}-${mo}-${d}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}.${(ms ?? '0').padEnd(3, '0')}${zone ?? 'Z'}`;
  const t = Date.parse(base);
  // Date.parse rolls 2026-02-30 over to March: a calendar date must come back as written.
  if (Number.isNaN(t) || !new Date(Date.parse(`${y}-${mo}-${d}T00:00:00Z`)).toISOString().startsWith(`${y}-${mo}-${d}`) || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59) return bad;
  if (edge === 'from') return { ok: true, value: t };
  const unit = h === undefined ? 86_400_000 : s === undefined ? 60_000 : ms === undefined ? 1000 : 1;
  return { ok: true, value: t + unit - 1 };
}

/** The raw filter values a page or an API call gives (already shape-checked by its schema). */
export interface TrailFilterInput {
  readonly type?: AuditEventType | undefined;
  readonly actor?: string | undefined;
  readonly execution?: string | undefined;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

/** The filter, or the one-line reason it is not one (naming the field). */
export function trailFilter(input: TrailFilterInput): Parsed<TrailFilter> {
  const out: { -readonly [K in keyof TrailFilter]: TrailFilter[K] } = {};
  if (input.type) out.type = input.type;
  if (input.actor) out.actor = input.actor;
  if (input.execution) out.executionId = input.execution;
  let fromMs: number | undefined;
  let toMs: number | undefined;
  if (input.from) {
    const f = parseTrailTime(input.from, 'from');
    if (!f.ok) return { ok: false, message: `from: ${f.message}` };
    fromMs = f.value;
    out.fromIso = new Date(fromMs).toISOString();
  }
  if (input.to) {
    const t = parseTrailTime(input.to, 'to');
    if (!t.ok) return { ok: false, message: `to: ${t.message}` };
    toMs = t.value;
    out.toIso = new Date(toMs).toISOString();
  }
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) return { ok: false, message: `from (${out.fromIso ?? ''}) is after to (${out.toIso ?? ''}): swap them` };
  return { ok: true, value: out };
}

/** Whether any filter is set (a page says "no records match" rather than "no records yet"). */
export function isFiltered(f: TrailFilter): boolean {
  return f.type !== undefined || f.actor !== undefined || f.executionId !== undefined || f.fromIso !== undefined || f.toIso !== undefined;
}

/**
 * One page out of the rows a query returned (it asks for limit + 1, newest first): the first
 * `limit`, and the cursor after the last one shown when there was more.
 */
export function pageOf<T extends { readonly seq: number }>(rows: readonly T[], limit: number): { readonly records: T[]; readonly next: number | null } {
  const records = rows.slice(0, limit);
  const last = records.at(-1);
  return { records, next: rows.length > limit && last ? last.seq : null };
}

/**
 * What an export of a selection holds. A bundle is a stretch of the chain, not a list of hits,
 * so only the selections `handrail audit export` knows apply: one execution's records, or the
 * records from the first to the last in a time range (everything between them included). The
 * type and actor filters narrow what the page shows, not what a bundle holds.
 */
export type ExportPlan =
  | { readonly ok: true; readonly kind: 'execution'; readonly executionId: string }
  | { readonly ok: true; readonly kind: 'range'; readonly fromMs: number | undefined; readonly toMs: number | undefined }
  | { readonly ok: false; readonly status: 'invalid' | 'forbidden'; readonly message: string };

/**
 * `visibleExecution`: whether the reader may see the execution asked for (a limited reader
 * exports only executions they may see; one they may not is "not found" to them, decided by
 * the caller). Time ranges hold every record in them, so they need the whole trail.
 */
export function exportPlan(f: TrailFilter, scope: AuditTrailScope): ExportPlan {
  if (f.executionId !== undefined) {
    if (f.fromIso !== undefined || f.toIso !== undefined) return { ok: false, status: 'invalid', message: 'export either one execution or a time range, not both' };
    return { ok: true, kind: 'execution', executionId: f.executionId };
  }
  if (!scope.all) return { ok: false, status: 'forbidden', message: 'exporting a time range (or the whole log) needs view on the whole audit trail; export one execution you may see instead (execution=ID)' };
  return { ok: true, kind: 'range', fromMs: f.fromIso === undefined ? undefined : Date.parse(f.fromIso), toMs: f.toIso === undefined ? undefined : Date.parse(f.toIso) };
}

/** What an exported bundle held, as `handrail audit export` tracks it while writing. */
export interface ExportedStretch {
  readonly kind: 'execution' | 'range';
  readonly executionId?: string;
  /** First and last record seq written (null: no records). */
  readonly first: number | null;
  readonly last: number | null;
  /** The records run to the head of the log as it was when the export read it. */
  readonly toHead: boolean;
}

/**
 * The flag `handrail audit verify` needs for a bundle (the same rule `handrail audit export`
 * prints it by): `--execution ID`, `--range FROM..TO` (`FROM..` when it runs to the head), or
 * nothing for the whole log.
 */
export function verifyFlag(s: ExportedStretch): string {
  if (s.kind === 'execution') return `--execution ${s.executionId ?? ''}`;
  if (s.first === null || (s.first === 1 && s.toHead)) return '';
  return `--range ${s.first}..${s.toHead ? '' : (s.last ?? s.first)}`;
}

/** The download's file name: says what it holds (only safe characters). */
export function exportFileName(s: ExportedStretch): string {
  const safe = (x: string): string => x.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  if (s.kind === 'execution') return `handrail-audit-${safe(s.executionId ?? '')}.jsonl`;
  if (s.first === null) return 'handrail-audit-empty.jsonl';
  return `handrail-audit-${s.first}-${s.toHead ? 'head' : (s.last ?? s.first)}.jsonl`;
}
