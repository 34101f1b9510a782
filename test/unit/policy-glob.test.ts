import { describe, expect, it } from 'vitest';
import { globMatch, globProblem, isGlob } from '../../core/glob.js';

describe('name globs', () => {
  it.each<[string, string, boolean]>([
    ['restart-web', 'restart-web', true],
    ['restart-web', 'restart-webx', false],
    ['restart-*', 'restart-web', true],
    ['restart-*', 'restart-', true],
    ['restart-*', 'restart', false],
    ['*', '', true],
    ['*', 'anything', true],
    ['*-web', 'restart-web', true],
    ['*-web', 'restart-web-2', false],
    ['r*t*b', 'restart-web', true],
    ['r*t*b', 'restart-wex', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['a?c', 'abbc', false],
    ['**', 'x', true],
    ['*a*a*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
    ['a.c', 'abc', false],
    ['a+c', 'aac', false],
    ['', '', true],
    ['', 'a', false],
  ])('%s matches %s: %s', (pattern, text, r) => {
    expect(globMatch(pattern, text)).toBe(r);
  });

  it('tells a glob from a name', () => {
    expect([isGlob('restart-*'), isGlob('a?'), isGlob('restart-web')]).toEqual([true, true, false]);
  });

  it.each<[string, string | undefined]>([
    ['restart-*', undefined],
    ['*', undefined],
    ['Restart', '"Restart" can never match: ids have no "R"'],
    ['restart_web', '"restart_web" can never match: ids have no "_"'],
    ['restart-{a,b}', '"restart-{a,b}": only * and ? are wildcards here (no [..] or {..})'],
    ['', 'an empty pattern matches nothing'],
  ])('problem with %j: %s', (pattern, problem) => {
    expect(globProblem(pattern, /^[a-z0-9-]$/, 'ids')).toBe(problem);
  });
});
