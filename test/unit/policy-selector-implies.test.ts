import { describe, expect, it } from 'vitest';
import { matches, parseSelector, type Labels, type Requirement, type RequirementOp, type Selector } from '../../core/selector.js';
import { selectorImplies, selectorSatisfiable, selectorsDisjoint, unimpliedRequirements } from '../../core/selector-implies.js';

const implies = (a: string, b: string): boolean => selectorImplies(parseSelector(a), parseSelector(b));

describe('selector implication: does every agent A selects also match B?', () => {
  it.each<[string, string, boolean]>([
    // eq implies eq, in-containing, exists, neq-other, notin-excluding
    ['role=web', 'role=web', true],
    ['role=web', 'role==web', true],
    ['role=web', 'role in (web,api)', true],
    ['role=web', 'role', true],
    ['role=web', 'role!=db', true],
    ['role=web', 'role notin (db,cache)', true],
    ['role=web', 'role=db', false],
    ['role=web', 'role in (db,api)', false],
    ['role=web', 'role!=web', false],
    ['role=web', 'role notin (web,db)', false],
    ['role=web', '!role', false],
    // in ⊆ in
    ['role in (web)', 'role=web', true],
    ['role in (web,api)', 'role in (web,api,db)', true],
    ['role in (web,db)', 'role=web', false],
    ['role in (web,db)', 'role in (web,api)', false],
    ['role in (web,api)', 'role', true],
    ['role in (web,api)', 'role!=db', true],
    ['role in (web,api)', 'role notin (db,cache)', true],
    ['role in (web,api)', 'role notin (api)', false],
    // exists says nothing about the value
    ['role', 'role', true],
    ['role', 'role=web', false],
    ['role', 'role!=web', false],
    ['role', '!role', false],
    // notexists implies notexists, neq, notin
    ['!canary', '!canary', true],
    ['!canary', 'canary!=true', true],
    ['!canary', 'canary notin (true,yes)', true],
    ['!canary', 'canary', false],
    ['!canary', 'canary=false', false],
    ['canary', '!canary', false],
    // neq / notin (which also match agents without the label)
    ['role!=db', 'role!=db', true],
    ['role!=db', 'role notin (db)', true],
    ['role!=db', 'role notin (db,cache)', false],
    ['role!=db', 'role', false],
    ['role notin (db,cache)', 'role!=db', true],
    ['role notin (db,cache)', 'role notin (cache)', true],
    ['role notin (db)', 'role notin (db,cache)', false],
    // several requirements of A together
    ['role in (web,db),role!=db', 'role=web', true],
    ['role,role notin (db)', 'role!=db', true],
    ['role in (web,db),role notin (web,db)', 'anything=at-all', true], // selects no agent
    ['role=web,role=db', 'zone=a', true], // selects no agent
    // other keys and narrowing
    ['role=web,zone=a', 'role=web', true],
    ['role=web', 'role=web,zone=a', false],
    ['zone=a', 'role=web', false],
    ['zone=a', '!canary', false],
    ['role=web,zone=a,!canary', 'role=web,canary!=true', true],
    // everything
    ['*', 'role=web', false],
    ['*', '*', true],
    ['', '*', true],
    ['role=web', '*', true],
    ['*', 'role!=db', false],
  ])('%s ⊆ %s is %s', (a, b, r) => {
    expect(implies(a, b)).toBe(r);
  });

  it('names the requirements of B that A does not imply', () => {
    const missing = unimpliedRequirements(parseSelector('zone=a,role in (web,db)'), parseSelector('role=web,zone,!canary'));
    expect(missing.map((r) => `${r.key} ${r.op}`)).toEqual(['role eq', 'canary notexists']);
  });
});

describe('selector overlap: can one agent match both?', () => {
  it.each<[string, string, boolean]>([
    ['role=web', 'role=db', true],
    ['role=web', 'role=web', false],
    ['role=web', 'role in (db,web)', false],
    ['role in (web,api)', 'role in (db,cache)', true],
    ['role=web', 'role!=web', true],
    ['role=web', 'role notin (web,db)', true],
    ['role=web', 'role!=db', false],
    ['role=web', '!role', true],
    ['role', '!role', true],
    ['role!=web', '!role', false], // an agent without the label matches both
    ['role notin (web)', 'role notin (db)', false],
    ['zone=a', 'canary', false],
    ['*', 'canary', false],
    ['role in (web,db),role!=web', 'role=web', true],
  ])('%s and %s disjoint: %s', (a, b, r) => {
    expect(selectorsDisjoint(parseSelector(a), parseSelector(b))).toBe(r);
    expect(selectorsDisjoint(parseSelector(b), parseSelector(a))).toBe(r);
  });

  it.each<[string, boolean]>([
    ['*', true],
    ['role=web,zone=a', true],
    ['role=web,role=db', false],
    ['role=web,!role', false],
    ['role in (a,b),role notin (a,b)', false],
    ['role in (a,b),role notin (a)', true],
    ['role!=a,role!=b,role', true],
  ])('%s is satisfiable: %s', (s, r) => {
    expect(selectorSatisfiable(parseSelector(s))).toBe(r);
  });
});

describe('implication and overlap agree with brute force over every labelling', () => {
  // Keys are independent and values unbounded, so the values the selectors mention plus one
  // fresh value (and absence) are every case there is: the checks must be exact, not just sound.
  const KEYS = ['a', 'b'];
  const VALUES = ['x', 'y', 'z'];
  const STATES = [undefined, ...VALUES, 'fresh'];
  const labellings: Labels[] = [];
  for (const s1 of STATES) for (const s2 of STATES) labellings.push({ ...(s1 ? { a: s1 } : {}), ...(s2 ? { b: s2 } : {}) });

  let seed = 0x5eed;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const OPS: RequirementOp[] = ['eq', 'neq', 'in', 'notin', 'exists', 'notexists'];
  const requirement = (): Requirement => {
    const op = OPS[rand(OPS.length)] as RequirementOp;
    const key = KEYS[rand(KEYS.length)] as string;
    const n = op === 'eq' || op === 'neq' ? 1 : op === 'in' || op === 'notin' ? 1 + rand(3) : 0;
    const values = [...new Set(Array.from({ length: n }, () => VALUES[rand(VALUES.length)] as string))];
    return { key, op, values };
  };
  const selector = (): Selector => ({ requirements: Array.from({ length: rand(4) }, requirement) });

  it('on 4000 random pairs', () => {
    for (let i = 0; i < 4000; i++) {
      const a = selector();
      const b = selector();
      const inA = labellings.filter((l) => matches(a, l));
      expect(selectorImplies(a, b), JSON.stringify([a, b])).toBe(inA.every((l) => matches(b, l)));
      expect(selectorsDisjoint(a, b), JSON.stringify([a, b])).toBe(!inA.some((l) => matches(b, l)));
      expect(selectorSatisfiable(a)).toBe(inA.length > 0);
    }
  });
});
