/** `exec --agent NAME|ID --targets SELECTOR`: which agent ids a command line means. */
import { describe, expect, it } from 'vitest';
import { agentsMatching, resolveAgents, type FleetAgent } from '../../cli/agent-targets.js';
import { UsageError } from '../../cli/options.js';

const fleet: FleetAgent[] = [
  { id: 'agt-1', name: 'web-1', labels: { role: 'web', zone: 'a' }, status: 'online' },
  { id: 'agt-2', name: 'web-2', labels: { role: 'web', zone: 'b' }, status: 'offline' },
  { id: 'agt-3', name: 'db-1', labels: { role: 'db', zone: 'a' }, status: 'online' },
  { id: 'agt-4', name: 'web-3', labels: { role: 'web', zone: 'a' }, status: 'revoked' },
  { id: 'agt-5', name: 'twin', labels: {}, status: 'online' },
  { id: 'agt-6', name: 'twin', labels: {}, status: 'online' },
];

const resolve = (refs: string[], sel?: string): string[] | string => {
  try {
    return resolveAgents(fleet, refs, sel);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
};

describe('resolveAgents', () => {
  it.each([
    [['web-1'], undefined, ['agt-1']],
    [['agt-2'], undefined, ['agt-2']],
    [['db-1', 'web-1', 'agt-1'], undefined, ['agt-1', 'agt-3']],
    [[], 'role=web', ['agt-1', 'agt-2']], // the revoked web-3 is not targeted
    [[], 'role=web,zone=a', ['agt-1']],
    [[], 'name=db-1', ['agt-3']],
    [['db-1'], 'zone=b', ['agt-2', 'agt-3']],
    [['agt-6'], undefined, ['agt-6']],
    [['web-9'], undefined, '--agent web-9: no agent has that id or name; did you mean "web-1" or "web-2"?'],
    [['zzzzzz'], undefined, '--agent zzzzzz: no agent has that id or name'],
    [['twin'], undefined, '--agent twin: 2 agents have that name (agt-5, agt-6)'],
    [['web-3'], undefined, '--agent web-3: agent agt-4 is revoked'],
    [[], 'role=cache', '--targets "role=cache" matches no enrolled agent'],
    [[], 'role=', expect.stringMatching(/^--targets "role=": .* at column \d+$/)],
  ])('%j %j -> %j', (refs, sel, expected) => {
    expect(resolve(refs, sel)).toEqual(expected);
  });
});

describe('agentsMatching', () => {
  it('matches labels, name and id, never revoked agents', () => {
    expect(agentsMatching(fleet, 'zone=a').map((a) => a.name)).toEqual(['web-1', 'db-1']);
    expect(agentsMatching(fleet, 'id in (agt-2,agt-4)').map((a) => a.name)).toEqual(['web-2']);
  });
});
