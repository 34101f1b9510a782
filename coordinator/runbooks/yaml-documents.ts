/**
 * Reading YAML files of runbook and policy documents with positions: every document's plain
 * value, its exact source text (what its digest covers), and a way to turn a validation path
 * into line:col. Parsing only; validation is elsewhere.
 */
import { createHash } from 'node:crypto';
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { Path } from '../../core/validation.js';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface YamlDocument {
  /** 0-based index of the document in its file. */
  readonly index: number;
  readonly value: unknown;
  /**
   * The document's own text: from the end of its `---` line (or the start of the file) to the
   * start of the next document. Parsing `source` on its own gives back the same source and
   * digest, so an execution's stored source can be recompiled and re-digested exactly.
   */
  readonly source: string;
  /** SHA-256 (hex) of `source` as UTF-8: for a file read as UTF-8, the bytes on disk. */
  readonly digest: string;
  readonly start: Position;
  /** Where a path into `value` is written (the key for missing or unknown fields). */
  positionOf(path: Path): Position;
}

export interface YamlProblem {
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export const MAX_FILE_BYTES = 1024 * 1024;
/** Aliases expand when the document becomes a plain value: bound them (billion laughs). */
const MAX_ALIAS_COUNT = 50;
/** A `---` line with nothing after it but a comment: not part of the document's source. */
const MARKER_LINE = /^---[ \t]*(?:#[^\r\n]*)?\r?\n/;

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * UTF-8 bytes of a file as text. Invalid UTF-8 is refused rather than replaced, since a digest
 * of replaced text would not be the digest of the file's bytes.
 */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { error: string } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { error: 'file is not valid UTF-8: save it as UTF-8' };
  }
}

export function parseYamlDocuments(text: string): { documents: YamlDocument[]; problems: YamlProblem[] } {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const list: Document.Parsed[] = Array.isArray(docs) ? docs : [docs];
  const documents: YamlDocument[] = [];
  const problems: YamlProblem[] = [];
  const pos = (offset: number): Position => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  list.forEach((doc, index) => {
    // Warnings (an unresolved tag, say) change what the document means: report them like errors.
    const bad = [...doc.errors, ...doc.warnings];
    if (bad.length > 0) {
      for (const e of bad) problems.push({ ...pos(e.pos[0]), message: `YAML: ${firstLine(e.message)}` });
      return;
    }
    if (doc.contents === null) return; // an empty document (e.g. a trailing ---)
    // The first document owns the file's leading comments; the others start after their ---.
    let from = index === 0 ? 0 : doc.range[0];
    let source = text.slice(from, list[index + 1]?.range[0] ?? text.length);
    const marker = MARKER_LINE.exec(source);
    if (marker) {
      source = source.slice(marker[0].length);
      from += marker[0].length;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      problems.push({ ...pos(doc.range[0]), message: `YAML: ${firstLine((e as Error).message)}` });
      return;
    }
    documents.push({
      index,
      value,
      source,
      digest: sha256Hex(source),
      start: pos(from),
      positionOf: (path) => pos(locate(doc, path, from)),
    });
  });
  return { documents, problems };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

type Ranged = { range?: [number, number, number] | null } | null | undefined;

/**
 * Offset of the deepest node along `path` that exists: for a mapping entry the key itself (so a
 * problem with a value, or with a field missing below it, points at the line that names it).
 */
function locate(doc: Document.Parsed, path: Path, fallback: number): number {
  let node: unknown = doc.contents;
  let offset = (node as Ranged)?.range?.[0] ?? fallback;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      offset = (pair.key as Ranged)?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Ranged;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
