/**
 * The agent's local policy: the host owner's last word, enforced on the agent even for steps
 * the coordinator signed (a compromised coordinator can sign anything). Pure validation and
 * decision; the agent reads the YAML file and passes the parsed value.
 *
 *   allowAdhoc: false          # ad-hoc commands (outside any runbook). Default false.
 *   allowScripts: true         # script steps (and `sh -c …` argv steps). Default true.
 *   runbooks:                  # absent: steps of any runbook may run here
 *     ids: ["diagnostics-*"]   #   runbook id globs
 *     owners: [team-sre]       #   or runbooks owned by these teams
 *   denyCommands: ["rm", "/usr/bin/dd", "mkfs*"]
 *
 * Defaults: an empty or missing file allows the steps of any runbook and no ad-hoc command.
 * Absent `runbooks` means every runbook (the coordinator's policy and signatures already
 * decide which run); a `runbooks` section with neither ids nor owners is refused as
 * ambiguous rather than read as "nothing" or "everything".
 *
 * `denyCommands` is a tripwire, not a sandbox: it matches argv[0] (whole or basename), every
 * later word of a wrapper such as `sudo`, `env` or `timeout`, and a script's interpreter when
 * the agent passes it. The script body and what a program runs itself are not seen; the
 * runbook allowlist and `allowScripts: false` are the controls that hold.
 */
import { globMatch, globProblem } from './glob.js';
import { bool, Issues, mapping, strList } from './document-schema.js';
import type { ValidationIssue } from './validation.js';

export interface LocalPolicy {
  readonly allowAdhoc: boolean;
  readonly allowScripts: boolean;
  /** null: any runbook. */
  readonly runbooks: { readonly ids: readonly string[]; readonly owners: readonly string[] } | null;
  readonly denyCommands: readonly string[];
}

export const DEFAULT_LOCAL_POLICY: LocalPolicy = { allowAdhoc: false, allowScripts: true, runbooks: null, denyCommands: [] };

export interface LocalStep {
  /** '' for an ad-hoc command. */
  readonly runbookId: string;
  readonly runbookOwner: string;
  /** Empty for a script step. */
  readonly argv: readonly string[];
  readonly isScript: boolean;
  /** A script step's interpreter argv, so denyCommands can refuse e.g. python. */
  readonly interpreter?: readonly string[];
}

/** Commands that run another command given as a later argument. */
const WRAPPERS = new Set(['sudo', 'doas', 'env', 'nice', 'ionice', 'nohup', 'timeout', 'stdbuf', 'setsid', 'chrt', 'taskset', 'xargs', 'busybox', 'unbuffer', 'flock', 'time', 'exec', 'command']);
/** Interpreters that take a program inline, and the option letters that do it (`sh -c`, `perl -e`). */
const INLINE: ReadonlyMap<string, string> = new Map([
  ['sh', 'c'], ['bash', 'c'], ['dash', 'c'], ['zsh', 'c'], ['ksh', 'c'], ['ash', 'c'], ['fish', 'c'],
  ['python', 'c'], ['python3', 'c'], ['perl', 'eE'], ['ruby', 'e'], ['node', 'ep'], ['php', 'r'],
]);
const RUNBOOK_ID_CHAR = /^[a-z0-9-]$/;
const OWNER = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function validateLocalPolicy(value: unknown): { policy?: LocalPolicy; issues: ValidationIssue[] } {
  if (value === null || value === undefined) return { policy: DEFAULT_LOCAL_POLICY, issues: [] };
  const issues = new Issues();
  const v = mapping(value, [], issues, ['allowAdhoc', 'allowScripts', 'runbooks', 'denyCommands'], 'the local policy');
  if (!v) return { issues: issues.list };
  const allowAdhoc = bool(v, 'allowAdhoc', [], issues) ?? DEFAULT_LOCAL_POLICY.allowAdhoc;
  const allowScripts = bool(v, 'allowScripts', [], issues) ?? DEFAULT_LOCAL_POLICY.allowScripts;
  let runbooks: LocalPolicy['runbooks'] = null;
  if (v['runbooks'] !== undefined && v['runbooks'] !== null) {
    const r = mapping(v['runbooks'], ['runbooks'], issues, ['ids', 'owners'], 'runbooks');
    if (r) {
      const ids = strList(r, 'ids', ['runbooks'], issues) ?? [];
      ids.forEach((g, i) => {
        const problem = globProblem(g, RUNBOOK_ID_CHAR, 'runbook ids (lower-case letters, digits, -)');
        if (problem) issues.add(['runbooks', 'ids', i], problem);
      });
      const owners = strList(r, 'owners', ['runbooks'], issues, { pattern: OWNER, hint: 'owners are team names such as team-sre' }) ?? [];
      if (ids.length === 0 && owners.length === 0 && r['ids'] === undefined && r['owners'] === undefined) {
        issues.add(['runbooks'], 'give ids or owners, or leave "runbooks" out to allow the steps of every runbook');
      } else if (ids.length === 0 && owners.length === 0) {
        issues.add(['runbooks'], 'ids and owners are both empty, which would refuse every runbook: list some, or leave "runbooks" out to allow every runbook');
      }
      runbooks = { ids, owners };
    }
  }
  const denyCommands = strList(v, 'denyCommands', [], issues) ?? [];
  return issues.list.length > 0 ? { issues: issues.list } : { policy: { allowAdhoc, allowScripts, runbooks, denyCommands }, issues: [] };
}

