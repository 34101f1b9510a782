/**
 * Which agents a command line means: `--agent` by id or name, `--targets` by label selector,
 * resolved against the fleet as `GET /api/v1/agents` lists it. Pure; table-tested in
 * test/unit/cli-agent-targets.test.ts.
 */
import { matches, parseSelector, SelectorSyntaxError } from '../core/selector.js';
import type { AgentView } from '../web/api/agents.js';
import { UsageError } from './options.js';
import { suggest } from './suggest.js';

export type FleetAgent = Pick<AgentView, 'id' | 'name' | 'labels' | 'status'>;

/** Labels a selector sees: the agent's own plus its name and id (as the engine matches them). */
export function selectorLabels(a: FleetAgent): Record<string, string> {
  return { ...a.labels, name: a.name, id: a.id };
}

/** Agents (not revoked) that a selector matches; a bad selector is a usage error naming the flag. */
export function agentsMatching(fleet: readonly FleetAgent[], selectorText: string, flag = '--targets'): FleetAgent[] {
  let selector;
  try {
    selector = parseSelector(selectorText);
  } catch (e) {
    if (e instanceof SelectorSyntaxError) throw new UsageError(`${flag} "${selectorText}": ${e.message} at column ${e.column}`, 'a selector looks like role=web,zone in (a,b),!canary');
    throw e;
  }
  return fleet.filter((a) => a.status !== 'revoked' && matches(selector, selectorLabels(a)));
}

/**
 * The agent ids for `--agent` values (an id or a name each) and an optional selector, in fleet
 * order, without duplicates. Unknown or ambiguous names and a selector that matches nothing
 * are usage errors that say what exists.
 */
export function resolveAgents(fleet: readonly FleetAgent[], refs: readonly string[], selectorText: string | undefined): string[] {
  const live = fleet.filter((a) => a.status !== 'revoked');
  const chosen = new Set<string>();
  for (const ref of refs) {
    const byId = live.find((a) => a.id === ref);
    if (byId) {
      chosen.add(byId.id);
      continue;
    }
    const byName = live.filter((a) => a.name === ref);
    if (byName.length === 1) {
      chosen.add((byName[0] as FleetAgent).id);
      continue;
    }
    if (byName.length > 1) {
      throw new UsageError(`--agent ${ref}: ${byName.length} agents have that name (${byName.map((a) => a.id).join(', ')})`, 'name one by its id');
    }
    const revoked = fleet.find((a) => a.status === 'revoked' && (a.id === ref || a.name === ref));
    if (revoked) throw new UsageError(`--agent ${ref}: agent ${revoked.id} is revoked`);
    const near = suggest(ref, live.map((a) => a.name));
    throw new UsageError(
      `--agent ${ref}: no agent has that id or name${near.length ? `; did you mean ${near.map((n) => `"${n}"`).join(' or ')}?` : ''}`,
      'see `handrail agents ls` (on the coordinator host) for ids and names',
    );
  }
  if (selectorText !== undefined && selectorText.trim() !== '') {
    const hit = agentsMatching(fleet, selectorText);
    if (hit.length === 0) throw new UsageError(`--targets "${selectorText}" matches no enrolled agent`, 'selectors see each agent\'s labels plus name and id, e.g. name=web-1 or role=web');
    for (const a of hit) chosen.add(a.id);
  }
  return live.filter((a) => chosen.has(a.id)).map((a) => a.id);
}
