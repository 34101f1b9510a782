/**
 * The live catalog of a runbooks directory: the runbooks and policies now in force, reloaded
 * on demand or on change. A reload never replaces a good version with a broken one: a document
 * that fails to load keeps the version already loaded (and is reported); a runbook is removed
 * only when its file is gone or its file loads cleanly without it.
 */
import type { Policy } from '../policy/policy.js';
import { loadDirectory as load, type DirectoryContents, type LoadedDocument, type LoadedRunbook, type LoaderOptions, type Problem } from './loader.js';
import { STANDARD_LOADER_OPTIONS } from './standard-validators.js';

export { formatProblem, type LoadedRunbook, type LoadedDocument, type Problem } from './loader.js';
export { lintDirectory } from './lint.js';

export type LoadedPolicy = LoadedDocument<Policy>;

/** Loads a directory with the standard validators (runbooks and policies). */
export function loadDirectory(dir: string): Promise<DirectoryContents<Policy>> {
  return load(dir, STANDARD_LOADER_OPTIONS);
}

export interface VersionChange {
  readonly id: string;
  readonly digest: string;
}

export interface ReloadReport {
  readonly added: VersionChange[];
  /** New digest; `previousDigest` is the version it replaced. */
  readonly updated: Array<VersionChange & { readonly previousDigest: string }>;
  readonly removed: string[];
  /** The removed runbooks with the digest of the version that was dropped. */
  readonly removedVersions: VersionChange[];
  /** Runbooks whose new version is broken: the previous good version stays loaded. */
  readonly kept: string[];
  readonly policies: Array<{ name: string; digest: string }>;
  readonly policiesChanged: boolean;
  /** Policies whose new version is broken: the previous good version stays in force. */
  readonly keptPolicies: string[];
  readonly problems: Problem[];
}

export class Catalog {
  private runbooks = new Map<string, LoadedRunbook>();
  private policies: LoadedPolicy[] = [];
  private problemList: Problem[] = [];
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly options: LoaderOptions<Policy> = STANDARD_LOADER_OPTIONS,
  ) {}

  get(id: string): LoadedRunbook | undefined {
    return this.runbooks.get(id);
  }

  list(): LoadedRunbook[] {
    return [...this.runbooks.values()].sort((a, b) => (a.runbook.metadata.id < b.runbook.metadata.id ? -1 : 1));
  }

  policyList(): Policy[] {
    return this.policies.map((p) => p.policy);
  }

  loadedPolicies(): readonly LoadedPolicy[] {
    return this.policies;
  }

  /** Problems of the last reload. */
  problems(): readonly Problem[] {
    return this.problemList;
  }

  /** Reads the directory again. Reloads run one at a time, in call order. */
  reload(): Promise<ReloadReport> {
    const next = this.pending.then(
      () => this.reloadNow(),
      () => this.reloadNow(),
    );
    this.pending = next;
    return next;
  }

  private async reloadNow(): Promise<ReloadReport> {
    const next = await load(this.dir, this.options);
    const r = mergeReload({ runbooks: this.runbooks, policies: this.policies }, next);
    this.runbooks = r.runbooks;
    this.policies = r.policies;
    this.problemList = next.problems;
    return r.report;
  }
}

/** The catalog after a reload (pure): which versions are in force and what changed. */
export function mergeReload(
  current: { readonly runbooks: ReadonlyMap<string, LoadedRunbook>; readonly policies: readonly LoadedPolicy[] },
  next: DirectoryContents<Policy>,
): { runbooks: Map<string, LoadedRunbook>; policies: LoadedPolicy[]; report: ReloadReport } {
  const keepOld = (name: string, path: string, broken: ReadonlySet<string>): boolean => broken.has(name) || next.broken.files.has(path);

  const runbooks = new Map(next.runbooks);
  const added: VersionChange[] = [];
  const updated: Array<VersionChange & { previousDigest: string }> = [];
  const removedVersions: VersionChange[] = [];
  const kept: string[] = [];
  for (const [id, old] of current.runbooks) {
    if (runbooks.has(id)) continue;
    if (keepOld(id, old.path, next.broken.runbooks)) {
      runbooks.set(id, old);
      kept.push(id);
    } else removedVersions.push({ id, digest: old.digest });
  }
  for (const [id, rb] of next.runbooks) {
    const old = current.runbooks.get(id);
    if (!old) added.push({ id, digest: rb.digest });
    else if (old.digest !== rb.digest) updated.push({ id, digest: rb.digest, previousDigest: old.digest });
    // Unchanged: keep the loaded object, so holders of it see one version, not equal copies.
    else if (old.path === rb.path) runbooks.set(id, old);
  }

  const policies = [...next.policies];
  const keptPolicies: string[] = [];
  for (const old of current.policies) {
    if (policies.some((p) => p.name === old.name)) continue;
    // A broken policy keeps its old version: dropping it could drop a deny rule.
    if (keepOld(old.name, old.path, next.broken.policies)) {
      policies.push(old);
      keptPolicies.push(old.name);
    }
  }
  const digests = (list: readonly LoadedPolicy[]): string => list.map((p) => `${p.name}:${p.digest}`).sort().join(',');
  const byId = (a: VersionChange, b: VersionChange): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    runbooks,
    policies,
    report: {
      added: added.sort(byId),
      updated: updated.sort(byId),
      removed: removedVersions.sort(byId).map((r) => r.id),
      removedVersions,
      kept: kept.sort(),
      policies: policies.map((p) => ({ name: p.name, digest: p.digest })),
      policiesChanged: digests(policies) !== digests(current.policies),
      keptPolicies: keptPolicies.sort(),
      problems: next.problems,
    },
  };
}
