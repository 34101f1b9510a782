/**
 * The agent's YAML config file, written by the install script (`handrail-agent.mjs
 * config-template …`): every setting the agent command has, each with its description, flag,
 * environment variable and default, so the file on a host documents itself. Settings given are
 * written as values; the rest stay commented out at their defaults. Generated from the option
 * specs, so a new setting is documented here without anyone remembering to.
 */
import { stringify } from 'yaml';
import type { CommandSpec, OptionSpec } from './options.js';

function wrap(text: string, width = 96): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function yamlLine(key: string, value: string | boolean): string {
  return stringify({ [key]: value }).trimEnd();
}

function describe(name: string, o: OptionSpec): string[] {
  const where = [`flag --${name}`, o.env ? `env ${o.env}` : '', o.choices ? `one of ${o.choices.join(', ')}` : ''].filter(Boolean).join('; ');
  return wrap(`${o.description} (${where})`).map((l) => `# ${l}`);
}

/**
 * `values`: setting name (the flag's name) → value to write. Settings without a config key
 * (e.g. --allow-keys-in-git) have no place in the file and are left out.
 */
export function renderAgentConfig(spec: CommandSpec, values: Readonly<Record<string, string | boolean>>, header: readonly string[] = []): string {
  const out = [...header.map((h) => `# ${h}`), ...(header.length > 0 ? [''] : [])];
  for (const [name, o] of Object.entries(spec.options)) {
    if (!o.configKey) continue;
    out.push(...describe(name, o));
    const v = values[name];
    if (v !== undefined) out.push(yamlLine(o.configKey, v));
    else out.push(`# ${o.default !== undefined ? yamlLine(o.configKey, o.default) : `${o.configKey}:`}`);
    out.push('');
  }
  return out.join('\n');
}
