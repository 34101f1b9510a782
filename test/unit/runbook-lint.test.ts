import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog, lintDirectory } from '../../coordinator/runbooks/catalog.js';
import { parseYamlDocuments } from '../../coordinator/runbooks/yaml-documents.js';
import { ROOT } from '../helpers/processes.js';

describe('runbooks lint', () => {
  it('passes the example runbooks and the test fixtures', async () => {
    for (const dir of ['runbooks', 'test/fixtures/engine']) {
      const r = await lintDirectory(join(ROOT, dir));
      expect(r.lines, dir).toEqual([]);
      expect(r.runbooks).toBeGreaterThanOrEqual(5);
      expect(r.policies).toBe(1);
    }
  });

  it('reports every problem as file:line:col message', async () => {
    const r = await lintDirectory(join(ROOT, 'test/fixtures/lint-errors'));
    const lines = r.lines.map((l) => l.replace(/^.*?test\/fixtures\/lint-errors\//, ''));
    expect(lines).toEqual([
      'broken.yaml:4:3 "id" value "Bad_Id" is invalid: use lower-case letters, digits and -, e.g. restart-web',
      'broken.yaml:11:7 the default does not satisfy the option itself: 9 is above the maximum 5',
      'broken.yaml:15:7 pattern is not a valid regular expression: Invalid regular expression: /([a-z/u: Unterminated character class',
      'broken.yaml:17:5 invalid selector: expected ",", found end of selector (column 13)',
      'broken.yaml:18:3 strategy must be "rolling" or "parallel", not "sideways"',
      'broken.yaml:21:19 ${option.missing} refers to an option that does not exist (declare it under spec.options)',
      'broken.yaml:22:7 unknown field "tiemout" in a step; did you mean "timeout"?',
      'broken.yaml:24:7 scripts take no templates: use the environment variable $HANDRAIL_OPT_LEVEL instead of ${option.level} (quote it: "$HANDRAIL_OPT_LEVEL")',
      'broken.yaml:26:7 invalid duration "soon": use a number and a unit, e.g. 500ms, 30s, 5m, 1h, 1h30m, 2d',
      'broken.yaml:27:7 duplicate step name "one": step names must be unique within a runbook',
      'broken.yaml:28:19 unknown template variable "${host.nope}": use ${option.NAME}, ${host.name}, ${host.id}, ${host.labels.KEY} or ${execution.id} (write $${ for a literal ${)',
      'broken.yaml:37:7 effect must be allow or deny',
      'broken.yaml:38:7 unknown action "fly" (use run, view, approve, cancel, admin or *)',
      'broken.yaml:39:18 "alice" is invalid: use user:NAME, group:NAME or *',
      'dup.yaml:4:3 duplicate runbook id "same-id" (also defined in test/fixtures/lint-errors/dup.yaml:13): ids must be unique across the directory',
      'dup.yaml:16:3 duplicate runbook id "same-id" (also defined in test/fixtures/lint-errors/dup.yaml:1): ids must be unique across the directory',
      'syntax.yaml:6:1 YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('digests each document\'s exact source', () => {
    const text = 'apiVersion: handrail/v1\nkind: X\n---\nkind: Y\n';
    const { documents } = parseYamlDocuments(text);
    expect(documents.map((d) => d.source)).toEqual(['apiVersion: handrail/v1\nkind: X\n', 'kind: Y\n']);
    expect(documents[1]!.start).toEqual({ line: 4, col: 1 });
  });
});

describe('catalog reload', () => {
  const doc = (id: string, title: string): string =>
    `apiVersion: handrail/v1\nkind: Runbook\nmetadata:\n  id: ${id}\n  title: ${title}\n  owner: team-x\nspec:\n  targets: { selector: "*" }\n  steps:\n    - name: a\n      run: ["true"]\n`;

  it('keeps the good version when an edit breaks a runbook, takes fixed edits, drops deleted files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-cat-'));
    await writeFile(join(dir, 'a.yaml'), doc('alpha', 'First'));
    await writeFile(join(dir, 'b.yaml'), doc('beta', 'Beta'));
    const c = new Catalog(dir);
    let r = await c.reload();
    expect(r.added.map((x) => x.id).sort()).toEqual(['alpha', 'beta']);
    const firstDigest = c.get('alpha')!.digest;

    await writeFile(join(dir, 'a.yaml'), doc('alpha', 'First').replace('run: ["true"]', 'run: "not a list"'));
    r = await c.reload();
    expect(r.kept).toEqual(['alpha']);
    expect(r.problems.length).toBeGreaterThan(0);
    expect(c.get('alpha')!.digest).toBe(firstDigest);

    await writeFile(join(dir, 'a.yaml'), 'kind: [unclosed\n');
    r = await c.reload();
    expect(r.kept).toEqual(['alpha']);
    expect(c.get('alpha')!.runbook.metadata.title).toBe('First');

    await writeFile(join(dir, 'a.yaml'), doc('alpha', 'Second'));
    r = await c.reload();
    expect(r.updated.map((x) => x.id)).toEqual(['alpha']);
    expect(c.get('alpha')!.runbook.metadata.title).toBe('Second');

    await rm(join(dir, 'b.yaml'));
    r = await c.reload();
    expect(r.removed).toEqual(['beta']);
    expect(c.get('beta')).toBeUndefined();
  });

  it('lints the example directory copied elsewhere the same way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-cat-'));
    await cp(join(ROOT, 'runbooks'), dir, { recursive: true });
    expect((await lintDirectory(dir)).lines).toEqual([]);
    expect(await readFile(join(dir, 'policy.yaml'), 'utf8')).toContain('kind: Policy');
  });
});
