import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_CODES, AuditEvents, type AuditEventInput } from '../../coordinator/audit/events.js';
import { GENESIS_PREV, scrubSecrets, sealRecord } from '../../coordinator/audit/record.js';
import { AUDIT_SAMPLES } from '../helpers/audit-samples.js';
import { ROOT } from '../helpers/processes.js';

// A fixed Ed25519 key from a 32-byte seed: PKCS#8 prefix for Ed25519 + seed.
const KEY = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 7)]), format: 'der', type: 'pkcs8' });
const SIGNER = { keyId: 'audit-test', privateKey: KEY };
const TS = Date.UTC(2026, 10, 23, 5, 0, 0, 123);

describe('audit records', () => {
  it('covers every event type with a unique stable code', () => {
    const types = Object.values(AuditEvents);
    expect(new Set(types).size).toBe(types.length);
    expect(Object.keys(AUDIT_SAMPLES).sort()).toEqual([...types].sort());
    const codes = types.map((t) => AUDIT_CODES[t]);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^HR\d{4}$/);
  });

  it('pins the exact signed bytes and signature of every event type', async () => {
    const golden = (await readFile(join(ROOT, 'test', 'fixtures', 'audit-golden.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; payload: string; sig: string });
    let prev = GENESIS_PREV;
    const types = Object.values(AuditEvents);
    expect(golden.map((g) => g.type)).toEqual(types);
    types.forEach((type, i) => {
      const ev = { type, actor: { kind: 'system', id: 'test' }, data: AUDIT_SAMPLES[type] } as AuditEventInput;
      const rec = sealRecord(ev, i + 1, prev, TS, SIGNER);
      expect(rec.payload.toString('utf8')).toBe(golden[i]!.payload);
      expect(rec.signature.toString('base64')).toBe(golden[i]!.sig);
      expect(verify(null, rec.payload, createPublicKey(KEY), rec.signature)).toBe(true);
      prev = rec.hash;
    });
  });

  it('scrubs secret-looking members at any depth, whatever the event', () => {
    expect(scrubSecrets({ a: 1, token: 'x', nested: [{ password: 'p', ok: 'y' }], Secret: 's', privateKey: 'k' })).toEqual({ a: 1, token: '[redacted]', nested: [{ password: '[redacted]', ok: 'y' }], Secret: '[redacted]', privateKey: '[redacted]' });
  });
});
