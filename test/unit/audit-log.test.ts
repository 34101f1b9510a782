import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../coordinator/audit/audit-log.js';
import { parseBundle, parseCheckpointLine } from '../../coordinator/audit/bundle.js';
import { AuditEvents, auditEvent, type AuditEventInput } from '../../coordinator/audit/events.js';
import { verifyBundleFile, verifyDatabase, writeBundleFile } from '../../coordinator/audit/export.js';
import { openDataDir, STORE_FILE, type DataDir } from '../../coordinator/data-dir.js';
import { Keyring } from '../../coordinator/pki/keyring.js';
import { Database } from '../../coordinator/store/database.js';
import { filler, flipByte, resultEvent, T0, testPki } from '../helpers/audit-fixture.js';

let dir: string;
let data: DataDir;
let clock: number;
const now = (): number => clock;
const dbPath = (): string => join(dir, 'data', STORE_FILE);
const seqs = async (db: Database): Promise<number[]> => (await db.all<{ seq: number }>('SELECT seq FROM audit_records ORDER BY seq')).map((r) => r.seq);
const userCreated = (name: string): AuditEventInput => auditEvent(AuditEvents.userCreated, { kind: 'cli', id: 'root' }, { user: name, groups: [] });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hr-audit-log-'));
  clock = T0;
  data = await openDataDir(join(dir, 'data'), now);
});
afterEach(async () => {
  await data.close();
  await rm(dir, { recursive: true, force: true });
});

