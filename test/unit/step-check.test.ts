import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkStepEnvelope } from '../../core/step-check.js';
import { signEnvelope } from '../../core/envelope.js';
import { pae } from '../../core/pae.js';
import { STEP_REQUEST_TYPE, type Envelope, type StepRequest } from '../../core/step.js';
import { decodeStepRequest, encodeStepRequest } from '../../proto/codec/step-codec.js';

const key = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const NOW = 1_800_000_000_000;
const seenNonce = randomBytes(16);

const req = (over: Partial<StepRequest> = {}): StepRequest => ({
  executionId: 'exe-1',
  stepId: 'sr-1',
  agentId: 'agt-me',
  argv: ['uptime'],
  script: undefined,
  env: { A: 'b' },
  workingDir: '',
  timeoutMs: 1000,
  issuedAtMs: NOW - 1000,
  notAfterMs: NOW + 60_000,
  nonce: randomBytes(16),
  runbookId: 'rb',
  runbookOwner: 'team',
  maxOutputBytes: 1024,
  ...over,
});

const sign = (r: StepRequest, k = key.privateKey, keyId = 'dispatch-1'): Envelope => signEnvelope(STEP_REQUEST_TYPE, encodeStepRequest(r), { keyId, privateKey: k });

const ctx = {
  agentId: 'agt-me',
  nowMs: NOW,
  keys: new Map([['dispatch-1', key.publicKey]]),
  nonceSeen: (n: Uint8Array) => Buffer.from(n).equals(seenNonce),
  decode: decodeStepRequest,
};

const flip = (b: Uint8Array, i = 0): Buffer => {
  const c = Buffer.from(b);
  c[i] = (c[i] as number) ^ 1;
  return c;
};

describe('the agent decision on a step envelope', () => {
  it('accepts a correct envelope and returns the decoded request', () => {
    const r = req();
    const v = checkStepEnvelope(sign(r), ctx);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.request.argv).toEqual(['uptime']);
  });

  it.each<[string, () => Envelope, string, RegExp]>([
    ['a flipped signature bit', () => ({ ...sign(req()), signature: flip(sign(req()).signature) }), 'bad_signature', /does not verify/],
    ['a payload changed after signing', () => ({ ...sign(req()), payload: encodeStepRequest(req({ argv: ['rm', '-rf', '/'] })) }), 'bad_signature', /does not verify/],
    ['a signature from another key under a trusted key id', () => sign(req(), other.privateKey), 'bad_signature', /does not verify/],
    ['an unknown key id', () => sign(req(), key.privateKey, 'dispatch-evil'), 'unknown_key', /not trusted/],
    ['another agent as target', () => sign(req({ agentId: 'agt-other' })), 'wrong_target', /agt-other/],
    ['an expired not-after', () => sign(req({ notAfterMs: NOW - 1 })), 'expired', /expired at/],
    ['an issue time far in the future', () => sign(req({ issuedAtMs: NOW + 3_600_000 })), 'expired', /future/],
    ['a replayed nonce', () => sign(req({ nonce: seenNonce })), 'replayed', /already used/],
    ['a short nonce', () => sign(req({ nonce: randomBytes(4) })), 'malformed', /nonce/],
    ['neither argv nor script', () => sign(req({ argv: [] })), 'malformed', /neither/],
    ['both argv and script', () => sign(req({ script: { interpreter: ['/bin/sh'], body: 'true' } })), 'malformed', /both/],
    ['another payload type', () => ({ ...sign(req()), payloadType: 'application/json' }), 'malformed', /payload type/],
    ['a signed non-request', () => signEnvelope(STEP_REQUEST_TYPE, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), { keyId: 'dispatch-1', privateKey: key.privateKey }), 'malformed', /decode/],
  ])('refuses %s', (_name, make, reason, detail) => {
    const v = checkStepEnvelope(make(), ctx);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.reason).toBe(reason);
      expect(v.detail).toMatch(detail);
    }
  });

  it('refuses, whatever the clock says, a request that expired before the replay log forgot its nonces', () => {
    // The clock was set back to NOW; the log once pruned nonces that expired up to NOW + 120 s.
    const pruned = { ...ctx, expiredThroughMs: NOW + 120_000 };
    const old = checkStepEnvelope(sign(req({ notAfterMs: NOW + 60_000 })), pruned);
    expect(old.ok ? null : [old.reason, old.detail]).toEqual(['expired', expect.stringMatching(/replay log was pruned/)]);
    expect(checkStepEnvelope(sign(req({ notAfterMs: NOW + 120_000 })), pruned).ok).toBe(false);
    expect(checkStepEnvelope(sign(req({ notAfterMs: NOW + 120_001 })), pruned).ok).toBe(true);
  });

  // A copy of a step the agent already runs: not run again, so its age and nonce do not matter,
  // but it must still be signed by a trusted key for this agent.
  it.each<[string, () => Envelope, string | null]>([
    ['past its not-after time', () => sign(req({ notAfterMs: NOW - 1 })), null],
    ['with its nonce already seen', () => sign(req({ nonce: seenNonce })), null],
    ['with a flipped signature bit', () => ({ ...sign(req()), signature: flip(sign(req()).signature) }), 'bad_signature'],
    ['under an unknown key id', () => sign(req(), key.privateKey, 'dispatch-evil'), 'unknown_key'],
    ['for another agent', () => sign(req({ agentId: 'agt-other' })), 'wrong_target'],
  ])('a redelivered copy %s', (_name, make, reason) => {
    const v = checkStepEnvelope(make(), { ...ctx, redelivery: true });
    expect(v.ok ? null : v.reason).toBe(reason);
  });

  it('binds the payload type into the signature (PAE)', () => {
    expect(pae('t', Buffer.from('ab')).toString()).toBe('DSSEv1 1 t 2 ab');
    const env = sign(req());
    // A signature over the same payload under another type must not verify as a step request.
    const asOther = signEnvelope('application/vnd.other', env.payload, { keyId: 'dispatch-1', privateKey: key.privateKey });
    const v = checkStepEnvelope({ ...env, signature: asOther.signature }, ctx);
    expect(v.ok).toBe(false);
  });
});
