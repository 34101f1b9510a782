/**
 * The pure parts of bench/vs-ssh (the race itself runs by hand as root, never in this suite):
 * the table's medians and ratios, and how a CPU profile's script URLs are grouped.
 */
import { describe, expect, it } from 'vitest';
import { markdownTable, rows, targetLines, type Sample } from '../../bench/vs-ssh/report.js';
import { median } from '../../bench/proc-stats.js';
import { selfTimeBySource, sourceOf } from '../../bench/vs-ssh/cpu-profile-summary.js';

const tools = [
  { id: 'handrail', label: 'handrail run' },
  { id: 'pdsh', label: 'pdsh' },
  { id: 'ansible-command', label: 'ansible -m command' },
];

const s = (tool: string, n: number, wallMs: number, cpuMs = wallMs / 2): Sample => ({ tool, n, wallMs, cpuMs });

describe('vs-ssh report', () => {
  it.each([
    { xs: [3, 1, 2], want: 2 },
    { xs: [4, 1, 3, 2], want: 2.5 },
    { xs: [7], want: 7 },
  ])('median of $xs is $want', ({ xs, want }) => {
    expect(median(xs)).toBe(want);
  });

  it('gives each tool its median, min and max per N and its ratio to Handrail at the same N', () => {
    const samples = [s('handrail', 10, 100), s('handrail', 10, 300), s('handrail', 10, 200), s('pdsh', 10, 1000), s('pdsh', 10, 3000), s('pdsh', 10, 2000), s('handrail', 100, 500), s('ansible-command', 100, 60_000)];
    const r = rows(samples, tools);
    expect(r.map((x) => [x.tool, x.n])).toEqual([
      ['handrail', 10],
      ['pdsh', 10],
      ['handrail', 100],
      ['ansible-command', 100],
    ]);
    expect(r[1]).toMatchObject({ rounds: 3, wall: { median: 2000, min: 1000, max: 3000 }, slowerThanHandrail: 10, cpuOverHandrail: 10 });
    expect(r[0]?.slowerThanHandrail).toBeNull();
    expect(r[3]?.slowerThanHandrail).toBe(120);
    expect(markdownTable(r).split('\n')).toHaveLength(2 + 4);
  });

  it('checks the targets at the largest N only: ≥ 20× pdsh, ≥ 100× ansible -m command', () => {
    const r = rows([s('handrail', 10, 1), s('pdsh', 10, 1000), s('handrail', 100, 500), s('pdsh', 100, 5000), s('ansible-command', 100, 60_000)], tools);
    expect(targetLines(r)).toEqual([
      'N=100: Handrail 10× faster than pdsh (target ≥ 20×: NOT met)',
      'N=100: Handrail 120× faster than ansible -m command (target ≥ 100×: met)',
    ]);
  });
});

describe('vs-ssh CPU profile summary', () => {
  it.each([
    { url: 'file:///w/node_modules/zod/v4/core/schemas.js', fn: 'x', want: 'zod' },
    { url: 'file:///w/node_modules/@hono/node-server/dist/index.mjs', fn: 'x', want: '@hono/node-server' },
    { url: 'file:///w/dist/cli/options.js', fn: 'x', want: 'dist/cli' },
    { url: 'node:internal/modules/esm/loader', fn: 'x', want: 'node:internal/modules' },
    { url: 'node:fs', fn: 'x', want: 'node:fs' },
    { url: '', fn: '(garbage collector)', want: '(garbage collector)' },
    { url: '', fn: 'compileFunction', want: '(native)' },
  ])('counts $url as $want', ({ url, fn, want }) => {
    expect(sourceOf(url, fn)).toBe(want);
  });

  it('adds up self time per source from the samples and their time deltas', () => {
    const nodes = [
      { id: 1, callFrame: { functionName: '(root)', url: '' } },
      { id: 2, callFrame: { functionName: 'parse', url: 'file:///w/node_modules/zod/index.js' } },
      { id: 3, callFrame: { functionName: '(idle)', url: '' } },
    ];
    const p = { nodes, samples: [2, 3, 2, 3, 3], timeDeltas: [1000, 2000, 3000, 1000, 1000], startTime: 0, endTime: 10_000 };
    expect(selfTimeBySource(p)).toEqual({
      spanMs: 10,
      rows: [
        { source: 'zod', ms: 4 },
        { source: '(idle)', ms: 4 },
      ],
    });
  });
});