describe('appending', () => {
  it('commits a record together with the state change it describes, or neither', async () => {
    await data.db.write(async (tx) => {
      await tx.run('INSERT INTO users (name, created_at) VALUES (?, ?)', ['alice', clock]);
      await data.audit.append(tx, userCreated('alice'));
    });
    await expect(
      data.db.write(async (tx) => {
        await tx.run('INSERT INTO users (name, created_at) VALUES (?, ?)', ['bob', clock]);
        await data.audit.append(tx, userCreated('bob'));
        throw new Error('the state change failed after its record was appended');
      }),
    ).rejects.toThrow(/state change failed/);
    const [rec] = await data.db.write((tx) => data.audit.append(tx, userCreated('carol')));
    expect(rec?.seq).toBe(2);
    expect((await data.db.all<{ name: string }>('SELECT name FROM users')).map((u) => u.name)).toEqual(['alice']);
    expect(await seqs(data.db)).toEqual([1, 2]);
    expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
  });

  it('keeps the head between its own commits, and catches another process appending in between', async () => {
    // A second connection and log over the same store, as an admin CLI command has.
    const other = await Database.open(dbPath());
    const otherLog = new AuditLog(other, await Keyring.open(other, join(dir, 'data', 'keys')), now);
    try {
      await data.db.write((tx) => data.audit.append(tx, [filler(0), filler(1), filler(2)]));
      await other.write((tx) => otherLog.append(tx, [filler(3), filler(4)]));
      // This log's head in memory is stale (seq 3): its record collides on seq 4, the
      // transaction rolls back and runs again on the head in the store; its state change once.
      await data.db.write(async (tx) => {
        await tx.run('INSERT INTO users (name, created_at) VALUES (?, ?)', ['alice', clock]);
        await data.audit.append(tx, filler(5));
      });
      await other.write((tx) => otherLog.append(tx, filler(6)));
      // The same through db.batch, many callers in one group.
      await Promise.all(Array.from({ length: 20 }, (_, i) => data.db.batch((tx) => data.audit.append(tx, filler(7 + i)))));
      await other.write((tx) => otherLog.append(tx, filler(27)));
    } finally {
      await other.close();
    }
    expect(await seqs(data.db)).toEqual(Array.from({ length: 28 }, (_, i) => i + 1));
    expect((await data.db.all<{ name: string }>('SELECT name FROM users')).map((u) => u.name)).toEqual(['alice']);
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad).toBeUndefined();
    expect(r.records).toBe(28);
  });

  it('keeps chaining from its head in memory when records vanish under it, and from the store once told to forget it', async () => {
    await data.db.write((tx) => data.audit.append(tx, [filler(0), filler(1), filler(2), filler(3)]));
    await data.db.write((tx) => tx.run('DELETE FROM audit_records WHERE seq > 2'));
    // A log cut short under a running coordinator stays cut: the next record names the lost head.
    await data.db.write((tx) => data.audit.append(tx, filler(4)));
    expect(await seqs(data.db)).toEqual([1, 2, 5]);
    expect((await verifyDatabase(dbPath(), testPki().caPem)).firstBad?.seq).toBe(5);
    await data.db.write((tx) => tx.run('DELETE FROM audit_records WHERE seq > 2'));
    data.audit.forgetHead();
    await data.db.write((tx) => data.audit.append(tx, filler(5)));
    expect(await seqs(data.db)).toEqual([1, 2, 3]);
    expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
  });

  it('chains appends started concurrently in one transaction, and those of many db.batch callers', async () => {
    await data.db.write(async (tx) => {
      await Promise.all([data.audit.append(tx, [filler(0), filler(1)]), data.audit.append(tx, filler(2)), data.audit.append(tx, [filler(3), filler(4)])]);
    });
    await Promise.all(Array.from({ length: 200 }, (_, i) => data.db.batch((tx) => data.audit.append(tx, filler(i)))));
    expect(await seqs(data.db)).toEqual(Array.from({ length: 205 }, (_, i) => i + 1));
    expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
  });

  it('a refused event leaves no partial chain, and the transaction can go on', async () => {
    const bogus = { type: 'made.up', actor: { kind: 'system', id: 'x' }, data: {} } as unknown as AuditEventInput;
    await data.db.write(async (tx) => {
      await data.audit.append(tx, filler(0));
      await expect(data.audit.append(tx, [filler(1), bogus])).rejects.toThrow(/unknown audit event type/);
      await data.audit.append(tx, filler(2));
    });
    expect(await seqs(data.db)).toEqual([1, 2]);
    expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
  });

  it('keeps records before and after keyring.rotate("audit") verifiable: the retiring key signs the key.rotated record', async () => {
    await data.db.write((tx) => data.audit.append(tx, filler(0)));
    const retiring = data.keyring.active('audit');
    const before = retiring.keyId;
    const after = (await data.keyring.rotate('audit', clock)).keyId;
    await data.db.write((tx) => data.audit.appendSignedWith(tx, retiring, auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'audit', previousKeyId: before, keyId: after })));
    await data.db.write((tx) => data.audit.append(tx, filler(1)));
    const rows = await data.db.all<{ key_id: string }>('SELECT key_id FROM audit_records ORDER BY seq');
    expect(rows.map((r) => r.key_id)).toEqual([before, before, after]);
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad).toBeUndefined();
    expect(r.keysUsed).toEqual([before, after]);
    expect(r.trust.keys.map((k) => [k.kid, k.how])).toEqual([[before, 'first-use'], [after, 'rotation']]);
  });

  it('does not trust a new key announced by a key.rotated record that the new key signed itself', async () => {
    await data.db.write((tx) => data.audit.append(tx, filler(0)));
    const before = data.keyring.active('audit').keyId;
    const after = (await data.keyring.rotate('audit', clock)).keyId;
    await data.db.write((tx) => data.audit.append(tx, auditEvent(AuditEvents.keyRotated, { kind: 'cli', id: 'root' }, { purpose: 'audit', previousKeyId: before, keyId: after })));
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad?.seq).toBe(2);
    expect(r.firstBad?.reason).toMatch(/not trusted: .*signed with it, not with the previous key/);
    expect((await verifyDatabase(dbPath(), testPki().caPem, { trust: { keyIds: [before, after] } })).ok).toBe(true);
  });
});

describe('checkpoints', () => {
  it('signs the head, prints it as one line, and exposes a store cut short', async () => {
    await data.db.write((tx) => data.audit.append(tx, [filler(0), filler(1), filler(2), filler(3)]));
    clock = T0 + 60_000;
    const line = await data.audit.checkpoint();
    const cp = parseCheckpointLine(line);
    expect(JSON.parse(cp.payload.toString())).toMatchObject({ v: 1, kind: 'checkpoint', seq: 4, head: (await data.audit.head()).hash, ts: new Date(clock).toISOString(), kid: data.keyring.active('audit').keyId });

    await data.db.write((tx) => tx.run('DELETE FROM audit_records WHERE seq > 2'));
    const stored = await verifyDatabase(dbPath(), testPki().caPem);
    expect(stored.firstBad).toEqual({ seq: null, reason: expect.stringMatching(/^log truncated: a checkpoint signed at .* covers record 4, but the log ends at 2$/) as unknown });

    // Whoever cut the log can delete the stored checkpoints too: then only a copy kept elsewhere tells.
    await data.db.write((tx) => tx.run('DELETE FROM audit_checkpoints'));
    expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
    const against = await verifyDatabase(dbPath(), testPki().caPem, { externalCheckpoints: [cp] });
    expect(against.firstBad?.reason).toMatch(/^log truncated/);
  });
});

