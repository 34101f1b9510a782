/**
 * The layering (DESIGN.md "Proposed layout", STYLE.md "What that means here"), checked by
 * `npm run lint`. Type-only imports count: a generated type leaking into the web layer is a
 * leak even when it compiles away.
 *
 *   cli/ ─> server/ ─> coordinator/ ──┐
 *     │        └────> web/ ───────────┤
 *     └──────> agent/ ────────────────┼─> proto/codec ─> proto/gen
 *                                     └─> core/ (pure)
 *
 * test/, bench/ and the tests beside web/'s code (`*.test.ts`) may import anything; nothing in
 * production imports them.
 */

/** Production source folders (everything but test/ and bench/); the TESTS inside them are not production. */
const PRODUCTION = '^(agent|cli|coordinator|core|proto|server|web)/';
/** Tests that sit beside the code they test (web/pages/catalog/catalog.test.ts): not production. */
const TESTS = '[.]test[.]tsx?$';

/**
 * The gRPC edges: the only modules that may touch the ts-proto output under proto/gen/. Each is
 * listed by name so that a new one is a reviewed change to this file.
 */
const TRANSPORT_MODULES = [
  '^proto/codec/',
  '^proto/gen/',
  // agent side: the stream, enrollment, and the executor that answers on the stream
  '^agent/connection[.]ts$',
  '^agent/enroll[.]ts$',
  '^agent/step-executor[.]ts$',
  // coordinator side: the gateway (TLS front door, sessions) and the stream's step traffic
  '^coordinator/gateway/',
  '^coordinator/engine/step-dispatcher[.]ts$',
];

/** Node built-ins that do I/O (files, sockets, processes, threads); core/ is pure. */
const IO_BUILTINS = '^(node:)?(fs|fs/promises|net|tls|http|https|http2|dgram|dns|child_process|cluster|worker_threads|readline|os|process)$';
/** Packages that do I/O or belong to one edge. */
const IO_PACKAGES = '^node_modules/(@grpc/|@hono/|hono/|sqlite3/|pino/|@bufbuild/)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Import cycles make load order matter and modules impossible to read alone; break the cycle by moving the shared piece down.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-is-pure',
      severity: 'error',
      comment: 'core/ is the few pure pieces both sides share: it imports no other Handrail folder.',
      from: { path: '^core/', pathNot: TESTS },
      to: { path: '^(agent|coordinator|proto|web)/' },
    },
    {
      name: 'core-does-no-io',
      severity: 'error',
      comment: 'core/ takes values and returns values: no files, sockets, processes, gRPC, SQLite or HTTP (node:crypto and node-forge are fine).',
      from: { path: '^core/', pathNot: TESTS },
      to: { path: [IO_BUILTINS, IO_PACKAGES] },
    },
    {
      name: 'agent-not-coordinator',
      severity: 'error',
      comment: 'The agent runs on fleet hosts: it never loads coordinator or web code (SQLite, Hono, the CA).',
      from: { path: '^agent/', pathNot: TESTS },
      to: { path: '^(coordinator|web)/' },
    },
    {
      name: 'coordinator-not-agent',
      severity: 'error',
      comment: 'The coordinator process (coordinator/, web/, server/) shares only core/ and proto/ with the agent.',
      from: { path: '^(coordinator|server|web)/', pathNot: TESTS },
      to: { path: '^agent/' },
    },
    {
      name: 'coordinator-not-web',
      severity: 'error',
      comment: 'The coordinator does not know its HTTP layer; server/ wires the two together.',
      from: { path: '^coordinator/', pathNot: TESTS },
      to: { path: '^web/' },
    },
    {
      name: 'web-not-proto',
      severity: 'error',
      comment: 'web/ sees plain domain values: no protobuf, generated or codec (coordinator/ decodes for it).',
      from: { path: '^web/', pathNot: TESTS },
      to: { path: '^proto/' },
    },
    {
      name: 'proto-gen-only-in-transport',
      severity: 'error',
      comment: 'Generated proto code is imported only by the transport modules listed in TRANSPORT_MODULES; domain code sees plain TypeScript types.',
      from: { path: PRODUCTION, pathNot: [...TRANSPORT_MODULES, TESTS] },
      to: { path: '^proto/gen/' },
    },
    {
      name: 'proto-is-wire-only',
      severity: 'error',
      comment: 'proto/ is the wire format: it may use core/ types, nothing above it.',
      from: { path: '^proto/', pathNot: TESTS },
      to: { path: '^(agent|coordinator|web)/' },
    },
    {
      name: 'only-cli-above-server',
      severity: 'error',
      comment: 'cli/ is the top; server/ is the composition root under it, started only by cli/ (and tests, bench).',
      from: { path: '^(agent|coordinator|core|proto|web)/', pathNot: TESTS },
      to: { path: '^(server|cli)/' },
    },
    {
      name: 'no-test-code-in-production',
      severity: 'error',
      comment: 'Test helpers and benchmarks are not reachable from production code.',
      from: { path: PRODUCTION, pathNot: TESTS },
      to: { path: ['^(test|bench)/', TESTS] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a missing dependency.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
