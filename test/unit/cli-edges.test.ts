/**
 * The CLI's small edges a new user meets (issue 9, "The CLI's small edges"): each bad input
 * gets one line saying what was wrong and where, and a second saying what to do; exit 2; never
 * a stack trace.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-cli-edges-'));
  await writeFile(join(dir, 'rb.yaml'), 'apiVersion: handrail/v1\nkind: Runbook\n');
  await writeFile(join(dir, 'not-a-cert.pem'), 'hello\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => void (out += t), err: (t) => void (err += t), env, now: () => Date.now() });
  return { code, out, err };
}

describe('one-line refusals with what to do', () => {
  const cases: Array<[string, () => string[], RegExp, RegExp]> = [
    ['runbooks lint on a missing directory', () => ['runbooks', 'lint', join(dir, 'nope')], /nope: no such directory$/m, /e\.g\. handrail runbooks lint runbooks\//],
    ['runbooks lint on a file', () => ['runbooks', 'lint', join(dir, 'rb.yaml')], /rb\.yaml is a file; runbooks lint checks a directory/, /give its directory: handrail runbooks lint \S*hr-cli-edges-\S+$/m],
    ['audit verify on a missing bundle', () => ['audit', 'verify', join(dir, 'nofile.jsonl')], /cannot read the audit bundle .*nofile\.jsonl: no such file$/m, /handrail audit export --out FILE/],
    ['audit verify with a missing trust file', () => ['audit', 'verify', join(dir, 'rb.yaml'), '--trust-file', join(dir, 'nope.txt')], /cannot read the trust file .*nope\.txt \(--trust-file\): no such file$/m, /pinned key ids/],
    ['user add without a name', () => ['user', 'add', '--data-dir', dir], /give the user name$/m, /e\.g\. handrail user add alice --group ops/],
    ['ca issue-probe without --out', () => ['ca', 'issue-probe', '--certs-dir', dir, '--data-dir', dir], /--out DIR is required$/m, /e\.g\. handrail ca issue-probe --out/],
    ['ca switch with no roll-over', () => ['ca', 'switch', '--certs-dir', dir, '--data-dir', dir], /no CA in .*ca\.pem is missing/, /handrail ca init/],
    ['ca retire with no roll-over', () => ['ca', 'retire', '--certs-dir', dir, '--data-dir', dir], /no CA in .*ca\.pem is missing/, /handrail ca init/],
    ['a command with an unreadable --ca', () => ['runbooks', 'ls', '--server', 'https://127.0.0.1:1', '--token', 't', '--ca', join(dir, 'not-a-cert.pem')], /--ca .*not-a-cert\.pem holds no PEM certificate$/m, /coordinator's ca\.pem/],
  ];
  it.each(cases)('%s', async (_label, args, what, todo) => {
    const r = await cli(args());
    expect(r.code, r.err).toBe(2);
    const lines = r.err.trimEnd().split('\n');
    expect(lines.length, r.err).toBeLessThanOrEqual(2);
    expect(lines[0]).toMatch(what);
    expect(r.err).toMatch(todo);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
