/**
 * The runbooks and policies of a directory (YAML, any depth): loading with file:line:col
 * problems, and the live catalog whose reload never replaces a good version with a broken one.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CompiledRunbook } from '../engine/compiled-runbook.js';
import { validatePolicy, type Policy } from '../policy/policy.js';
import { compileRunbook } from './compile.js';
import type { Runbook } from './model.js';
import { validateRunbook } from './validate-runbook.js';
import { MAX_FILE_BYTES, parseYamlDocuments } from './yaml-documents.js';
import { isObj } from '../../core/document-schema.js';

export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export interface LoadedRunbook {
  readonly runbook: Runbook;
  readonly compiled: CompiledRunbook;
  /** As shown in problems (relative to the working directory). */
  readonly file: string;
  readonly path: string;
  readonly digest: string;
}

export interface LoadedPolicy {
  readonly policy: Policy;
  readonly file: string;
  readonly path: string;
  readonly digest: string;
}

export interface DirectoryContents {
  readonly runbooks: Map<string, LoadedRunbook>;
  readonly policies: Map<string, LoadedPolicy>;
  readonly problems: Problem[];
  /** Ids and policy names whose document in some file failed to load (so a reload keeps the old version). */
  readonly broken: { readonly runbooks: Set<string>; readonly policies: Set<string>; readonly files: Set<string> };
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col} ${p.message}`;
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if (d === dir) throw e;
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(p);
    }
  };
  await walk(dir, 0);
  return out;
}

/** Reads every YAML file under `dir`. */
export async function loadDirectory(dir: string): Promise<DirectoryContents> {
  const result: DirectoryContents = { runbooks: new Map(), policies: new Map(), problems: [], broken: { runbooks: new Set(), policies: new Set(), files: new Set() } };
  let files: string[];
  try {
    files = await yamlFiles(dir);
  } catch {
    result.problems.push({ file: dir, line: 1, col: 1, message: `cannot read the runbooks directory ${dir}: create it or point --runbooks-dir at the right place` });
    return result;
  }
  const where = new Map<string, string>();
  for (const path of files) {
    const file = relative(process.cwd(), path) || path;
    const size = (await stat(path)).size;
    if (size > MAX_FILE_BYTES) {
      result.problems.push({ file, line: 1, col: 1, message: `file is larger than ${MAX_FILE_BYTES} bytes` });
      result.broken.files.add(path);
      continue;
    }
    const text = await readFile(path, 'utf8');
    const { documents, problems } = parseYamlDocuments(text);
    for (const p of problems) result.problems.push({ file, ...p });
    if (problems.length > 0) result.broken.files.add(path);
    for (const doc of documents) {
      const kind = isObj(doc.value) ? doc.value['kind'] : undefined;
      const rawId = isObj(doc.value) && isObj(doc.value['metadata']) ? doc.value['metadata']['id'] ?? doc.value['metadata']['name'] : undefined;
      if (kind === 'Runbook') {
        const { runbook, issues } = validateRunbook(doc.value);
        for (const i of issues) result.problems.push({ file, ...doc.positionOf(i.path), message: i.message });
        if (!runbook) {
          if (typeof rawId === 'string') result.broken.runbooks.add(rawId);
          continue;
        }
        const id = runbook.metadata.id;
        const earlier = where.get(`rb:${id}`);
        if (earlier) {
          result.problems.push({ file, ...doc.positionOf(['metadata', 'id']), message: `duplicate runbook id "${id}" (also defined in ${earlier})` });
          result.broken.runbooks.add(id);
          result.runbooks.delete(id);
          continue;
        }
        where.set(`rb:${id}`, `${file}:${doc.start.line}`);
        result.runbooks.set(id, { runbook, compiled: compileRunbook(runbook, doc.source, doc.digest), file, path, digest: doc.digest });
      } else if (kind === 'Policy') {
        const { policy, issues } = validatePolicy(doc.value);
        for (const i of issues) result.problems.push({ file, ...doc.positionOf(i.path), message: i.message });
        if (!policy) {
          if (typeof rawId === 'string') result.broken.policies.add(rawId);
          continue;
        }
        const earlier = where.get(`pol:${policy.name}`);
        if (earlier) {
          result.problems.push({ file, ...doc.positionOf(['metadata', 'name']), message: `duplicate policy name "${policy.name}" (also defined in ${earlier})` });
          result.broken.policies.add(policy.name);
          continue;
        }
        where.set(`pol:${policy.name}`, `${file}:${doc.start.line}`);
        result.policies.set(policy.name, { policy, file, path, digest: doc.digest });
      } else {
        result.problems.push({ file, ...doc.positionOf(['kind']), message: `unknown kind ${JSON.stringify(kind ?? null)}: expected "Runbook" or "Policy" (with apiVersion: handrail/v1)` });
      }
    }
  }
  return result;
}

export interface ReloadReport {
  readonly added: Array<{ id: string; digest: string }>;
  readonly updated: Array<{ id: string; digest: string }>;
  readonly removed: string[];
  /** Runbooks whose new version is broken: the previous good version stays loaded. */
  readonly kept: string[];
  readonly policies: Array<{ name: string; digest: string }>;
  readonly policiesChanged: boolean;
  readonly problems: Problem[];
}

/** The loaded runbooks and policies, reloaded on demand or on change. */
export class Catalog {
  private runbooks = new Map<string, LoadedRunbook>();
  private policies = new Map<string, LoadedPolicy>();
  private problemList: Problem[] = [];

  constructor(readonly dir: string) {}

  get(id: string): LoadedRunbook | undefined {
    return this.runbooks.get(id);
  }

  list(): LoadedRunbook[] {
    return [...this.runbooks.values()].sort((a, b) => a.runbook.metadata.id.localeCompare(b.runbook.metadata.id));
  }

  policyList(): Policy[] {
    return [...this.policies.values()].map((p) => p.policy);
  }

  problems(): readonly Problem[] {
    return this.problemList;
  }

  async reload(): Promise<ReloadReport> {
    const next = await loadDirectory(this.dir);
    const added: Array<{ id: string; digest: string }> = [];
    const updated: Array<{ id: string; digest: string }> = [];
    const removed: string[] = [];
    const kept: string[] = [];
    const runbooks = new Map(next.runbooks);
    for (const [id, old] of this.runbooks) {
      if (runbooks.has(id)) continue;
      // Broken now (or in a file that no longer parses): keep the last good version.
      if (next.broken.runbooks.has(id) || next.broken.files.has(old.path)) {
        runbooks.set(id, old);
        kept.push(id);
      } else removed.push(id);
    }
    for (const [id, rb] of next.runbooks) {
      const old = this.runbooks.get(id);
      if (!old) added.push({ id, digest: rb.digest });
      else if (old.digest !== rb.digest) updated.push({ id, digest: rb.digest });
    }
    const policies = new Map(next.policies);
    for (const [name, old] of this.policies) {
      if (!policies.has(name) && (next.broken.policies.has(name) || next.broken.files.has(old.path))) policies.set(name, old);
    }
    const digests = (m: Map<string, LoadedPolicy>): string => [...m.values()].map((p) => `${p.policy.name}:${p.digest}`).sort().join(',');
    const policiesChanged = digests(policies) !== digests(this.policies);
    this.runbooks = runbooks;
    this.policies = policies;
    this.problemList = next.problems;
    return {
      added,
      updated,
      removed,
      kept,
      policies: [...policies.values()].map((p) => ({ name: p.policy.name, digest: p.digest })),
      policiesChanged,
      problems: next.problems,
    };
  }
}

/** `handrail runbooks lint DIR`: every problem as file:line:col message, sorted. */
export async function lintDirectory(dir: string): Promise<{ lines: string[]; runbooks: number; policies: number }> {
  const r = await loadDirectory(dir);
  const sorted = [...r.problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  return { lines: sorted.map(formatProblem), runbooks: r.runbooks.size, policies: r.policies.size };
}
