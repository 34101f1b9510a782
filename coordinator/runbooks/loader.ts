/**
 * Loading a directory of YAML files (any depth, several documents per file) into runbooks and
 * policy documents, with every problem as file:line:col. Runbooks are validated here; other
 * kinds go to validators the caller injects (policies are validated in coordinator/policy),
 * so this module knows nothing of what a policy means.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CompiledRunbook } from '../engine/compiled-runbook.js';
import type { ValidationIssue } from '../../core/validation.js';
import { compileRunbook } from './compile.js';
import type { Runbook } from './model.js';
import { validateRunbook } from './validate-runbook.js';
import { decodeUtf8, MAX_FILE_BYTES, parseYamlDocuments, type Position, type YamlDocument } from './yaml-documents.js';

export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** Validates one document of an injected kind: `policy` is the typed result when it is valid. */
export type DocumentValidator<P> = (value: unknown) => { issues: ValidationIssue[]; policy?: P };

export interface LoaderOptions<P> {
  readonly validators: { readonly Policy?: DocumentValidator<P> };
  /** How a file is named in problems; default: relative to the working directory. */
  readonly displayName?: (path: string) => string;
}

interface Located {
  /** As shown in problems. */
  readonly file: string;
  /** The file's path as read. */
  readonly path: string;
  /** SHA-256 (hex) of the document's exact source. */
  readonly digest: string;
  readonly source: string;
  /** Where the document starts in its file. */
  readonly start: Position;
}

export interface LoadedRunbook extends Located {
  readonly runbook: Runbook;
  readonly compiled: CompiledRunbook;
}

export interface LoadedDocument<P> extends Located {
  readonly kind: 'Policy';
  /** metadata.name as written (what duplicate detection and reload use). */
  readonly name: string;
  readonly policy: P;
}

export interface DirectoryContents<P> {
  readonly runbooks: Map<string, LoadedRunbook>;
  readonly policies: Array<LoadedDocument<P>>;
  readonly problems: Problem[];
  /** Files read (paths as read), in order. */
  readonly files: string[];
  /**
   * What failed to load, so that a reload keeps the last good version: runbook ids and policy
   * names whose document is broken, and files with any broken document (or unreadable).
   */
  readonly broken: { readonly runbooks: Set<string>; readonly policies: Set<string>; readonly files: Set<string> };
}

