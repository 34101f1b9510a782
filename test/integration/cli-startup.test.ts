/**
 * What `handrail` loads before it answers: `--version`, `--help` and `run` must not pull in the
 * coordinator's heavy dependencies (SQLite, node-forge, grpc-js, zod, hono, pino, YAML), which
 * are most of a command's start-up time. Checked by the modules a loader hook sees, not by a
 * clock (start-up figures are bench material; see the commit that added this test). The CLI is
 * the bundle (scripts/bundle-cli.mjs): a loaded chunk counts as the sources esbuild's metafile
 * says it holds.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { ed25519Backend } from '../../core/ed25519.js';
import { CLI, ROOT, workspace } from '../helpers/processes.js';

const HEAVY = /(?:^|\/)node_modules\/(sqlite3|node-forge|@grpc|@bufbuild|zod|hono|@hono|pino|pino-pretty|yaml|prom-client)\/|(?:^|\/)dist\/(server|web)\//;

interface Metafile {
  readonly outputs: Readonly<Record<string, { readonly inputs: Readonly<Record<string, unknown>> }>>;
}

/** What a process loaded: each URL outside the bundle, and for each chunk of it the sources it holds (paths from the repository's root). */
function sourcesOf(loaded: readonly string[], meta: Metafile): string[] {
  const bundleDir = pathToFileURL(join(ROOT, 'dist', 'cli-bundle')).href + '/';
  return loaded.flatMap((u) => {
    if (!u.startsWith(bundleDir)) return [u];
    const chunk = meta.outputs[`dist/cli-bundle/${u.slice(bundleDir.length)}`];
    if (!chunk) throw new Error(`${u} is not in dist/cli-bundle/meta.json: rebuild (npm run build)`);
    return Object.keys(chunk.inputs);
  });
}

let dir: string;
let register: string;
let meta: Metafile;

beforeAll(async () => {
  meta = JSON.parse(await readFile(join(ROOT, 'dist', 'cli-bundle', 'meta.json'), 'utf8')) as Metafile;
  dir = await workspace('hr-cli-startup-');
  const hooks = join(dir, 'hooks.mjs');
  // Appends every module URL the ESM loader loads to the file named by HANDRAIL_TEST_LOADED.
  await writeFile(hooks, "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.HANDRAIL_TEST_LOADED, url + '\\n');\n  return next(url, context);\n}\n");
  register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

/** The module URLs `handrail ARGS` loaded, the sources they hold, and its exit code. */
async function loadedBy(args: readonly string[]): Promise<{ code: number; urls: string[]; loaded: string[] }> {
  const out = join(dir, `loaded-${args.join('_').replace(/[^\w-]/g, '')}.txt`);
  await writeFile(out, '');
  const env = { ...process.env, HANDRAIL_TEST_LOADED: out, HANDRAIL_SERVER: 'http://127.0.0.1:1', HANDRAIL_TOKEN: 'hru_not-a-real-token' };
  const code = await promisify(execFile)(process.execPath, ['--import', register, CLI, ...args], { cwd: ROOT, env }).then(
    () => 0,
    (e: { code?: number }) => e.code ?? -1,
  );
  const urls = (await readFile(out, 'utf8')).split('\n').filter((l) => l !== '');
  return { code, urls, loaded: sourcesOf(urls, meta) };
}

describe('handrail start-up', () => {
  it.each([
    [['--version'], 0],
    [['--help'], 0],
    [['executions', '--help'], 0],
    [['run', '--help'], 0],
    // A real `run` up to its request (nothing listens on port 1: it fails as unreachable).
    [['run', 'restart-web', '--targets', 'role=web', '--follow'], 1],
  ])('handrail %j loads none of the coordinator\'s heavy modules', async (args, exitCode) => {
    const { code, urls, loaded } = await loadedBy(args);
    expect(code).toBe(exitCode);
    expect(urls).toContain(pathToFileURL(CLI).href);
    expect(loaded).toContain('dist/cli/main.js');
    expect(loaded.filter((u) => HEAVY.test(u))).toEqual([]);
  });

  it('a command that needs them still loads them when it runs (`handrail runbooks lint`)', async () => {
    const { loaded } = await loadedBy(['runbooks', 'lint', join(ROOT, 'runbooks')]);
    expect(loaded.some((u) => u.startsWith('node_modules/yaml/'))).toBe(true);
  });

  it('HANDRAIL_ED25519=openssl still picks the backend, and a later run without it goes back to the default', async () => {
    const io = (env: NodeJS.ProcessEnv) => ({ out: () => {}, err: () => {}, env, now: () => 0 });
    expect(await main(['--version'], io({ HANDRAIL_ED25519: 'openssl' }))).toBe(0);
    expect(ed25519Backend()).toBe('openssl');
    expect(await main(['--version'], io({}))).toBe(0);
    expect(ed25519Backend()).toBe('libsodium');
  });
});
