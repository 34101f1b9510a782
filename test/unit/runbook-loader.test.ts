import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../coordinator/runbooks/catalog.js';
import { formatProblem, loadDirectory, loadSources, sortProblems, type DocumentValidator, type LoaderOptions } from '../../coordinator/runbooks/loader.js';
import { lintDirectory } from '../../coordinator/runbooks/lint.js';
import { parseYamlDocuments } from '../../coordinator/runbooks/yaml-documents.js';

/** A stand-in policy validator: the loader must work with whatever the caller injects. */
const validatePolicy: DocumentValidator<{ name: string; rules: unknown[] }> = (v) => {
  const value = v as { metadata?: { name?: string }; spec?: { rules?: unknown[] } };
  const rules = value.spec?.rules ?? [];
  if (rules.length === 0) return { issues: [{ path: ['spec', 'rules'], message: 'a policy needs at least one rule' }] };
  return { issues: [], policy: { name: value.metadata?.name ?? '', rules } };
};
const options: LoaderOptions<{ name: string; rules: unknown[] }> = { validators: { Policy: validatePolicy }, displayName: (p) => p.replace(/^.*\//, '') };

const runbookDoc = (id: string, extra = ''): string =>
  `apiVersion: handrail/v1\nkind: Runbook\nmetadata:\n  id: ${id}\n  title: ${id}\n  owner: team-x\nspec:\n  targets: { selector: "*" }\n  steps:\n    - name: a\n      run: ["true"]\n${extra}`;

const MULTI = [
  '# Runbooks and a policy in one file.', //                      1
  'apiVersion: handrail/v1', //                                   2
  'kind: Runbook', //                                             3
  'metadata:', //                                                 4
  '  id: first', //                                               5
  '  title: First', //                                            6
  '  owner: team-x', //                                           7
  'spec:', //                                                     8
  '  targets: { selector: "role=web" }', //                       9
  '  steps:', //                                                 10
  '    - name: a', //                                            11
  '      run: [echo, "${option.nope}"]', //                      12
  '---   # the second document', //                             13
  'apiVersion: handrail/v1', //                                  14
  'kind: Runbook', //                                            15
  'metadata:', //                                                16
  '  id: second', //                                             17
  '  title: Second', //                                          18
  '  owner: team-x', //                                          19
  'spec:', //                                                    20
  '  targets:', //                                               21
  '    selector: "role in (web"', //                             22
  '  steps:', //                                                 23
  '    - name: b', //                                            24
  '      run: ["true"]', //                                      25
  '      timout: 5s', //                                         26
  '---', //                                                      27
  'apiVersion: handrail/v1', //                                  28
  'kind: Runbook', //                                            29
  'metadata: {id: third, title: Third, owner: team-x}', //       30
  'spec:', //                                                    31
  '  targets: {selector: "*"}', //                               32
  '  steps: [{name: c, sleep: 1s}, {name: d, sleep: never}]', // 33
  '---', //                                                      34
  'apiVersion: handrail/v1', //                                  35
  'kind: Runbook', //                                            36
  'metadata: {id: fourth, title: Fourth, owner: team-x}', //     37
  'spec:', //                                                    38
  '  targets: {selector: "*"}', //                               39
  '  steps: [{name: e, run: ["true"]}]', //                      40
  '---', //                                                      41
  'apiVersion: handrail/v1', //                                  42
  'kind: Policy', //                                             43
  'metadata:', //                                                44
  '  name: empty', //                                            45
  'spec:', //                                                    46
  '  rules: []', //                                              47
  '---', //                                                      48
  'kind: Gadget', //                                             49
  '...', //                                                      50
  '---', //                                                      51
  'just: [unclosed', //                                          52
  '', //                                                         53
].join('\n');

const EXPECTED_MULTI = [
  'multi.yaml:12:19 ${option.nope} refers to an option that does not exist (declare it under spec.options)',
  'multi.yaml:22:5 invalid selector: expected ",", found end of selector (column 13)',
  'multi.yaml:26:7 unknown field "timout" in a step; did you mean "timeout"?',
  'multi.yaml:33:43 invalid duration "never": use a number and a unit, e.g. 500ms, 30s, 5m, 1h, 1h30m, 2d',
  'multi.yaml:47:3 a policy needs at least one rule',
  'multi.yaml:49:1 unknown kind "Gadget": expected "Runbook" or "Policy" (with apiVersion: handrail/v1)',
  'multi.yaml:53:1 YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
];

const load = (files: Record<string, string>) =>
  loadSources(Object.entries(files).map(([path, text]) => ({ path, file: path, text })), options);

describe('loading documents with positions', () => {
  it('maps every problem of a multi-document file to file:line:col', () => {
    const r = load({ 'multi.yaml': MULTI });
    expect(sortProblems(r.problems).map(formatProblem)).toEqual(EXPECTED_MULTI);
    expect([...r.runbooks.keys()]).toEqual(['fourth']);
    expect(r.runbooks.get('fourth')?.start).toEqual({ line: 35, col: 1 });
  });

  it('gives the same positions with CRLF line ends', () => {
    const r = load({ 'multi.yaml': MULTI.replace(/\n/g, '\r\n') });
    expect(sortProblems(r.problems).map(formatProblem)).toEqual(EXPECTED_MULTI);
  });

  it('digests the exact bytes of each document, and a stored source re-digests the same', () => {
    const text = '# header comment\napiVersion: handrail/v1\nkind: A\n# trailing\n---  # marker comment\r\nkind: B\n...\n---\n# lead\nkind: C\n';
    const { documents, problems } = parseYamlDocuments(text);
    expect(problems).toEqual([]);
    expect(documents.map((d) => d.source)).toEqual(['# header comment\napiVersion: handrail/v1\nkind: A\n# trailing\n', 'kind: B\n...\n', '# lead\nkind: C\n']);
    const bytes = Buffer.from(text, 'utf8');
    for (const d of documents) {
      const offset = bytes.indexOf(Buffer.from(d.source, 'utf8'));
      expect(offset).toBeGreaterThanOrEqual(0);
      const slice = bytes.subarray(offset, offset + Buffer.byteLength(d.source));
      expect(d.digest).toBe(createHash('sha256').update(slice).digest('hex'));
      const again = parseYamlDocuments(d.source).documents;
      expect(again.map((x) => [x.source, x.digest])).toEqual([[d.source, d.digest]]);
    }
    expect(documents.map((d) => d.start)).toEqual([{ line: 1, col: 1 }, { line: 6, col: 1 }, { line: 9, col: 1 }]);
  });

  it('refuses alias bombs and unknown tags instead of expanding or guessing', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)].join('\n');
    const r = parseYamlDocuments(bomb);
    expect(r.documents).toEqual([]);
    expect(r.problems[0]?.message).toMatch(/^YAML: .*alias/i);
    expect(parseYamlDocuments('kind: !!js/function "x"\n').problems).toEqual([{ line: 1, col: 7, message: 'YAML: Unresolved tag: tag:yaml.org,2002:js/function' }]);
  });

  it('hands Policy documents to the injected validator and keeps what it returns', () => {
    const r = load({ 'p.yaml': 'apiVersion: handrail/v1\nkind: Policy\nmetadata:\n  name: web\nspec:\n  rules: [allow-all]\n' });
    expect(r.problems).toEqual([]);
    expect(r.policies).toMatchObject([{ kind: 'Policy', name: 'web', file: 'p.yaml', policy: { name: 'web', rules: ['allow-all'] }, start: { line: 1, col: 1 } }]);
  });

  it('reports Policy documents when no policy validator was injected', () => {
    const r = loadSources([{ path: 'p.yaml', file: 'p.yaml', text: 'kind: Policy\nmetadata: {name: x}\n' }], { validators: {} });
    expect(r.problems.map(formatProblem)).toEqual(['p.yaml:1:1 Policy documents are not accepted here (no policy validator was given)']);
  });

  it.each<[string, string, string[]]>([
    ['no kind', 'apiVersion: handrail/v1\nmetadata: {id: x}\n', ['f.yaml:1:1 document has no "kind": start it with apiVersion: handrail/v1 and kind: Runbook (or Policy)']],
    ['a list, not a document', '- a\n- b\n', ['f.yaml:1:1 document has no "kind": start it with apiVersion: handrail/v1 and kind: Runbook (or Policy)']],
    ['duplicate keys', 'kind: Runbook\nkind: Policy\n', ['f.yaml:2:1 YAML: Map keys must be unique']],
    ['tab indentation', 'kind: Runbook\nmetadata:\n\tid: x\n', ['f.yaml:3:1 YAML: Tabs are not allowed as indentation']],
  ])('%s', (_n, text, lines) => {
    const r = load({ 'f.yaml': text });
    expect(sortProblems(r.problems).map(formatProblem).map((l) => l.replace(/(YAML: [^:]*?)(?: at line.*|\s*$)/, '$1').trim())).toEqual(lines);
  });

  it('names both places of a duplicate runbook id, across files, and loads neither', () => {
    const r = load({ 'a.yaml': runbookDoc('same'), 'b/c.yaml': `# another\n${runbookDoc('same')}` });
    expect(sortProblems(r.problems).map(formatProblem)).toEqual([
      'a.yaml:4:3 duplicate runbook id "same" (also defined in b/c.yaml:1): ids must be unique across the directory',
      'b/c.yaml:5:3 duplicate runbook id "same" (also defined in a.yaml:1): ids must be unique across the directory',
    ]);
    expect(r.runbooks.size).toBe(0);
    expect([...r.broken.runbooks]).toEqual(['same']);
  });

  it('names both places of a duplicate policy name', () => {
    const p = 'apiVersion: handrail/v1\nkind: Policy\nmetadata:\n  name: dup\nspec:\n  rules: [r]\n';
    const r = load({ 'a.yaml': p, 'b.yaml': p });
    expect(r.problems.map(formatProblem)).toEqual(['b.yaml:4:3 duplicate policy name "dup" (also defined in a.yaml:1): names must be unique across the directory']);
    expect(r.policies.map((x) => x.file)).toEqual(['a.yaml']);
  });
});