export function checkLocalPolicy(policy: LocalPolicy, step: LocalStep): { allowed: boolean; reason: string } {
  const adhoc = step.runbookId === '';
  if (adhoc && !policy.allowAdhoc) return { allowed: false, reason: 'ad-hoc commands are not allowed on this host (local policy allowAdhoc: false)' };
  if (!adhoc && policy.runbooks) {
    const byId = policy.runbooks.ids.some((p) => globMatch(p, step.runbookId));
    const byOwner = policy.runbooks.owners.includes(step.runbookOwner);
    if (!byId && !byOwner) {
      return { allowed: false, reason: `runbook ${step.runbookId} (owner ${step.runbookOwner || 'none'}) is not among the runbooks this host's local policy allows` };
    }
  }
  if (!policy.allowScripts) {
    if (step.isScript) return { allowed: false, reason: 'script steps are not allowed on this host (local policy allowScripts: false)' };
    const inline = inlineProgram(step.argv);
    if (inline) return { allowed: false, reason: `${inline} runs a program given inline, a script by another name, and scripts are not allowed on this host (local policy allowScripts: false)` };
  }
  const command = deniedCommand(policy.denyCommands, step.isScript ? (step.interpreter ?? []) : step.argv);
  if (command) return { allowed: false, reason: `command ${command.word} is denied on this host by its local policy (denyCommands: ${command.pattern})` };
  return { allowed: true, reason: adhoc ? 'ad-hoc commands are allowed on this host' : `runbook ${step.runbookId} is allowed on this host` };
}

function basename(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}

/** The words of argv that may name the command that runs: argv[0], and after a wrapper every plain word. */
function commandWords(argv: readonly string[]): string[] {
  const first = argv[0];
  if (first === undefined) return [];
  if (!WRAPPERS.has(basename(first))) return [first];
  // `sudo -u root rm …`: option values look like commands too; checking them can only refuse more.
  return [first, ...argv.slice(1).filter((w) => !w.startsWith('-') && !w.includes('='))];
}

function deniedCommand(patterns: readonly string[], argv: readonly string[]): { word: string; pattern: string } | undefined {
  if (patterns.length === 0) return undefined;
  for (const word of commandWords(argv)) {
    const pattern = patterns.find((p) => globMatch(p, word) || globMatch(p, basename(word)));
    if (pattern !== undefined) return { word, pattern };
  }
  return undefined;
}

/** `sh -c …`, `bash -ec …`, `python3 -c …`, `node --eval …`: the interpreter and its option. */
function inlineProgram(argv: readonly string[]): string | undefined {
  for (const word of commandWords(argv)) {
    const name = basename(word).replace(/^(python)3\.\d+$/, '$1');
    const letters = INLINE.get(name);
    if (letters === undefined) continue;
    const flag = argv.find((a) => a === '--eval' || a === '--print' || (/^-[A-Za-z]+$/.test(a) && [...letters].some((l) => a.includes(l))));
    if (flag !== undefined) return `${basename(word)} ${flag}`;
  }
  return undefined;
}
