import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { renderAgentConfig } from '../../cli/agent-config-file.js';
import { agentCommand } from '../../cli/commands/agent.js';
import { loadConfigParser, parseCommand } from '../../cli/options.js';

beforeAll(loadConfigParser);

describe("the agent's documented config file", () => {
  const given = { coordinator: 'c.example:7443', ca: '/etc/handrail-agent/ca.pem', 'state-dir': '/var/lib/handrail-agent', 'token-file': '/var/lib/handrail-agent/enroll-token', 'allow-adhoc': true, labels: 'role=web' };
  const text = renderAgentConfig(agentCommand, given, ['a header']);

  it('lists every setting that has a config key, with its description, flag and variable', () => {
    for (const [name, o] of Object.entries(agentCommand.options)) {
      if (!o.configKey) continue;
      const block = text.split('\n\n').find((b) => new RegExp(`^#? ?${o.configKey}:`, 'm').test(b));
      expect(block, o.configKey).toBeDefined();
      expect(block!.replace(/\n# /g, ' ')).toContain(`${o.description} (flag --${name}${o.env ? `; env ${o.env}` : ''}`);
    }
    expect(text.startsWith('# a header\n\n')).toBe(true);
  });

  it('is YAML holding exactly the given values, which the agent reads back as its settings', async () => {
    expect(parseYaml(text)).toEqual({ coordinator: 'c.example:7443', ca: '/etc/handrail-agent/ca.pem', stateDir: '/var/lib/handrail-agent', bootstrapTokenFile: '/var/lib/handrail-agent/enroll-token', allowAdhoc: true, labels: 'role=web' });
    const file = join(await mkdtemp(join(tmpdir(), 'hr-cfg-')), 'agent.yaml');
    await writeFile(file, text);
    const parsed = parseCommand(agentCommand, ['--config', file], {});
    for (const [name, v] of Object.entries(given)) expect(parsed.values[name], name).toBe(v);
    // Commented-out settings keep their defaults.
    expect(parsed.values['max-steps']).toBe('16');
    expect(text).toContain('# maxSteps: "16"');
  });
});
