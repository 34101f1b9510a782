// Bundles the CLI (and with it the coordinator) into dist/cli-bundle/: main.js, the entry
// bin/handrail.js loads, one chunk per lazily loaded command, and esbuild's metafile (meta.json).
// Node's ESM loader costs per file (resolve, stat, read, compile): unbundled, a coordinator
// opens about 800 JavaScript and JSON files before it listens, bundled about 260. On the 2-core
// VM of 2026-12-07 (bench/coordinator-start.ts, three runs of 8-10 alternating starts on a
// 2,000-agent database) its start to listening took 713-924 ms against 1,054-1,273 ms unbundled
// (medians), and 882-1,091 ms of CPU against 1,370-1,590 ms. Runs after tsc, from its output.
import { build } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'cli-bundle');
// Chunk names carry content hashes: a rebuild must not leave the last build's chunks beside them.
await rm(outDir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outdir: outDir,
  bundle: true,
  splitting: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
  // Left as packages, loaded from node_modules as before:
  // - sqlite3, sodium-native: native addons;
  // - pino, pino-pretty, thread-stream: pino starts transports in worker threads by file path;
  // - @grpc/reflection: reads its .proto files from beside its own code (__dirname);
  // - @grpc/grpc-js: @grpc/reflection requires it, and a second copy inside the bundle would
  //   load beside that one (about 30 ms more at start, and two sets of its global state).
  external: ['sqlite3', 'sodium-native', 'pino', 'pino-pretty', 'thread-stream', '@grpc/reflection', '@grpc/grpc-js'],
  banner: {
    // The CommonJS packages inside (node-forge, prom-client, yaml) call require() for built-ins.
    js: "import { createRequire as __handrailCreateRequire } from 'node:module';\nconst require = __handrailCreateRequire(import.meta.url);",
  },
});
// Which sources each file holds (test/integration/cli-startup.test.ts reads it: which chunks a
// command loads, and so which packages).
await writeFile(join(outDir, 'meta.json'), JSON.stringify(result.metafile, null, 1));
process.stdout.write(`cli bundle: ${outDir} (${Object.keys(result.metafile.outputs).length} files)\n`);
