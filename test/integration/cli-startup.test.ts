/**
 * What `handrail` loads before it answers: `--version`, `--help` and `run` must not pull in the
 * coordinator's heavy dependencies (SQLite, node-forge, grpc-js, zod, hono, pino, YAML), which
 * are most of a command's start-up time. Checked by the modules a loader hook sees, not by a
 * clock (start-up figures are bench material; see the commit that added this test).
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

const HEAVY = /\/node_modules\/(sqlite3|node-forge|@grpc|@bufbuild|zod|hono|@hono|pino|pino-pretty|yaml|prom-client)\/|\/dist\/(server|web)\//;

let dir: string;
let register: string;

beforeAll(async () => {
  dir = await workspace('hr-cli-startup-');
  const hooks = join(dir, 'hooks.mjs');
  // Appends every module URL the ESM loader loads to the file named by HANDRAIL_TEST_LOADED.
  await writeFile(hooks, "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.HANDRAIL_TEST_LOADED, url + '\\n');\n  return next(url, context);\n}\n");
  register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

/** The module URLs `handrail ARGS` loaded, and its exit code. */
async function loadedBy(args: readonly string[]): Promise<{ code: number; loaded: string[] }> {
  const out = join(dir, `loaded-${args.join('_').replace(/[^\w-]/g, '')}.txt`);
  await writeFile(out, '');
  const env = { ...process.env, HANDRAIL_TEST_LOADED: out, HANDRAIL_SERVER: 'http://127.0.0.1:1', HANDRAIL_TOKEN: 'hru_not-a-real-token' };
  const code = await promisify(execFile)(process.execPath, ['--import', register, CLI, ...args], { cwd: ROOT, env }).then(
    () => 0,
    (e: { code?: number }) => e.code ?? -1,
  );
  const loaded = (await readFile(out, 'utf8')).split('\n').filter((l) => l !== '');
  return { code, loaded };
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
    const { code, loaded } = await loadedBy(args);
    expect(code).toBe(exitCode);
    expect(loaded).toContain(pathToFileURL(CLI).href);
    expect(loaded.filter((u) => HEAVY.test(u))).toEqual([]);
  });

  it('a command that needs them still loads them when it runs (`handrail runbooks lint`)', async () => {
    const { loaded } = await loadedBy(['runbooks', 'lint', join(ROOT, 'runbooks')]);
    expect(loaded.some((u) => u.includes('/node_modules/yaml/'))).toBe(true);
  });

  it('HANDRAIL_ED25519=openssl still picks the backend, and a later run without it goes back to the default', async () => {
    const io = (env: NodeJS.ProcessEnv) => ({ out: () => {}, err: () => {}, env, now: () => 0 });
    expect(await main(['--version'], io({ HANDRAIL_ED25519: 'openssl' }))).toBe(0);
    expect(ed25519Backend()).toBe('openssl');
    expect(await main(['--version'], io({}))).toBe(0);
    expect(ed25519Backend()).toBe('libsodium');
  });
});
