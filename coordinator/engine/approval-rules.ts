/** Who may approve what (pure): the two-person rule and the runbook's `from` subjects. */
import { REFUSAL_RULES } from '../audit/events.js';

type RefusalRule = (typeof REFUSAL_RULES)[keyof typeof REFUSAL_RULES];

export interface Approver {
  readonly name: string;
  readonly groups: readonly string[];
}

export function subjectMatches(subject: string, user: Approver): boolean {
  if (subject === '*') return true;
  if (subject.startsWith('user:')) return subject.slice(5) === user.name;
  if (subject.startsWith('group:')) return user.groups.includes(subject.slice(6));
  return false;
}

export function checkApprover(input: {
  readonly approver: Approver;
  readonly requester: string;
  readonly from: readonly string[];
  readonly alreadyDecided: readonly string[];
}): { ok: true } | { ok: false; rule: RefusalRule; reason: string } {
  const { approver, requester, from, alreadyDecided } = input;
  if (approver.name === requester) return { ok: false, rule: REFUSAL_RULES.twoPersonRule, reason: 'two-person rule: the requester cannot approve their own execution' };
  if (alreadyDecided.includes(approver.name)) return { ok: false, rule: REFUSAL_RULES.alreadyDecided, reason: `${approver.name} has already decided on this approval` };
  if (from.length > 0 && !from.some((s) => subjectMatches(s, approver))) {
    return { ok: false, rule: REFUSAL_RULES.notAnApprover, reason: `${approver.name} is not one of the approvers (${from.join(', ')})` };
  }
  return { ok: true };
}
