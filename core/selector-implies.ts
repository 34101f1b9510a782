/**
 * Relations between selectors decided from the selectors alone, with no agent list: whether
 * every agent one selects is also selected by another (a run's targets inside a policy rule's),
 * and whether two selectors can select a common agent at all (a deny rule's targets).
 *
 * Each key's requirements are folded into one constraint: may the label be absent, and which
 * values may it have (a finite set, or anything but an excluded set). Label values are an
 * unbounded set of strings and keys are independent, so on this selector language the answers
 * are exact; where a caller needs to be conservative it is told "not implied" / "may overlap"
 * only when that is true.
 */
import type { Requirement, Selector } from './selector.js';

/** What one key may look like on an agent that satisfies some requirements. */
interface KeyConstraint {
  absentOk: boolean;
  /** Present values allowed: exactly these (`only`), or anything except these (`except`). */
  only: Set<string> | null;
  except: Set<string>;
}

function unconstrained(): KeyConstraint {
  return { absentOk: true, only: null, except: new Set() };
}

function restrictTo(c: KeyConstraint, values: readonly string[]): void {
  const next = new Set(values.filter((v) => !c.except.has(v) && (c.only === null || c.only.has(v))));
  c.only = next;
  c.except = new Set();
}

function exclude(c: KeyConstraint, values: readonly string[]): void {
  if (c.only !== null) for (const v of values) c.only.delete(v);
  else for (const v of values) c.except.add(v);
}

function apply(c: KeyConstraint, r: Requirement): void {
  switch (r.op) {
    case 'eq':
    case 'in':
      c.absentOk = false;
      restrictTo(c, r.values);
      return;
    case 'neq':
    case 'notin':
      exclude(c, r.values);
      return;
    case 'exists':
      c.absentOk = false;
      return;
    case 'notexists':
      c.only = new Set();
      c.except = new Set();
      return;
  }
}

function constraints(requirements: readonly Requirement[]): Map<string, KeyConstraint> {
  const out = new Map<string, KeyConstraint>();
  for (const r of requirements) {
    let c = out.get(r.key);
    if (!c) out.set(r.key, (c = unconstrained()));
    apply(c, r);
  }
  return out;
}

function empty(c: KeyConstraint): boolean {
  return !c.absentOk && c.only !== null && c.only.size === 0;
}

/** Whether every state the constraint allows satisfies `b`. */
function entails(c: KeyConstraint, b: Requirement): boolean {
  if (empty(c)) return true;
  switch (b.op) {
    case 'eq':
    case 'in':
      return !c.absentOk && c.only !== null && [...c.only].every((v) => b.values.includes(v));
    case 'exists':
      return !c.absentOk;
    case 'notexists':
      return c.only !== null && c.only.size === 0;
    case 'neq':
    case 'notin':
      return c.only !== null ? b.values.every((v) => !(c.only as Set<string>).has(v)) : b.values.every((v) => c.except.has(v));
  }
}

/** Whether any agent at all can match (`role=web,role=db` cannot). */
export function selectorSatisfiable(s: Selector): boolean {
  for (const c of constraints(s.requirements).values()) if (empty(c)) return false;
  return true;
}

/** The requirements of `b` that `a` does not imply (empty when `a` selects a subset of `b`). */
export function unimpliedRequirements(a: Selector, b: Selector): Requirement[] {
  const ca = constraints(a.requirements);
  for (const c of ca.values()) if (empty(c)) return []; // selects nothing: inside anything
  return b.requirements.filter((rb) => !entails(ca.get(rb.key) ?? unconstrained(), rb));
}

/** True when every agent `a` selects is also selected by `b`. */
export function selectorImplies(a: Selector, b: Selector): boolean {
  return unimpliedRequirements(a, b).length === 0;
}

/** True when no agent can match both selectors. */
export function selectorsDisjoint(a: Selector, b: Selector): boolean {
  return !selectorSatisfiable({ requirements: [...a.requirements, ...b.requirements] });
}
