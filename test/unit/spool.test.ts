import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../agent/spool.js';
import { StepJournal } from '../../agent/step-journal.js';

const meta = (stepId: string) => ({ executionId: 'exe-1', stepId, startedAtMs: 1_000, maxOutputBytes: 1024 });
const FUTURE = 10 ** 13;

/** A spool over a fresh journal in `root`, loaded as the agent loads it at start-up. */
async function openSpool(root: string): Promise<{ spool: Spool; journal: StepJournal }> {
  await mkdir(join(root, 'spool'), { recursive: true });
  const journal = new StepJournal(join(root, 'journal.log'));
  await journal.load(0, { noncesFile: join(root, 'nonces.log'), spoolDir: join(root, 'spool') });
  return { spool: new Spool(join(root, 'spool'), journal), journal };
}

describe('the result spool', () => {
  it("brings a step's request, pid and the pid's identity back after a restart without a clean close", async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const { spool } = await openSpool(root);
    const entry = await spool.begin(meta('s1'), new Uint8Array([1, 2, 3]), randomBytes(16), FUTURE);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await entry.setPid(child.pid as number);
      const [again] = await (await openSpool(root)).spool.entries();
      expect(again?.meta.pid).toBe(child.pid);
      expect(again?.meta.processStart).toMatch(/^\d+$/);
      expect(again?.meta.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(again?.meta.stepId).toBe('s1');
      expect(Buffer.from(await again!.readRequest())).toEqual(Buffer.from([1, 2, 3]));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('hands back the signed result it wrote, and the same bytes after a restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const entry = await (await openSpool(root)).spool.begin(meta('s3'), new Uint8Array([7]), randomBytes(16), FUTURE);
    await entry.writeResult(new Uint8Array([4, 5, 6]));
    expect(Buffer.from((await entry.readResult())!)).toEqual(Buffer.from([4, 5, 6]));
    const [again] = await (await openSpool(root)).spool.entries();
    expect(Buffer.from((await again!.readResult())!)).toEqual(Buffer.from([4, 5, 6]));
  });

  it('keeps output in files made at the first byte, and removes them and the step on removal', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const { spool } = await openSpool(root);
    const quiet = await spool.begin(meta('s4'), new Uint8Array([1]), randomBytes(16), FUTURE);
    expect(await readdir(join(root, 'spool'))).toEqual([]); // no output, no directory
    const chatty = await spool.begin(meta('s5'), new Uint8Array([1]), randomBytes(16), FUTURE);
    await chatty.append('stdout', Buffer.from('out'));
    await chatty.append('stdout', Buffer.from('put'));
    await chatty.closeStreams();
    await quiet.remove();
    // After a restart: the output is read back from its file, and goes with the step.
    const [again, ...rest] = await (await openSpool(root)).spool.entries();
    expect(rest).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const c of again!.readOutput('stdout')) chunks.push(c.data);
    expect(Buffer.concat(chunks).toString()).toBe('output');
    await again!.remove();
    expect(await readdir(join(root, 'spool'))).toEqual([]);
    expect(await (await openSpool(root)).spool.entries()).toEqual([]);
    await again!.remove(); // already gone: no error
  });

  it('removes output left by a step the journal let go of (acknowledged just before a crash)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const { spool, journal } = await openSpool(root);
    const entry = await spool.begin(meta('s6'), new Uint8Array([1]), randomBytes(16), FUTURE);
    await entry.append('stderr', Buffer.from('err'));
    await entry.closeStreams();
    await journal.done('0'.repeat(32)); // not held: nothing happens
    await journal.done(entry.dir.slice(-32));
    expect(await readdir(join(root, 'spool'))).toHaveLength(1);
    expect(await (await openSpool(root)).spool.entries()).toEqual([]);
    expect(await readdir(join(root, 'spool'))).toEqual([]);
  });

  it('sets a refused result aside with its request, meta and output, and never hands it back', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const { spool } = await openSpool(root);
    const entry = await spool.begin(meta('s7'), new Uint8Array([3]), randomBytes(16), FUTURE);
    await entry.append('stdout', Buffer.from('kept'));
    await entry.writeResult(new Uint8Array([8]));
    await entry.setAside();
    const dir = join(root, 'spool', 'refused', entry.dir.slice(-32));
    expect((await readdir(dir)).sort()).toEqual(['meta.json', 'request.bin', 'result.bin', 'stdout']);
    expect(await readFile(join(dir, 'stdout'), 'utf8')).toBe('kept');
    expect(JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'))).toMatchObject({ stepId: 's7' });
    expect(await (await openSpool(root)).spool.entries()).toEqual([]);
  });

  it('sets aside a refused result of a step found on disk that wrote no output', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const entry = await (await openSpool(root)).spool.begin(meta('s8'), new Uint8Array([3]), randomBytes(16), FUTURE);
    await entry.writeResult(new Uint8Array([8]));
    const [found] = await (await openSpool(root)).spool.entries(); // after a restart
    await found!.setAside();
    expect((await readdir(join(root, 'spool', 'refused', entry.dir.slice(-32)))).sort()).toEqual(['meta.json', 'request.bin', 'result.bin']);
  });

  it('takes over the spool entries and nonces.log an older agent left, and removes the old files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const spoolDir = join(root, 'spool');
    const key = 'ab'.repeat(16);
    await mkdir(join(spoolDir, key), { recursive: true });
    await writeFile(join(spoolDir, key, 'meta.json'), JSON.stringify({ executionId: 'exe-old', stepId: 'old-1', startedAtMs: 5, pid: null, maxOutputBytes: 64 }));
    await writeFile(join(spoolDir, key, 'request.bin'), Buffer.from([1, 1]));
    await writeFile(join(spoolDir, key, 'pid.json'), JSON.stringify({ pid: 4242, processStart: '77', bootId: 'b' }));
    await writeFile(join(spoolDir, key, 'result.bin'), Buffer.from([2, 2]));
    await writeFile(join(spoolDir, key, 'stdout'), 'old output');
    const halfMade = 'cd'.repeat(16); // an old entry that never got its meta.json: its step never started
    await mkdir(join(spoolDir, halfMade));
    await writeFile(join(spoolDir, halfMade, 'request.bin'), Buffer.from([9]));
    const oldNonce = randomBytes(16);
    await writeFile(join(root, 'nonces.log'), `pruned-through 3\n${oldNonce.toString('hex')} ${FUTURE}\n`);

    const { spool, journal } = await openSpool(root);
    expect(journal.has(oldNonce)).toBe(true);
    expect(journal.prunedThroughMs).toBe(3);
    const [old] = await spool.entries();
    expect(old?.meta).toMatchObject({ executionId: 'exe-old', stepId: 'old-1', pid: 4242, processStart: '77', bootId: 'b' });
    expect(Buffer.from((await old!.readResult())!)).toEqual(Buffer.from([2, 2]));
    expect(await readdir(join(spoolDir, key))).toEqual(['stdout']);
    expect(await readdir(spoolDir)).toEqual([key]);
    expect(await readdir(root)).not.toContain('nonces.log');
    // And from the journal alone, on the next start.
    const again = await openSpool(root);
    expect(again.journal.has(oldNonce)).toBe(true);
    expect((await again.spool.entries()).map((e) => e.meta.stepId)).toEqual(['old-1']);
  });
});
