/**
 * "Did you mean …" for the command line: the known words nearest to what was typed, by edit
 * distance (insertions, deletions, substitutions and swaps of two neighbours each cost 1).
 * Pure; table-tested in test/unit/cli-suggest.test.ts.
 */

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("exectuions"). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] as number;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}

/** How far a word may be from a candidate and still be a typo of it: more for longer words. */
export function typoBudget(word: string): number {
  if (word.length <= 3) return 1;
  if (word.length <= 6) return 2;
  return 3;
}

/**
 * The candidates nearest to `word` (case-insensitive) if they are close enough to be what was
 * meant: those at the smallest distance, alphabetically, at most `limit`. Empty when nothing
 * is close.
 */
export function suggest(word: string, candidates: readonly string[], limit = 3): string[] {
  const w = word.toLowerCase();
  const budget = typoBudget(w);
  const close = [...new Set(candidates)]
    .map((c) => ({ c, d: editDistance(w, c.toLowerCase()) }))
    .filter((x) => x.d <= budget && x.d < Math.max(w.length, x.c.length));
  const best = Math.min(...close.map((x) => x.d));
  return close
    .filter((x) => x.d === best)
    .sort((x, y) => x.c.localeCompare(y.c))
    .slice(0, limit)
    .map((x) => x.c);
}
