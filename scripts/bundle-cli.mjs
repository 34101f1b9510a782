// Bundles the CLI (and with it the coordinator) into dist/cli-bundle/: main.js, the entry
// bin/handrail.js loads, one chunk per lazily loaded command, and esbuild's metafile (meta.json).
// Node's ESM loader costs per file (resolve, stat, read, compile): unbundled, a coordinator opens about 800 JavaScript and JSON
// files before it listens, bundled about 260. On the 2-core VM of 2026-12-07 that took its start
// from spawn to listening from 910 to 673 ms (median of 8) and its CPU from 1,150 to 820 ms,
// which a coordinator restart's reconnect storm waits for. Runs after tsc, from its output.
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
  // - @grpc/reflection: reads its .proto files from beside its own code (__dirname).
  // @grpc/grpc-js is bundled, as in the agent bundle: its __dirname paths (channelz and ORCA
  // service definitions) are only reached by admin services, which Handrail does not add.
  external: ['sqlite3', 'sodium-native', 'pino', 'pino-pretty', 'thread-stream', '@grpc/reflection'],
  banner: {
    // The CommonJS packages inside (grpc-js, node-forge, prom-client) call require() for built-ins.
    js: "import { createRequire as __handrailCreateRequire } from 'node:module';\nconst require = __handrailCreateRequire(import.meta.url);",
  },
});
// Which sources each file holds (test/integration/cli-startup.test.ts reads it: which chunks a
// command loads, and so which packages).
await writeFile(join(outDir, 'meta.json'), JSON.stringify(result.metafile, null, 1));
process.stdout.write(`cli bundle: ${outDir} (${Object.keys(result.metafile.outputs).length} files)\n`);
