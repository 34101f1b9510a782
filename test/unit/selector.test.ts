import { describe, expect, it } from 'vitest';
import { formatSelector, intersect, matches, parseSelector, SelectorSyntaxError } from '../../core/selector.js';

describe('label selectors', () => {
  const web = { role: 'web', env: 'prod', zone: 'a' };
  const canary = { role: 'web', env: 'staging', canary: 'true' };
  const db = { role: 'db', env: 'prod' };

  it.each([
    ['', [true, true, true]],
    ['*', [true, true, true]],
    ['role=web', [true, true, false]],
    ['role==web', [true, true, false]],
    ['role!=web', [false, false, true]],
    ['env in (prod,staging)', [true, true, true]],
    ['env in (staging)', [false, true, false]],
    ['env notin (prod)', [false, true, false]],
    ['canary', [false, true, false]],
    ['!canary', [true, false, true]],
    ['role=web,env in (prod,staging),!canary', [true, false, false]],
    ['zone!=b', [true, true, true]],
    ['  role = web ,  !canary ', [true, false, false]],
  ] as const)('%j matches web/canary/db as %j', (text, expected) => {
    const s = parseSelector(text);
    expect([matches(s, web), matches(s, canary), matches(s, db)]).toEqual(expected);
  });

  it.each([
    ['role=', 6, /expected a value at end/],
    ['role=web,', 10, /expected a label key at end/],
    ['env in prod', 8, /expected "\("/],
    ['env in (prod', 13, /expected "\)"|expected ","/],
    ['role=web;rm', 9, /expected ","/],
    ['role web', 6, /unexpected "web"/],
    ['=web', 1, /expected a label key/],
    ['role=$(id)', 6, /expected a value/],
  ] as const)('rejects %j with the column', (text, column, message) => {
    try {
      parseSelector(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SelectorSyntaxError);
      expect((e as SelectorSyntaxError).column).toBe(column);
      expect((e as Error).message).toMatch(message);
    }
  });

  it('narrowing by intersection never widens', () => {
    const runbook = parseSelector('role=web');
    const run = parseSelector('env=prod');
    const both = intersect(runbook, run);
    for (const labels of [web, canary, db]) {
      if (matches(both, labels)) expect(matches(runbook, labels)).toBe(true);
    }
    expect(matches(both, db)).toBe(false);
  });

  it('formats canonically and round-trips', () => {
    const s = parseSelector(' env in ( prod , staging ),!canary,role==web');
    expect(formatSelector(s)).toBe('env in (prod,staging),!canary,role=web');
    expect(formatSelector(parseSelector(formatSelector(s)))).toBe(formatSelector(s));
  });
});