describe('store verification with agent results', () => {
  async function seedResult(): Promise<number> {
    const { a } = testPki();
    const cert = a.der.replace(/(.{64})/g, '$1\n').trim();
    await data.db.write(async (tx) => {
      await tx.run('INSERT INTO agents (id, name, enrolled_at, cert_serial, cert_not_after) VALUES (?, ?, ?, ?, ?)', [a.id, 'a', T0, a.serial, T0 + 86_400_000]);
      await tx.run('INSERT INTO agent_certificates (serial, agent_id, fingerprint256, not_before, not_after, certificate_pem, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [a.serial, a.id, 'x', T0, T0, `-----BEGIN CERTIFICATE-----\n${cert}\n-----END CERTIFICATE-----\n`, T0]);
      await tx.run("INSERT INTO executions (id, kind, requested_by, state, created_at) VALUES ('exe-1', 'adhoc', 'alice', 'succeeded', ?)", [T0]);
      await tx.run("INSERT INTO step_runs (id, execution_id, agent_id, step_index, name, state) VALUES ('sr-1', 'exe-1', ?, 0, 'echo', 'succeeded')", [a.id]);
      // Output arrives in pieces; the verifier concatenates them by offset.
      await tx.run("INSERT INTO step_output (step_run_id, stream, offset, data, received_at) VALUES ('sr-1', 1, 6, ?, ?), ('sr-1', 1, 0, ?, ?), ('sr-1', 2, 0, ?, ?)", [Buffer.from('world\n'), T0, Buffer.from('hello '), T0, Buffer.from('careful\n'), T0]);
      await data.audit.append(tx, [filler(0), resultEvent(a, { executionId: 'exe-1', stepRunId: 'sr-1', stdout: 'hello world\n', stderr: 'careful\n' }), filler(1)]);
    });
    return 2;
  }

  it('checks the agent signature, certificate and stored output of every result', async () => {
    await seedResult();
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad).toBeUndefined();
    expect(r).toMatchObject({ ok: true, scope: 'full', records: 3, stepResults: 1, outputsChecked: 2 });
  });

  it('names the result whose stored output was changed', async () => {
    const seq = await seedResult();
    await data.db.write((tx) => tx.run("UPDATE step_output SET data = ? WHERE step_run_id = 'sr-1' AND stream = 1 AND offset = 6", [Buffer.from('World\n')]));
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad).toEqual({ seq, reason: expect.stringMatching(/^stored stdout does not match the SHA-256 the agent signed/) as unknown });
  });

  it('names the record changed in the store', async () => {
    await seedResult();
    const row = await data.db.get<{ payload: Buffer }>('SELECT payload FROM audit_records WHERE seq = 3');
    await data.db.write((tx) => tx.run('UPDATE audit_records SET payload = ? WHERE seq = 3', [flipByte(row?.payload ?? Buffer.alloc(0), 30)]));
    const r = await verifyDatabase(dbPath(), testPki().caPem);
    expect(r.firstBad).toEqual({ seq: 3, reason: expect.stringMatching(/^coordinator signature does not verify/) as unknown });
  });
});

