/**
 * The bundled agent (scripts/bundle-agent.mjs): one file that imports only Node built-ins,
 * carries no coordinator, store, web or engine code, and runs with no node_modules beside it.
 * That it enrolls and runs steps from an installed copy is test/integration/agent-install.test.ts.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { builtinModules } from 'node:module';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HANDRAIL_VERSION } from '../../core/version.js';
import { ROOT, workspace } from '../helpers/processes.js';

const BUNDLE_DIR = join(ROOT, 'dist', 'agent-bundle');
const BUNDLE = join(BUNDLE_DIR, 'handrail-agent.mjs');

interface Metafile {
  inputs: Record<string, unknown>;
  outputs: Record<string, { imports: Array<{ path: string; external?: boolean }> }>;
}

/** Input paths that belong to the coordinator process or its dependencies. */
const FORBIDDEN_INPUTS = [
  /^dist\/(coordinator|web|server)\//,
  /^dist\/cli\/(main|commands\/(?!agent\.js))/,
  /^node_modules\/(sqlite3|hono|@hono|zod|sodium-native|@grpc\/reflection)\//,
];

describe('the bundled agent', () => {
  it('imports only Node built-ins and holds no coordinator, store, web or engine code', async () => {
    const meta = JSON.parse(await readFile(join(BUNDLE_DIR, 'meta.json'), 'utf8')) as Metafile;
    const outputs = Object.values(meta.outputs);
    expect(outputs).toHaveLength(1);
    const builtins = new Set(builtinModules);
    const imports = [...new Set(outputs.flatMap((o) => o.imports.map((i) => i.path)))];
    expect(imports.filter((p) => !p.startsWith('node:') && !builtins.has(p))).toEqual([]);
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain('dist/agent/agent.js');
    expect(inputs.filter((p) => FORBIDDEN_INPUTS.some((re) => re.test(p)))).toEqual([]);
  });

  it('publishes its SHA-256 in the format sha256sum -c reads', async () => {
    const bytes = await readFile(BUNDLE);
    const line = await readFile(`${BUNDLE}.sha256`, 'utf8');
    expect(line).toBe(`${createHash('sha256').update(bytes).digest('hex')}  handrail-agent.mjs\n`);
  });

  it('runs from a directory with no node_modules anywhere above it', async () => {
    const dir = await workspace('hr-bundle-');
    await copyFile(BUNDLE, join(dir, 'agent.mjs'));
    const run = promisify(execFile);
    const version = await run(process.execPath, [join(dir, 'agent.mjs'), '--version'], { cwd: dir });
    expect(version.stdout).toBe(`handrail-agent ${HANDRAIL_VERSION}\n`);
    // Not enrolled and no token: the agent's own one-line refusal, not a module-not-found crash.
    const refused = await run(process.execPath, [join(dir, 'agent.mjs'), '--coordinator', '127.0.0.1:9', '--state-dir', join(dir, 'state')], { cwd: dir }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^handrail agent: this agent is not enrolled yet/);
  });
});
