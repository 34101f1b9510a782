/**
 * yaml's parse, imported on first use: the package costs about 50 ms of CPU to load, which
 * commands that read no YAML should not pay on every start.
 */
import type { parse as ParseYaml } from 'yaml';

/** The two shapes a dynamic import of the (CommonJS) yaml package takes. */
interface YamlModule {
  readonly parse?: typeof ParseYaml;
  readonly default?: { readonly parse: typeof ParseYaml };
}

/**
 * Node gives a dynamically imported CommonJS package named exports; esbuild, in a bundle split
 * into chunks (dist/cli-bundle), gives it only a default export, the package itself.
 */
export async function loadYamlParse(): Promise<typeof ParseYaml> {
  const m = (await import('yaml')) as YamlModule;
  const parse = m.parse ?? m.default?.parse;
  if (!parse) throw new Error('internal error: the yaml package has no parse()');
  return parse;
}
