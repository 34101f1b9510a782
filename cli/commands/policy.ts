/**
 * `handrail policy explain --user U --runbook R [--targets SEL] [--action run]`: the decision
 * the policies in the runbooks dir make, the rule that made it and every rule considered —
 * before anyone runs anything. Reads the data dir for the user's groups and the fleet.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ACTIONS, decide, explain, explainJson, type PolicyAction, type TargetAgent } from '../../coordinator/policy/policy.js';
import { hostLabels } from '../../coordinator/engine/engine.js';
import { EVERYTHING, intersect, matches, parseSelector, SelectorSyntaxError, formatSelector } from '../../core/selector.js';
import type { CliIo } from '../io.js';
import { bool, list, required, str, UsageError, type CommandSpec, type ParsedCommand } from '../options.js';
import { DATA_DIR, JSON_OUTPUT, RUNBOOKS_DIR } from '../settings.js';
// Heavier modules (node-forge, SQLite, YAML, codecs) load with `await import` in the functions
// that use them, not with this module: `handrail --help` loads every command's module.

export const policyExplain: CommandSpec = {
  name: 'policy explain',
  usage: 'policy explain --user NAME --runbook ID [--targets SELECTOR] [--action run]',
  summary: 'Explain what the policy decides for a user, a runbook and targets, and why, before anyone runs anything.',
  options: {
    user: { type: 'string', placeholder: 'NAME', description: 'the user (groups come from the user store, or --group)' },
    group: { type: 'string', multiple: true, placeholder: 'GROUP', description: 'groups to assume instead of the user store\'s' },
    runbook: { type: 'string', placeholder: 'ID', description: 'the runbook' },
    targets: { type: 'string', placeholder: 'SELECTOR', description: 'narrow the runbook\'s targets' },
    action: { type: 'string', default: 'run', placeholder: 'ACTION', choices: ACTIONS, description: 'the action to decide' },
    'runbooks-dir': RUNBOOKS_DIR,
    'data-dir': DATA_DIR,
    json: JSON_OUTPUT,
  },
};

export async function runPolicyExplain(p: ParsedCommand, io: CliIo): Promise<number> {
  const { loadDirectory, formatProblem } = await import('../../coordinator/runbooks/catalog.js');
  const { openDataDir, STORE_FILE } = await import('../../coordinator/data-dir.js');
  const user = required(p.values, 'user', policyExplain);
  const action = str(p.values, 'action') as PolicyAction;
  const dir = str(p.values, 'runbooks-dir') as string;
  const contents = await loadDirectory(dir);
  for (const prob of contents.problems) io.err(`warning: ${formatProblem(prob)}\n`);
  const runbookId = str(p.values, 'runbook');
  const loaded = runbookId ? contents.runbooks.get(runbookId) : undefined;
  if (runbookId && !loaded) throw new UsageError(`no runbook "${runbookId}" in ${dir}`);
  let groups = list(p.values, 'group');
  let agents: TargetAgent[] | undefined;
  const dataDir = str(p.values, 'data-dir') as string;
  const haveStore = await access(join(dataDir, STORE_FILE)).then(() => true, () => false);
  if (haveStore) {
    const data = await openDataDir(dataDir, io.now);
    try {
      if (groups.length === 0) {
        const u = await data.users.get(user);
        if (!u) throw new UsageError(`no user ${user} in ${dataDir} (pass --group to assume groups)`);
        groups = [...u.groups];
      }
      agents = (await data.registry.list()).filter((a) => a.revokedAt === null).map((a) => ({ id: a.id, name: a.name, labels: hostLabels(a) }));
    } finally {
      await data.close();
    }
  }
  let narrowed = EVERYTHING;
  const t = str(p.values, 'targets');
  if (t) {
    try {
      narrowed = parseSelector(t);
    } catch (e) {
      if (e instanceof SelectorSyntaxError) throw new UsageError(`--targets: ${e.message} at column ${e.column}`);
      throw e;
    }
  }
  const selector = loaded ? intersect(loaded.runbook.spec.selector, narrowed) : narrowed;
  const req = {
    subject: { user, groups },
    action,
    ...(loaded ? { runbook: { id: loaded.runbook.metadata.id, tags: loaded.runbook.metadata.tags, owner: loaded.runbook.metadata.owner } } : {}),
    ...(loaded && (action === 'run' || action === 'cancel') ? { targets: { selector, ...(agents ? { agents: agents.filter((a) => matches(selector, a.labels)) } : {}) } } : {}),
  };
  const d = decide([...contents.policies.values()].map((x) => x.policy), req);
  if (bool(p.values, 'json')) io.out(JSON.stringify({ ...explainJson(d, req), targets: formatSelector(selector) }) + '\n');
  else for (const l of explain(d, req)) io.out(l + '\n');
  return d.allowed ? 0 : 1;
}
