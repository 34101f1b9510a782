import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { cli } from '../helpers/processes.js';
import { decodeStepResult, encodeStepResult } from '../../proto/codec/step-codec.js';
import { signPayload } from '../../core/envelope.js';
import { STEP_RESULT_TYPE } from '../../core/step.js';

interface Line {
  t?: string;
  seq?: number;
  kid?: string;
  payload?: string;
  sig?: string;
  [k: string]: unknown;
}

const SECRET = 'pa55-word-never-in-records';

/** Bundle lines as objects, with helpers to rewrite records the way an attacker with the coordinator's keys could. */
class Tamper {
  lines: Line[];
  constructor(text: string) {
    this.lines = text.trim().split('\n').map((l) => JSON.parse(l) as Line);
  }
  records(): Line[] {
    return this.lines.filter((l) => l.t === 'record');
  }
  record(seq: number): Line {
    return this.records().find((r) => r.seq === seq)!;
  }
  body(seq: number): Record<string, unknown> {
    return JSON.parse(Buffer.from(this.record(seq).payload!, 'base64').toString('utf8')) as Record<string, unknown>;
  }
  setBody(seq: number, body: Record<string, unknown>, key?: { kid: string; key: KeyObject }): void {
    const r = this.record(seq);
    const payload = Buffer.from(JSON.stringify(body));
    r.payload = payload.toString('base64');
    if (key) {
      r.kid = key.kid;
      r.sig = sign(null, payload, key.key).toString('base64');
    }
  }
  /** Re-links and re-signs every record from `seq` on (what a coordinator holding its audit key could do). */
  rechain(from: number, key: { kid: string; key: KeyObject }): void {
    const recs = this.records();
    for (const r of recs) {
      if (r.seq! < from) continue;
      const prevRec = recs.find((x) => x.seq === r.seq! - 1)!;
      const body = this.body(r.seq!);
      body['prev'] = createHash('sha256').update(Buffer.from(prevRec.payload!, 'base64')).digest('hex');
      body['kid'] = key.kid;
      this.setBody(r.seq!, body, key);
    }
  }
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  }
}

