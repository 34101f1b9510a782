import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { ROOT } from '../helpers/processes.js';

describe('the README\'s plain-openssl check of one record', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.token();
    await fleet.token(['--labels', 'env=x']);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('runs exactly the README commands and they verify the signature and the chain link', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- openssl-check:start -->\n```sh\n([\s\S]+?)```\n<!-- openssl-check:end -->/.exec(readme);
    expect(block, 'README has the openssl block').not.toBeNull();
    const script = block![1]!;
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', join(fleet.dir, 'bundle.jsonl')]);
    expect(ex.code, ex.stderr).toBe(0);
    const out = execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: fleet.dir, encoding: 'utf8' });
    expect(out).toContain('Signature Verified Successfully');
    const lines = out.trim().split('\n');
    const digest = lines.find((l) => /^[0-9a-f]{64}$/.test(l));
    expect(digest).toBeDefined();
    expect(lines).toContain(`"prev":"${digest}"`);

    // docs/audit-format.md carries the same recipe, plus the key id check.
    const docs = await readFile(join(ROOT, 'docs', 'audit-format.md'), 'utf8');
    expect(docs).toContain(script);
    const kid = execFileSync('bash', ['-euo', 'pipefail', '-c', `${script}\nopenssl dgst -sha256 -r key.der | cut -c1-16`], { cwd: fleet.dir, encoding: 'utf8' }).trim().split('\n').at(-1);
    const line2 = (await readFile(join(fleet.dir, 'bundle.jsonl'), 'utf8')).split('\n').find((l) => l.includes('"t":"record","seq":2,'));
    expect(line2).toContain(`"kid":"audit-${kid}"`);

    // and the same commands refuse a record changed by one character
    const text = await readFile(join(fleet.dir, 'bundle.jsonl'), 'utf8');
    const tampered = text.replace(/("t":"record","seq":2,[^\n]*"payload":")([A-Za-z0-9+/])/, (_m, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
    await writeFile(join(fleet.dir, 'bundle.jsonl'), tampered);
    expect(() => execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: fleet.dir, encoding: 'utf8', stdio: 'pipe' })).toThrow(/Signature Verification Failure|Command failed/);
  });
});
