import { createHash, createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_CODES, AUDIT_EVENT_TYPES, AuditEvents, auditCode, auditEvent, type AuditEventInput } from '../../coordinator/audit/events.js';
import { GENESIS_PREV, sealCheckpoint, sealRecord } from '../../coordinator/audit/record.js';
import { maskSecrets, scrubSecrets } from '../../coordinator/audit/secrets.js';
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
      // The golden bytes round-trip: they parse back to the event that was appended.
      const body = JSON.parse(golden[i]!.payload) as { type: string; code: string; data: unknown; prev: string };
      expect([body.type, body.code, body.prev]).toEqual([type, AUDIT_CODES[type], prev]);
      expect(body.data).toEqual(scrubSecrets(AUDIT_SAMPLES[type]));
      expect(rec.signature.toString('base64')).toBe(golden[i]!.sig);
      expect(verify(null, rec.payload, createPublicKey(KEY), rec.signature)).toBe(true);
      prev = rec.hash;
    });
  });

  it('writes exactly the documented members, in order, and signs the raw payload bytes', () => {
    const rec = sealRecord(auditEvent(AuditEvents.tokenRevoked, { kind: 'cli', id: 'root' }, { tokenId: 'tok-9' }), 42, 'ab'.repeat(32), TS, SIGNER);
    expect(rec.payload.toString('utf8')).toBe(
      '{"v":1,"seq":42,"ts":"2026-11-23T05:00:00.123Z","type":"token.revoked","code":"HR1002","actor":{"kind":"cli","id":"root"},"data":{"tokenId":"tok-9"},' +
        `"prev":"${'ab'.repeat(32)}","kid":"audit-test"}`,
    );
    expect(rec.hash).toBe(createHash('sha256').update(rec.payload).digest('hex'));
    expect(verify(null, rec.payload, createPublicKey(KEY), rec.signature)).toBe(true);
    expect(auditCode(AuditEvents.stepResult)).toBe('HR3003');
    expect(AUDIT_EVENT_TYPES).toEqual(Object.values(AuditEvents));
  });

  it('seals checkpoints in the documented shape', () => {
    const cp = sealCheckpoint(7, 'cd'.repeat(32), TS, SIGNER);
    expect(cp.payload.toString('utf8')).toBe(`{"v":1,"kind":"checkpoint","seq":7,"head":"${'cd'.repeat(32)}","ts":"2026-11-23T05:00:00.123Z","kid":"audit-test"}`);
    expect(verify(null, cp.payload, createPublicKey(KEY), cp.signature)).toBe(true);
  });

  it('refuses an event type outside the catalog', () => {
    const bogus = { type: 'made.up', actor: { kind: 'system', id: 'x' }, data: {} } as unknown as AuditEventInput;
    expect(() => sealRecord(bogus, 1, GENESIS_PREV, TS, SIGNER)).toThrow(/unknown audit event type "made.up"/);
  });
});

describe('secrets in audit data', () => {
  it.each([
    ['named members at any depth', { reason: 'x', db_pass: 'p', nested: [{ db_pass: 'q' }] }, ['db_pass'], { reason: 'x', db_pass: '********', nested: [{ db_pass: '********' }] }],
    ['nothing when no names are secret', { a: 'b' }, [], { a: 'b' }],
    ['only exact names', { Token: 'x', tok: 'y' }, ['tok'], { Token: 'x', tok: '********' }],
    ['non-string secrets too', { pin: 1234, list: ['a'] }, ['pin', 'list'], { pin: '********', list: '********' }],
  ])('maskSecrets masks %s', (_name, value, names, expected) => {
    expect(maskSecrets(value, names)).toEqual(expected);
  });

  it('maskSecrets does not change its input', () => {
    const v = { a: { secret: 's' } };
    maskSecrets(v, ['secret']);
    expect(v).toEqual({ a: { secret: 's' } });
  });

  it.each([
    ['exact secret names', { token: 'x', password: 'p', Secret: 's', privateKey: 'k' }, { token: '[redacted]', password: '[redacted]', Secret: '[redacted]', privateKey: '[redacted]' }],
    ['names ending in a secret word', { bootstrapToken: 'x', DB_PASSWORD: 'p', clientSecret: 's', HANDRAIL_OPT_API_KEY: 'k', awsCredentials: 'c' }, { bootstrapToken: '[redacted]', DB_PASSWORD: '[redacted]', clientSecret: '[redacted]', HANDRAIL_OPT_API_KEY: '[redacted]', awsCredentials: '[redacted]' }],
    ['at any depth', { a: 1, nested: [{ password: 'p', ok: 'y' }] }, { a: 1, nested: [{ password: '[redacted]', ok: 'y' }] }],
    ['keeping values an emit site already masked', { HANDRAIL_OPT_PASSWORD: '********' }, { HANDRAIL_OPT_PASSWORD: '********' }],
    ['not ids and digests of secrets', { tokenId: 'tok-1', keyId: 'audit-1', previousKeyId: null, secretEnv: ['X'] }, { tokenId: 'tok-1', keyId: 'audit-1', previousKeyId: null, secretEnv: ['X'] }],
    ['PEM private keys in any string', { note: '-----BEGIN PRIVATE KEY-----\nMC4=\n-----END PRIVATE KEY-----' }, { note: '[redacted]' }],
    ['Handrail tokens inside strings', { argv: ['curl', '-H', 'Authorization: Bearer hru_abcdefghijklmnopqrstuvwx'] }, { argv: ['curl', '-H', 'Authorization: Bearer [redacted]'] }],
    ['portal session secrets inside strings', { note: 'cookie hr_session=hrs_abcdefghijklmnopqrstuvwx' }, { note: 'cookie hr_session=[redacted]' }],
    ['webhook secrets inside strings', { note: 'secret was hrw_0123456789abcdefABCDEF_xyz' }, { note: 'secret was [redacted]' }],
    ['undefined members (as JSON would)', { a: undefined, b: 2 }, { b: 2 }],
  ])('scrubSecrets redacts %s', (_name, value, expected) => {
    expect(scrubSecrets(value)).toEqual(expected);
  });

  it('the append path never writes a secret, whatever event carries it', () => {
    const leaky = auditEvent(AuditEvents.executionRequested, { kind: 'user', id: 'alice' }, {
      executionId: 'exe-1',
      kind: 'runbook',
      runbookId: 'r',
      runbookDigest: null,
      options: { password: 'hunter2-hunter2', apiToken: 'hru_0123456789abcdefABCDEF', note: 'token hrt_0123456789abcdefABCDEF leaked' },
      targets: 'role=web',
    });
    const text = sealRecord(leaky, 1, GENESIS_PREV, TS, SIGNER).payload.toString('utf8');
    for (const s of ['hunter2', 'hru_0123456789', 'hrt_0123456789']) expect(text).not.toContain(s);
  });
});
