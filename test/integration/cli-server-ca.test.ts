import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { foreignCa } from '../helpers/forged-pki.js';
import { cli } from '../helpers/processes.js';

/**
 * Commands that talk to an HTTPS coordinator (`--http-tls`) trust its CA through --ca FILE,
 * HANDRAIL_CA or the config file's `ca` key (flag > env > file), without NODE_EXTRA_CA_CERTS;
 * without it, or with another CA, they say in one line what to pass.
 */
describe('the CLI over HTTPS with --ca', () => {
  let fleet: Fleet;
  let url: string;
  let token: string;
  let wrongCa: string;
  let config: string;
  const ls = (extra: readonly string[], env: Record<string, string> = {}): ReturnType<typeof cli> => cli(['runbooks', 'ls', '--server', url, '--token', token, '--json', ...extra], { NODE_EXTRA_CA_CERTS: '', ...env });

  beforeAll(async () => {
    fleet = await Fleet.create();
    const c = await fleet.startCoordinator(['--http-tls']);
    url = `https://127.0.0.1:${c.httpPort}`;
    token = await fleet.ensureAdmin();
    wrongCa = join(fleet.dir, 'other-ca.pem');
    await writeFile(wrongCa, (await foreignCa()).caCertPem);
    config = join(fleet.dir, 'handrail.yaml');
    await writeFile(config, `ca: ${fleet.caFile}\n`);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('works with --ca, HANDRAIL_CA or the config file, the flag first', async () => {
    const cases: Array<[string, readonly string[], Record<string, string>]> = [
      ['--ca', ['--ca', fleet.caFile], {}],
      ['HANDRAIL_CA', [], { HANDRAIL_CA: fleet.caFile }],
      ['the config file', ['--config', config], {}],
      ['--ca over a wrong HANDRAIL_CA', ['--ca', fleet.caFile], { HANDRAIL_CA: wrongCa }],
      ['HANDRAIL_CA over the config file', ['--config', join(fleet.dir, 'wrong.yaml')], { HANDRAIL_CA: fleet.caFile }],
    ];
    await writeFile(join(fleet.dir, 'wrong.yaml'), `ca: ${wrongCa}\n`);
    for (const [label, args, env] of cases) {
      const r = await ls(args, env);
      expect(r.code, `${label}: ${r.stderr}`).toBe(0);
      expect(Array.isArray((JSON.parse(r.stdout) as { runbooks: unknown[] }).runbooks), label).toBe(true);
    }
  });

  it('says what to pass, in one line each, when the CA is missing, wrong or unreadable', async () => {
    const cases: Array<[string, readonly string[], RegExp]> = [
      ['no CA', [], /cannot verify the coordinator's certificate at https:[\s\S]*pass the coordinator's CA with --ca FILE \(or HANDRAIL_CA=FILE\)/],
      ['another CA', ['--ca', wrongCa], /cannot verify the coordinator's certificate [\s\S]*other-ca\.pem \(--ca\) is not the CA that issued it/],
      ['a missing file', ['--ca', join(fleet.dir, 'nope.pem')], /cannot read the CA file .*nope\.pem \(--ca \/ HANDRAIL_CA\): no such file/],
      ['not a certificate', ['--ca', config], /holds no PEM certificate/],
    ];
    for (const [label, args, why] of cases) {
      const r = await ls(args);
      expect(r.code, label).not.toBe(0);
      expect(r.stderr, label).toMatch(why);
      expect(r.stderr.trim().split('\n').length, `${label}: ${r.stderr}`).toBeLessThanOrEqual(2);
      expect(r.stderr, label).not.toMatch(/\n\s+at /);
    }
  });
});
