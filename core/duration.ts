/** Durations as written in runbooks, flags and config: "250ms", "30s", "5m", "1h", "1h30m", "2d". */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

export class DurationSyntaxError extends Error {
  constructor(text: string) {
    super(`invalid duration "${text}": use a number and a unit, e.g. 500ms, 30s, 5m, 1h, 1h30m, 2d`);
    this.name = 'DurationSyntaxError';
  }
}

export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '') throw new DurationSyntaxError(text);
  let pos = 0;
  let total = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (!m) throw new DurationSyntaxError(text);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = PART.lastIndex;
  }
  if (!Number.isFinite(total)) throw new DurationSyntaxError(text);
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