describe('reading a directory', () => {
  it('reads YAML at any depth, follows symlinked files, skips dot-entries and other files, refuses invalid UTF-8', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-load-'));
    try {
      await mkdir(join(dir, 'team', 'web'), { recursive: true });
      await mkdir(join(dir, '..data'));
      await writeFile(join(dir, 'team', 'web', 'a.yml'), runbookDoc('alpha'));
      await writeFile(join(dir, '..data', 'b.yaml'), runbookDoc('beta'));
      await symlink(join(dir, '..data', 'b.yaml'), join(dir, 'b.yaml'));
      await writeFile(join(dir, '.hidden.yaml'), runbookDoc('hidden'));
      await writeFile(join(dir, 'notes.txt'), 'not yaml');
      await writeFile(join(dir, 'latin1.yaml'), Buffer.from([0x6b, 0x69, 0x6e, 0x64, 0x3a, 0x20, 0xe9, 0x0a]));
      const r = await loadDirectory(dir, options);
      expect([...r.runbooks.keys()].sort()).toEqual(['alpha', 'beta']);
      expect(r.problems.map(formatProblem)).toEqual(['latin1.yaml:1:1 file is not valid UTF-8: save it as UTF-8']);
      expect(r.runbooks.get('alpha')?.digest).toBe(createHash('sha256').update(runbookDoc('alpha')).digest('hex'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a missing directory, and lint reports a directory without runbooks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-load-'));
    try {
      const missing = await loadDirectory(join(dir, 'nope'), options);
      expect(missing.problems.map(formatProblem)).toEqual(['nope:1:1 cannot read the runbooks directory (ENOENT): create it or point --runbooks-dir at the right place']);
      expect((await lintDirectory(dir, { ...options, validators: {} })).lines).toEqual([`${dir.replace(/^.*\//, '')}:1:1 no runbook or policy files (*.yaml, *.yml) found: check the directory`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('catalog reload', () => {
  const policy = (name: string, rule: string): string => `apiVersion: handrail/v1\nkind: Policy\nmetadata:\n  name: ${name}\nspec:\n  rules:\n    - name: ${rule}\n      effect: allow\n      actions: [view]\n      subjects: [group:support]\n`;

  it('never replaces a good version with a broken one, reports what changed with digests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-cat-'));
    try {
      await writeFile(join(dir, 'two.yaml'), `${runbookDoc('one')}---\n${runbookDoc('two')}`);
      await writeFile(join(dir, 'policy.yaml'), policy('main', 'support-view'));
      const c = new Catalog(dir);
      let r = await c.reload();
      expect(r.added.map((a) => a.id)).toEqual(['one', 'two']);
      expect(r.policiesChanged).toBe(true);
      const one = c.get('one')!;
      const two = c.get('two')!;

      // One document of the file renamed to an invalid id: the other stays, the renamed one is not dropped.
      await writeFile(join(dir, 'two.yaml'), `${runbookDoc('one')}---\n${runbookDoc('Two_Bad')}`);
      r = await c.reload();
      expect(r).toMatchObject({ added: [], updated: [], removed: [], kept: ['two'] });
      expect(r.problems.map((p) => `${p.file.replace(/^.*\//, '')}:${p.line}:${p.col}`)).toEqual(['two.yaml:16:3']);
      expect(c.get('two')).toBe(two);

      // A broken policy keeps its previous version in force: dropping it could drop a deny rule.
      await writeFile(join(dir, 'policy.yaml'), policy('main', 'support-view').replace('effect: allow', 'effect: perhaps'));
      r = await c.reload();
      expect(r.keptPolicies).toEqual(['main']);
      expect(r.policiesChanged).toBe(false);
      expect(c.policyList()).toHaveLength(1);

      // A runbook duplicated into a new file: neither copy wins, the loaded one stays.
      await writeFile(join(dir, 'copy.yaml'), runbookDoc('one', '    - name: extra\n      run: ["true"]\n'));
      r = await c.reload();
      expect(r.kept).toEqual(['one', 'two']);
      expect(c.get('one')).toBe(one);
      await rm(join(dir, 'copy.yaml'));

      // Fixed: the new version replaces the old, with both digests in the report.
      await writeFile(join(dir, 'two.yaml'), `${runbookDoc('one')}---\n${runbookDoc('two', '    - name: b\n      run: ["true"]\n')}`);
      r = await c.reload();
      expect(r.updated).toEqual([{ id: 'two', digest: c.get('two')!.digest, previousDigest: two.digest }]);
      expect(r.kept).toEqual([]);

      // Deleted: removed, with the digest of the version that went.
      const last = c.get('two')!.digest;
      await writeFile(join(dir, 'two.yaml'), runbookDoc('one'));
      r = await c.reload();
      expect(r).toMatchObject({ removed: ['two'], removedVersions: [{ id: 'two', digest: last }] });
      await rm(join(dir, 'two.yaml'));
      r = await c.reload();
      expect(r.removed).toEqual(['one']);
      expect(c.list()).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs reloads one at a time, in call order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-cat-'));
    try {
      await writeFile(join(dir, 'a.yaml'), runbookDoc('a'));
      const c = new Catalog(dir);
      const [first, second] = await Promise.all([c.reload(), c.reload()]);
      expect(first.added.map((x) => x.id)).toEqual(['a']);
      expect(second.added).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
