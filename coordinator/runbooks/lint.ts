/**
 * `handrail runbooks lint DIR`: every problem the loader would report (YAML syntax, schema,
 * unknown fields, duplicate ids, templates, selectors, durations, policies), as sorted
 * `file:line:col message` lines, so a runbook repository can gate merges on an empty list.
 */
import type { Policy } from '../policy/policy.js';
import { formatProblem, loadDirectory, sortProblems, type LoaderOptions, type Problem } from './loader.js';
import { STANDARD_LOADER_OPTIONS } from './standard-validators.js';

export interface LintResult {
  /** `file:line:col message`, sorted by file, line and column. */
  readonly lines: string[];
  readonly problems: Problem[];
  readonly runbooks: number;
  readonly policies: number;
  readonly files: number;
}

export async function lintDirectory(dir: string, options: LoaderOptions<Policy> = STANDARD_LOADER_OPTIONS): Promise<LintResult> {
  const r = await loadDirectory(dir, options);
  const problems = sortProblems(r.problems);
  // A CI job pointed at the wrong directory must not pass for want of files.
  if (r.files.length === 0 && problems.length === 0) {
    const file = options.displayName?.(dir) ?? dir;
    problems.push({ file, line: 1, col: 1, message: 'no runbook or policy files (*.yaml, *.yml) found: check the directory' });
  }
  return { lines: problems.map(formatProblem), problems, runbooks: r.runbooks.size, policies: r.policies.length, files: r.files.length };
}
