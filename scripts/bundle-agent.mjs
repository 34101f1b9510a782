// Bundles the agent into one file fleet hosts run with plain Node (no npm install there):
// dist/agent-bundle/handrail-agent.mjs, the install script (install-agent.sh), its SHA-256 (handrail-agent.mjs.sha256, the format
// `sha256sum -c` reads) and esbuild's metafile (meta.json: every input and import, which
// test/integration/agent-bundle.test.ts checks). Runs after tsc, from its output.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'agent-bundle');
const outFile = join(outDir, 'handrail-agent.mjs');
await mkdir(outDir, { recursive: true });
const result = await build({
  entryPoints: [join(root, 'dist', 'cli', 'agent-bin.js')],
  outfile: outFile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  metafile: true,
  legalComments: 'eof',
  // Smaller download and faster parse on every host. V8 keeps the whole source in memory, so
  // short local names are also idle RSS: about 0.9 MB (bench/agent-idle.ts). keepNames keeps
  // functions' and classes' .name (stack traces, error names) as written.
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
  keepNames: true,
  logLevel: 'warning',
  // sodium-native is a native addon: it cannot travel in a bundle. core/ed25519.ts falls back
  // to node:crypto when it does not load, which is all the agent needs (it only verifies).
  external: ['sodium-native'],
  banner: {
    // The CommonJS packages inside (grpc-js, pino) call require() for built-ins.
    js: "#!/usr/bin/env -S node --lite-mode --no-expose-wasm\nimport { createRequire as __handrailCreateRequire } from 'node:module';\nconst require = __handrailCreateRequire(import.meta.url);",
  },
});
await writeFile(join(outDir, 'meta.json'), JSON.stringify(result.metafile, null, 1));
const bytes = await readFile(outFile);
const sha = createHash('sha256').update(bytes).digest('hex');
await writeFile(`${outFile}.sha256`, `${sha}  handrail-agent.mjs\n`);
// The install script the coordinator serves beside it (with this SHA-256 filled in).
await copyFile(join(root, 'scripts', 'install-agent.sh'), join(outDir, 'install-agent.sh'));
process.stdout.write(`agent bundle: ${outFile} (${(bytes.length / 1024).toFixed(0)} KiB, sha256 ${sha})\n`);