export interface SourceFile {
  readonly path: string;
  readonly file: string;
  /** The text, or why it could not be read. */
  readonly text: string | { readonly error: string };
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col} ${p.message}`;
}

export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)));
}

const MAX_DEPTH = 8;

/** YAML files under `dir`, sorted, skipping dot-entries; symlinks are followed (ConfigMap mounts are symlinks). */
export async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    const names = (await readdir(d)).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      const p = join(d, name);
      const s = await stat(p).catch(() => undefined); // a dangling link is not a file
      if (s?.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(p, depth + 1);
      } else if (s?.isFile() && /\.ya?ml$/i.test(name)) out.push(p);
    }
  };
  await walk(dir, 0);
  return out;
}

/** Reads every YAML file under `dir` and loads its documents. */
export async function loadDirectory<P>(dir: string, options: LoaderOptions<P>): Promise<DirectoryContents<P>> {
  const display = options.displayName ?? ((p: string) => relative(process.cwd(), p) || p);
  let paths: string[];
  try {
    paths = await yamlFiles(dir);
  } catch (e) {
    const empty = loadSources<P>([], options);
    empty.problems.push({ file: display(dir), line: 1, col: 1, message: `cannot read the runbooks directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): create it or point --runbooks-dir at the right place` });
    return empty;
  }
  const sources: SourceFile[] = [];
  for (const path of paths) sources.push({ path, file: display(path), text: await readSource(path) });
  return loadSources(sources, options);
}

async function readSource(path: string): Promise<SourceFile['text']> {
  let bytes: Uint8Array;
  try {
    const s = await stat(path);
    if (s.size > MAX_FILE_BYTES) return { error: `file is ${s.size} bytes; at most ${MAX_FILE_BYTES} are read: split it into several files` };
    bytes = await readFile(path);
  } catch (e) {
    return { error: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  const d = decodeUtf8(bytes);
  return 'error' in d ? d : d.text;
}

/** Loads already-read files (pure apart from hashing): what loadDirectory does after reading. */
export function loadSources<P>(files: readonly SourceFile[], options: LoaderOptions<P>): DirectoryContents<P> {
  const out: DirectoryContents<P> = { runbooks: new Map(), policies: [], problems: [], files: [], broken: { runbooks: new Set(), policies: new Set(), files: new Set() } };
  const runbookAt = new Map<string, { readonly where: string; readonly problem: Omit<Problem, 'message'> }>();
  const policyAt = new Map<string, string>();
  const duplicateRunbooks = new Set<string>();
  for (const f of files) {
    out.files.push(f.path);
    if (typeof f.text !== 'string') {
      out.problems.push({ file: f.file, line: 1, col: 1, message: f.text.error });
      out.broken.files.add(f.path);
      continue;
    }
    const { documents, problems } = parseYamlDocuments(f.text);
    for (const p of problems) out.problems.push({ file: f.file, ...p });
    if (problems.length > 0) out.broken.files.add(f.path);
    for (const doc of documents) {
      const problem = (path: readonly (string | number)[], message: string): void => {
        out.problems.push({ file: f.file, ...doc.positionOf(path), message });
      };
      const located: Located = { file: f.file, path: f.path, digest: doc.digest, source: doc.source, start: doc.start };
      const kind = field(doc.value, ['kind']);
      if (kind === 'Runbook') {
        const { runbook, issues } = validateRunbook(doc.value);
        for (const i of issues) problem(i.path, i.message);
        if (!runbook) {
          markBroken(out, f.path, field(doc.value, ['metadata', 'id']), 'runbooks');
          continue;
        }
        const id = runbook.metadata.id;
        const earlier = runbookAt.get(id);
        if (earlier !== undefined) {
          const here = `${f.file}:${doc.start.line}`;
          problem(['metadata', 'id'], `duplicate runbook id "${id}" (also defined in ${earlier.where}): ids must be unique across the directory`);
          if (!duplicateRunbooks.has(id)) out.problems.push({ ...earlier.problem, message: `duplicate runbook id "${id}" (also defined in ${here}): ids must be unique across the directory` });
          // Neither copy wins: which one would is an accident of file order.
          duplicateRunbooks.add(id);
          markBroken(out, f.path, id, 'runbooks');
          continue;
        }
        runbookAt.set(id, { where: `${f.file}:${doc.start.line}`, problem: { file: f.file, ...doc.positionOf(['metadata', 'id']) } });
        out.runbooks.set(id, { ...located, runbook, compiled: compileRunbook(runbook, doc.source, doc.digest) });
      } else if (kind === 'Policy') {
        loadPolicy(out, doc, located, options, policyAt, problem);
      } else {
        problem(typeof kind === 'string' ? ['kind'] : [], kind === undefined
          ? 'document has no "kind": start it with apiVersion: handrail/v1 and kind: Runbook (or Policy)'
          : `unknown kind ${JSON.stringify(kind)}: expected "Runbook" or "Policy" (with apiVersion: handrail/v1)`);
        out.broken.files.add(f.path);
      }
    }
  }
  for (const id of duplicateRunbooks) {
    const first = out.runbooks.get(id);
    if (first) {
      out.runbooks.delete(id);
      out.broken.files.add(first.path);
    }
  }
  return out;
}

function loadPolicy<P>(
  out: DirectoryContents<P>,
  doc: YamlDocument,
  located: Located,
  options: LoaderOptions<P>,
  policyAt: Map<string, string>,
  problem: (path: readonly (string | number)[], message: string) => void,
): void {
  const validate = options.validators.Policy;
  const rawName = field(doc.value, ['metadata', 'name']);
  if (!validate) {
    problem(['kind'], 'Policy documents are not accepted here (no policy validator was given)');
    markBroken(out, located.path, rawName, 'policies');
    return;
  }
  const { policy, issues } = validate(doc.value);
  for (const i of issues) problem(i.path, i.message);
  if (policy === undefined || issues.length > 0) {
    markBroken(out, located.path, rawName, 'policies');
    return;
  }
  if (typeof rawName !== 'string' || rawName === '') {
    problem(['metadata'], 'a policy needs metadata.name: reloads and duplicate checks go by it');
    markBroken(out, located.path, undefined, 'policies');
    return;
  }
  const earlier = policyAt.get(rawName);
  if (earlier !== undefined) {
    problem(['metadata', 'name'], `duplicate policy name "${rawName}" (also defined in ${earlier}): names must be unique across the directory`);
    markBroken(out, located.path, rawName, 'policies');
    return;
  }
  policyAt.set(rawName, `${located.file}:${located.start.line}`);
  out.policies.push({ ...located, kind: 'Policy', name: rawName, policy });
}

function markBroken<P>(out: DirectoryContents<P>, path: string, name: unknown, what: 'runbooks' | 'policies'): void {
  out.broken.files.add(path);
  if (typeof name === 'string' && name !== '') out.broken[what].add(name);
}

function field(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const k of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}
