import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { signedBytes, signWebhook, verifyWebhook, type VerifyInput } from '../../core/webhook-signature.js';
import { ROOT } from '../helpers/processes.js';

const SECRET = 'hrn_test-secret-0123456789abcdef';
const TS = 1_764_752_400; // 2025-12-03T09:00:00Z
const BODY = '{"event":"execution.finished","deliveryId":"dlv-1"}';
const GOOD: VerifyInput = { secret: SECRET, timestamp: String(TS), deliveryId: 'dlv-1', body: BODY, signature: signWebhook(SECRET, TS, 'dlv-1', BODY), nowMs: TS * 1000 };

describe('webhook signature', () => {
  it('signs "v1:" + timestamp + ":" + delivery + ":" + body with HMAC-SHA256 (a vector pinned from openssl)', () => {
    expect(signedBytes(TS, 'dlv-1', BODY).toString('utf8')).toBe(`v1:${TS}:dlv-1:${BODY}`);
    expect(signWebhook(SECRET, TS, 'dlv-1', BODY)).toBe('sha256=771bb82c99fad7c58c42950986d4545f0d7f3239c44dfcf1bdfbd6d3fa84203e');
  });

  it('agrees with the README\'s openssl command, run exactly as written', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- webhook-openssl:start -->\n```sh\n([\s\S]+?)```\n<!-- webhook-openssl:end -->/.exec(readme);
    expect(block, 'README has the webhook openssl block').not.toBeNull();
    const dir = await mkdtemp(join(tmpdir(), 'hr-sig-'));
    try {
      await writeFile(join(dir, 'body.json'), BODY);
      const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', block?.[1] ?? ''], { cwd: dir, env: { ...process.env, TIMESTAMP: String(TS), DELIVERY: 'dlv-1', SECRET } });
      expect(`sha256=${stdout.trim()}`).toBe(signWebhook(SECRET, TS, 'dlv-1', BODY));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('verifies what it signed, bytes or string alike', () => {
    expect(verifyWebhook(GOOD)).toEqual({ ok: true });
    expect(verifyWebhook({ ...GOOD, body: Buffer.from(BODY) })).toEqual({ ok: true });
  });

  it.each<[string, Partial<VerifyInput>, string]>([
    ['another secret', { secret: `${SECRET}x` }, 'mismatch'],
    ['a changed body', { body: BODY.replace('finished', 'started') }, 'mismatch'],
    ['another delivery id (a replay under a new id)', { deliveryId: 'dlv-2' }, 'mismatch'],
    ['another timestamp', { timestamp: String(TS + 1), nowMs: (TS + 1) * 1000 }, 'mismatch'],
    ['an upper-case signature', { signature: GOOD.signature?.toUpperCase().replace('SHA256=', 'sha256=') }, 'malformed'],
    ['a signature without its prefix', { signature: GOOD.signature?.slice('sha256='.length) }, 'malformed'],
    ['a truncated signature', { signature: GOOD.signature?.slice(0, -2) }, 'malformed'],
    ['a timestamp in milliseconds', { timestamp: `${TS}000.5` }, 'malformed'],
    ['a replay ten minutes later', { nowMs: (TS + 600) * 1000 }, 'stale'],
    ['a timestamp from the future', { nowMs: (TS - 600) * 1000 }, 'stale'],
    ['no signature header', { signature: undefined }, 'missing'],
    ['no timestamp header', { timestamp: undefined }, 'missing'],
    ['no delivery header', { deliveryId: '' }, 'missing'],
  ])('refuses %s', (_name, change, reason) => {
    const r = verifyWebhook({ ...GOOD, ...change });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
  });

  it('takes a wider tolerance when asked', () => {
    expect(verifyWebhook({ ...GOOD, nowMs: (TS + 600) * 1000, toleranceSeconds: 900 })).toEqual({ ok: true });
  });
});
