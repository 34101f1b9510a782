/**
 * Whether every agent a selector matches is also matched by another selector, decided from the
 * selectors alone (no agent list). Conservative: true only when provable.
 */
import type { Requirement, Selector } from './selector.js';

function reqImplies(a: Requirement, b: Requirement): boolean {
  if (a.key !== b.key) return false;
  const av = a.values;
  const bv = b.values;
  switch (b.op) {
    case 'eq':
      return (a.op === 'eq' && av[0] === bv[0]) || (a.op === 'in' && av.length === 1 && av[0] === bv[0]);
    case 'in':
      return (a.op === 'eq' && bv.includes(av[0] as string)) || (a.op === 'in' && av.every((v) => bv.includes(v)));
    case 'exists':
      return a.op === 'eq' || a.op === 'in' || a.op === 'exists';
    case 'notexists':
      return a.op === 'notexists';
    case 'neq':
      return (
        (a.op === 'eq' && av[0] !== bv[0]) ||
        (a.op === 'in' && !av.includes(bv[0] as string)) ||
        a.op === 'notexists' ||
        (a.op === 'notin' && av.includes(bv[0] as string)) ||
        (a.op === 'neq' && av[0] === bv[0])
      );
    case 'notin':
      return (
        (a.op === 'eq' && !bv.includes(av[0] as string)) ||
        (a.op === 'in' && av.every((v) => !bv.includes(v))) ||
        a.op === 'notexists' ||
        (a.op === 'notin' && bv.every((v) => av.includes(v))) ||
        (a.op === 'neq' && bv.length === 1 && bv[0] === av[0])
      );
  }
}

/** True when `a` provably selects a subset of what `b` selects. */
export function selectorImplies(a: Selector, b: Selector): boolean {
  return b.requirements.every((rb) => a.requirements.some((ra) => reqImplies(ra, rb)));
}
