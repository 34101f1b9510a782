/**
 * Reading YAML files of runbook and policy documents with positions: every document's plain
 * value, its exact source text (what its digest covers), and a way to turn a validation path
 * into line:col. Parsing only; validation is elsewhere.
 */
import { createHash } from 'node:crypto';
import { isMap, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { Path } from '../../core/validation.js';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface YamlDocument {
  /** 0-based index of the document in its file. */
  readonly index: number;
  readonly value: unknown;
  /** The document's own text (without a leading `---` line). */
  readonly source: string;
  /** SHA-256 (hex) of `source` as UTF-8. */
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

export function parseYamlDocuments(text: string): { documents: YamlDocument[]; problems: YamlProblem[] } {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const documents: YamlDocument[] = [];
  const problems: YamlProblem[] = [];
  const pos = (offset: number): Position => {
    const p = lc.linePos(offset);
    return { line: p.line, col: p.col };
  };
  list.forEach((doc: Document.Parsed, index) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const at = pos(e.pos[0]);
        problems.push({ ...at, message: `YAML: ${e.message.split('\n')[0] ?? e.message}` });
      }
      return;
    }
    const [from, , to] = doc.range;
    let source = text.slice(from, to);
    let start = from;
    const marker = /^---[^\n]*\n/.exec(source);
    if (marker) {
      source = source.slice(marker[0].length);
      start += marker[0].length;
    }
    if (doc.contents === null) return; // an empty document (e.g. a trailing ---)
    documents.push({
      index,
      value: doc.toJS({ maxAliasCount: 50 }),
      source,
      digest: createHash('sha256').update(source, 'utf8').digest('hex'),
      start: pos(start),
      positionOf: (path) => locate(doc, path, pos, start),
    });
  });
  return { documents, problems };
}

/** The deepest node along `path` that exists; for a key that exists, the key itself. */
function locate(doc: Document.Parsed, path: Path, pos: (o: number) => Position, fallback: number): Position {
  let node: unknown = doc.contents;
  let offset = fallback;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const k = p.key as { value?: unknown } | null;
        return k !== null && typeof k === 'object' && k.value === seg;
      });
      if (!pair) break;
      const key = pair.key as { range?: [number, number, number] };
      offset = key.range?.[0] ?? offset;
      node = pair.value;
      // Point at the value when there is one further along the path.
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as { range?: [number, number, number] } | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return pos(offset);
}
