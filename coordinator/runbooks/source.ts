/** The engine's view of runbooks: the live catalog, and recompiling the exact source an execution ran. */
import type { RunbookSource } from '../engine/engine.js';
import type { CompiledRunbook } from '../engine/compiled-runbook.js';
import type { Catalog } from './catalog.js';
import { compileRunbook } from './compile.js';
import { validateRunbook } from './validate-runbook.js';
import { parseYamlDocuments } from './yaml-documents.js';

export function catalogSource(catalog: Catalog): RunbookSource {
  return {
    get: (id) => catalog.get(id)?.compiled,
    compile(source: string): CompiledRunbook {
      const { documents, problems } = parseYamlDocuments(source);
      const doc = documents[0];
      if (!doc || problems.length > 0) throw new Error(`stored runbook source does not parse: ${problems[0]?.message ?? 'empty'}`);
      const { runbook, issues } = validateRunbook(doc.value);
      if (!runbook) throw new Error(`stored runbook no longer validates: ${issues[0]?.message ?? 'unknown problem'}`);
      return compileRunbook(runbook, source, doc.digest);
    },
  };
}