describe('audit records verify offline, and every tampering is caught at the right record', () => {
  let fleet: Fleet;
  let bundlePath: string;
  let original: string;
  let auditKey: { kid: string; key: KeyObject };
  let agentBKey: KeyObject;
  let resultSeq: number;
  let outputStep: string;

  const verify = async (text: string, extra: string[] = []): Promise<{ code: number; out: string }> => {
    const f = join(fleet.dir, `t-${Math.random().toString(36).slice(2)}.jsonl`);
    await writeFile(f, text);
    const r = await cli(['audit', 'verify', f, ...extra]);
    return { code: r.code, out: r.stdout + r.stderr };
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('a', { labels: 'role=web' });
    await fleet.startAgent('b', { labels: 'role=web' });
    const a = await fleet.waitOnline('a');
    await fleet.waitOnline('b');
    const r = await fleet.exec([a], { script: 'echo "output line"; echo "to stderr" >&2' });
    expect(r.state).toBe('succeeded');
    outputStep = r.steps[0]!.id;
    const withSecret = await fleet.api<{ executionId: string }>('POST', '/api/v1/executions', { runbook: 'echo-options', options: { message: 'hello', password: SECRET }, targets: 'name=a' });
    expect(withSecret.status).toBe(201);
    await fleet.waitExecution(withSecret.body.executionId);
    bundlePath = join(fleet.dir, 'bundle.jsonl');
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', bundlePath]);
    expect(ex.code, ex.stderr).toBe(0);
    original = await readFile(bundlePath, 'utf8');
    const dir = join(fleet.dataDir, 'keys', 'audit');
    const file = (await readdir(dir))[0]!;
    auditKey = { kid: file.replace(/\.key$/, ''), key: createPrivateKey(await readFile(join(dir, file), 'utf8')) };
    const b = await readFile(join(fleet.agents.get('b')!.stateDir, 'identity', 'agent.pem'), 'utf8');
    agentBKey = createPrivateKey(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(b)![0]);
    const t = new Tamper(original);
    resultSeq = t.records().find((x) => (t.body(x.seq!)['type'] === 'step.result') && ((t.body(x.seq!)['data'] as { stepRunId: string }).stepRunId === outputStep))!.seq!;
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('verifies an untouched bundle, and the live store', async () => {
    const r = await verify(original);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^OK: \d+ records .*agent-signed results/);
    const db = await cli(['audit', 'verify', '--data-dir', fleet.dataDir, '--certs-dir', fleet.certsDir]);
    expect(db.code, db.stdout + db.stderr).toBe(0);
    expect(db.stdout).toMatch(/\ntrusted audit key audit-[0-9a-f]{16} \(unpinned, trusted on first use at record 1: pass --trust-key audit-[0-9a-f]{16} to pin\)\n/);
  });

  it('never writes a secret option value into records or exports', async () => {
    expect(original).not.toContain(SECRET);
    expect(original).not.toContain(Buffer.from(SECRET).toString('base64'));
    const t = new Tamper(original);
    const decoded = t.records().map((r) => Buffer.from(r.payload!, 'base64').toString('utf8')).join('\n');
    expect(decoded).not.toContain(SECRET);
    expect(decoded).toMatch(/"password":"(\*{8}|\[redacted\])"/);
    expect(decoded).toContain('"HANDRAIL_OPT_PASSWORD":"********"');
  });

  it('names the record when one byte of it changes', async () => {
    const t = new Tamper(original);
    const r = t.record(5);
    const p = Buffer.from(r.payload!, 'base64');
    const at = p.indexOf('"ts":"') + 10;
    p[at] = (p[at] as number) ^ 1;
    r.payload = p.toString('base64');
    const v = await verify(t.text());
    expect(v.code).toBe(1);
    expect(v.out).toMatch(/FAILED at record 5: coordinator signature does not verify/);
  });

  it('names the record whose signature changed', async () => {
    const t = new Tamper(original);
    const s = Buffer.from(t.record(7).sig!, 'base64');
    s[0] = (s[0] as number) ^ 0xff;
    t.record(7).sig = s.toString('base64');
    expect((await verify(t.text())).out).toMatch(/FAILED at record 7: coordinator signature/);
  });

  it('detects changed stored output against the digest the agent signed', async () => {
    const t = new Tamper(original);
    const out = t.lines.find((l) => l.t === 'output' && l['stepRunId'] === outputStep && l['stream'] === 'stdout')!;
    out['data'] = Buffer.from('output LINE\n').toString('base64');
    expect((await verify(t.text())).out).toMatch(new RegExp(`FAILED at record ${resultSeq}: stored stdout does not match the SHA-256 the agent signed`));
  });

  it('detects a deleted record', async () => {
    const t = new Tamper(original);
    t.lines = t.lines.filter((l) => !(l.t === 'record' && l.seq === 6));
    expect((await verify(t.text())).out).toMatch(/FAILED at record 7: expected record 6 next, found 7: record 6 is missing/);
  });

  it('detects two records swapped', async () => {
    const t = new Tamper(original);
    const i = t.lines.findIndex((l) => l.t === 'record' && l.seq === 8);
    [t.lines[i], t.lines[i + 1]] = [t.lines[i + 1]!, t.lines[i]!];
    expect((await verify(t.text())).out).toMatch(/FAILED at record 9: (expected record 8 next, found 9|record 9 is out of order)/);
  });

  it('detects a truncated tail only against a checkpoint kept elsewhere', async () => {
    const cp = await fleet.admin(['audit', 'checkpoint']);
    expect(cp.code, cp.stderr).toBe(0);
    const cpFile = join(fleet.dir, 'checkpoints.jsonl');
    await writeFile(cpFile, cp.stdout);
    const t = new Tamper(original);
    const last = t.records().at(-1)!.seq!;
    t.lines = t.lines.filter((l) => !(l.t === 'record' && l.seq! > last - 3) && l.t !== 'checkpoint');
    const alone = await verify(t.text());
    expect(alone.code, alone.out).toBe(0); // a shortened log is still a valid log on its own...
    const against = await verify(t.text(), ['--checkpoints', cpFile]);
    expect(against.code).toBe(1); // ...but not against a checkpoint kept outside it
    expect(against.out).toMatch(/log truncated: a checkpoint signed at .* covers record \d+, but the log ends at \d+/);
  });

  it('detects a result replaced by one signed with another agent\'s key, even when the coordinator re-signs the log', async () => {
    const t = new Tamper(original);
    const body = t.body(resultSeq);
    const data = body['data'] as Record<string, string>;
    const result = decodeStepResult(Buffer.from(data['payload']!, 'base64'));
    const forged = encodeStepResult({ ...result, exitCode: 0, stdoutSha256: createHash('sha256').update('all good\n').digest(), stdoutBytes: 9 });
    data['payload'] = Buffer.from(forged).toString('base64');
    data['signature'] = signPayload(STEP_RESULT_TYPE, forged, agentBKey).toString('base64');
    t.setBody(resultSeq, body, auditKey);
    t.rechain(resultSeq + 1, auditKey);
    const v = await verify(t.text());
    expect(v.out).toMatch(new RegExp(`FAILED at record ${resultSeq}: agent signature does not verify with agt-[a-z0-9]+'s certificate`));
  });

  it('detects a record re-signed with an unknown key', async () => {
    const t = new Tamper(original);
    const rogue = { kid: 'audit-0000000000000000', key: generateKeyPairSync('ed25519').privateKey };
    const body = t.body(4);
    body['actor'] = { kind: 'user', id: 'someone-else' };
    body['kid'] = rogue.kid;
    t.setBody(4, body, rogue);
    expect((await verify(t.text())).out).toMatch(/FAILED at record 4: signed with an unknown key audit-0000000000000000/);
  });

  it('keeps verifying records signed before and after an audit key rotation', async () => {
    const rot = await fleet.admin(['audit', 'rotate-key']);
    expect(rot.code, rot.stderr).toBe(0);
    await fleet.coordinator!.proc.stop();
    await fleet.startCoordinator();
    const a = fleet.agents.get('a')!;
    await a.proc.waitForLog((l) => l.event === 'agent.connected' && a.proc.events('agent.connected').length >= 2);
    const r = await fleet.exec([a.agentId!], { argv: ['echo', 'after rotation'] });
    expect(r.state).toBe('succeeded');
    const out = join(fleet.dir, 'rotated.jsonl');
    expect((await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', out])).code).toBe(0);
    const v = await cli(['audit', 'verify', out, '--json']);
    expect(v.code, v.stdout).toBe(0);
    const report = JSON.parse(v.stdout) as { keysUsed: string[]; trust: { keys: Array<{ kid: string; how: string; by: string | null }> } };
    expect(report.keysUsed.length).toBe(2);
    // The new key is trusted through the key.rotated record, which the retiring key signed.
    expect(report.trust.keys).toEqual([
      { kid: auditKey.kid, how: 'first-use', seq: 1, by: null },
      { kid: report.keysUsed[1], how: 'rotation', seq: expect.any(Number) as unknown, by: auditKey.kid },
    ]);
    const pinned = await cli(['audit', 'verify', out, '--trust-key', auditKey.kid]);
    expect(pinned.code, pinned.stdout).toBe(0);
    // A tail re-signed with a key the header lists, but no trusted key introduced, is refused.
    const t = new Tamper(await readFile(out, 'utf8'));
    const header = t.lines[0]!;
    const rogue = generateKeyPairSync('ed25519');
    const spki = rogue.publicKey.export({ type: 'spki', format: 'der' });
    const rogueKey = { kid: `audit-${createHash('sha256').update(spki).digest('hex').slice(0, 16)}`, key: rogue.privateKey };
    (header['keys'] as unknown[]).push({ kid: rogueKey.kid, alg: 'ed25519', spki: spki.toString('base64'), created: new Date().toISOString(), retired: null });
    t.lines = t.lines.filter((l) => l.t !== 'checkpoint');
    t.rechain(5, rogueKey);
    const resigned = await verify(t.text());
    expect(resigned.code).toBe(1);
    expect(resigned.out).toMatch(new RegExp(`FAILED at record 5: signed with key ${rogueKey.kid}, which is not trusted`));
  });

  it('exports one execution\'s records and they verify', async () => {
    const out = join(fleet.dir, 'one.jsonl');
    const ids = new Tamper(original).records().map((r) => (JSON.parse(Buffer.from(r.payload!, 'base64').toString()) as { data: { executionId?: string } }).data.executionId).filter(Boolean);
    const ex = await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--execution', ids[0]!, '--out', out]);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stderr).toContain(`verify it with: handrail audit verify ${out} --execution ${ids[0]!}`);
    const v = await cli(['audit', 'verify', out, '--execution', ids[0]!]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^OK: \\d+ records \\(seq \\d+\\.\\.\\d+, the records of execution ${ids[0]!}\\)`));
    // Its header says it is a selection, but that is not signed: asked for the whole log, it fails.
    expect((await cli(['audit', 'verify', out])).code).toBe(1);
  });

  it('refuses a full export cut short and relabelled as a range in its header, against a checkpoint kept elsewhere', async () => {
    const cpFile = join(fleet.dir, 'checkpoints-relabel.jsonl');
    const cp = await fleet.admin(['audit', 'checkpoint']);
    await writeFile(cpFile, cp.stdout);
    const full = join(fleet.dir, 'full-now.jsonl');
    expect((await fleet.admin(['audit', 'export', '--certs-dir', fleet.certsDir, '--out', full])).code).toBe(0);
    const t = new Tamper(await readFile(full, 'utf8'));
    const last = (JSON.parse(Buffer.from((JSON.parse(cp.stdout) as { checkpoint: string }).checkpoint, 'base64').toString('utf8')) as { seq: number }).seq;
    const keep = last - 5;
    t.lines = t.lines.filter((l) => !(l.t === 'record' && l.seq! > keep) && l.t !== 'checkpoint');
    t.lines[0] = { ...t.lines[0]!, toHead: false, selection: { from: null, to: new Date().toISOString(), execution: null } };
    const relabelled = await verify(t.text(), ['--checkpoints', cpFile]);
    expect(relabelled.code, relabelled.out).toBe(1);
    expect(relabelled.out).toMatch(new RegExp(`FAILED at the log as a whole: log truncated: a checkpoint signed at .* covers record ${last}, but the log ends at ${keep}`));
    const asked = await verify(t.text(), ['--checkpoints', cpFile, '--range', `1..${keep}`]);
    expect(asked.code, asked.out).toBe(0);
    expect(asked.out).toMatch(new RegExp(`WARNING: a checkpoint from --checkpoints .* covers record ${last}, past the end of the range 1\\.\\.${keep}: not checked`));
  });
});