describe('exports', () => {
  const SECRET = 'hunter2-never-in-a-record';

  async function seedExecutions(): Promise<void> {
    for (let i = 0; i < 30; i++) {
      clock = T0 + i * 60_000;
      const exe = `exe-${i % 3}`;
      await data.db.write((tx) =>
        data.audit.append(tx, [
          auditEvent(AuditEvents.executionRequested, { kind: 'user', id: 'alice' }, { executionId: exe, kind: 'runbook', runbookId: 'r', runbookDigest: 'ab'.repeat(32), options: { reason: 'x', password: SECRET, db_token: SECRET }, targets: 'role=web' }),
          auditEvent(AuditEvents.executionCompleted, { kind: 'system', id: 'coordinator' }, { executionId: exe, state: 'succeeded' }),
        ]),
      );
    }
    await data.audit.checkpoint();
  }

  it('a whole export verifies and holds no secret', async () => {
    await seedExecutions();
    const file = join(dir, 'all.jsonl');
    await writeBundleFile(data.db, testPki().caPem, {}, clock, file);
    const text = await readFile(file, 'utf8');
    const b = await parseBundle(text);
    const decoded = b.records.map((r) => r.payload.toString('utf8')).join('\n');
    expect(decoded).not.toContain(SECRET);
    expect(text).not.toContain(SECRET);
    expect(decoded).toContain('"password":"[redacted]","db_token":"[redacted]"');
    const r = await verifyBundleFile(file);
    expect(r).toMatchObject({ ok: true, scope: 'full', records: 60, checkpoints: 1 });
  });

  it('one execution\'s records verify as a selection', async () => {
    await seedExecutions();
    const file = join(dir, 'exe-1.jsonl');
    await writeBundleFile(data.db, testPki().caPem, { executionId: 'exe-1' }, clock, file);
    const b = await parseBundle(await readFile(file, 'utf8'));
    expect(b.records.map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, k) => [6 * k + 3, 6 * k + 4]).flat());
    const r = await verifyBundleFile(file, { expect: { kind: 'execution', executionId: 'exe-1' } });
    expect(r.firstBad).toBeUndefined();
    expect(r).toMatchObject({ ok: true, scope: 'selection', records: 20, unchecked: [] });
    // Only its records' checkpoints are exported: none here (the one checkpoint covers record 60, of exe-2).
    expect(b.checkpoints).toEqual([]);
    // The header's word that this is a selection is not taken: asked for the whole log, it fails.
    expect((await verifyBundleFile(file)).firstBad).toEqual({ seq: 3, reason: 'expected record 1 next, found 3: records 1-2 are missing' });
  });

  it('a time range verifies, starting from the hash of the record before it', async () => {
    await seedExecutions();
    const file = join(dir, 'range.jsonl');
    await writeBundleFile(data.db, testPki().caPem, { fromMs: T0 + 10 * 60_000, toMs: T0 + 19 * 60_000 }, clock, file);
    const b = await parseBundle(await readFile(file, 'utf8'));
    const before = await data.db.get<{ hash: string }>('SELECT hash FROM audit_records WHERE seq = 20');
    expect(b.header.first).toEqual({ seq: 21, prev: before?.hash });
    expect(b.header.toHead).toBe(false);
    expect(b.checkpoints).toEqual([]);
    const r = await verifyBundleFile(file, { expect: { kind: 'range', from: 21, to: 40 } });
    expect(r.firstBad).toBeUndefined();
    expect(r).toMatchObject({ ok: true, scope: 'range', records: 20, firstSeq: 21, lastSeq: 40, unchecked: [] });
    expect((await verifyBundleFile(file)).hint).toMatch(/--range 21\.\.40 only if/);
  });
});

describe('the signing worker', () => {
  it('a worker that fails is logged once, and every record is still signed and verifies', async () => {
    const lines: Array<{ event?: string; level?: number; err?: { message?: string } }> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
    const audit = new AuditLog(data.db, data.keyring, now, { log, signer: { workerSource: "throw new Error('broken worker')" } });
    const failed = (): typeof lines => lines.filter((l) => l.event === 'audit.signing_worker_failed');
    try {
      // Batches large enough to be split with the worker (the first one starts it); the worker
      // fails as it starts, which is reported on its own, a little later.
      let n = 0;
      for (let i = 0; i < 500 && failed().length === 0; i++) {
        await data.db.write((tx) => audit.append(tx, Array.from({ length: 40 }, (_, k) => filler(n + k))));
        n += 40;
        if (failed().length === 0) await new Promise((r) => setTimeout(r, 10));
      }
      expect(failed()).toHaveLength(1);
      expect(failed()[0]?.level).toBe(40);
      expect(failed()[0]?.err?.message).toMatch(/broken worker/);
      // From then on this thread signs everything, and says so no more.
      await data.db.write((tx) => audit.append(tx, Array.from({ length: 100 }, (_, k) => filler(n + k))));
      expect(failed()).toHaveLength(1);
      expect((await verifyDatabase(dbPath(), testPki().caPem)).ok).toBe(true);
    } finally {
      await audit.close();
    }
  });
});
