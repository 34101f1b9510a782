import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WARM_UP_PAYLOAD_TYPE, warmUpStepPath } from '../../agent/warm-up.js';
import { signPayload, verifyPayload } from '../../core/envelope.js';
import { STEP_REQUEST_TYPE, STEP_RESULT_TYPE } from '../../core/step.js';

describe('agent start-up warm-up', () => {
  const agentKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dispatch = generateKeyPairSync('ed25519');

  it('runs through with the keys and a PATH that has `true`', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-warm-up-'));
    await expect(warmUpStepPath({ privateKey: agentKey.privateKey, dispatchKeys: [dispatch.publicKey], path: '/usr/bin:/bin', workingDir: dir })).resolves.toBeUndefined();
  });

  it('never rejects: no `true` on the PATH, no dispatch keys, a working directory that does not exist', async () => {
    await expect(warmUpStepPath({ privateKey: agentKey.privateKey, dispatchKeys: [], path: '/nonexistent', workingDir: '/nonexistent/dir' })).resolves.toBeUndefined();
  });

  it('signs over a payload type that no step result or request verifies under (the signature can never pass for one)', () => {
    const payload = new Uint8Array([1, 2, 3]);
    const sig = signPayload(WARM_UP_PAYLOAD_TYPE, payload, agentKey.privateKey);
    expect(verifyPayload(WARM_UP_PAYLOAD_TYPE, payload, sig, agentKey.publicKey)).toBe(true);
    expect(verifyPayload(STEP_RESULT_TYPE, payload, sig, agentKey.publicKey)).toBe(false);
    expect(verifyPayload(STEP_REQUEST_TYPE, payload, sig, agentKey.publicKey)).toBe(false);
  });
});
