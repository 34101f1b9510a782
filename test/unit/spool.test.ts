import { spawn } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../agent/spool.js';

const meta = (stepId: string) => ({ executionId: 'exe-1', stepId, startedAtMs: 1_000, pid: null, maxOutputBytes: 1024 });

describe('the result spool', () => {
  it('brings a step\'s pid and its identity back after a restart, from pid.json beside meta.json', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const spool = new Spool(root);
    const entry = await spool.begin(meta('s1'), new Uint8Array([1, 2, 3]));
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await entry.setPid(child.pid as number);
      const [again] = await new Spool(root).entries();
      expect(again?.meta.pid).toBe(child.pid);
      expect(again?.meta.processStart).toMatch(/^\d+$/);
      expect(again?.meta.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(again?.meta.stepId).toBe('s1');
      expect(Buffer.from(await again!.readRequest())).toEqual(Buffer.from([1, 2, 3]));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('keeps an entry whose pid.json is torn (a crash mid-write), without a pid', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const entry = await new Spool(root).begin(meta('s2'), new Uint8Array([9]));
    await writeFile(join(entry.dir, 'pid.json'), '{"pid":12');
    const [again] = await new Spool(root).entries();
    expect(again?.meta.stepId).toBe('s2');
    expect(again?.meta.pid).toBeNull();
  });

  it('hands back the signed result it wrote, and the same bytes after a restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const entry = await new Spool(root).begin(meta('s3'), new Uint8Array([7]));
    await entry.writeResult(new Uint8Array([4, 5, 6]));
    expect(Buffer.from((await entry.readResult())!)).toEqual(Buffer.from([4, 5, 6]));
    const [again] = await new Spool(root).entries();
    expect(Buffer.from((await again!.readResult())!)).toEqual(Buffer.from([4, 5, 6]));
  });

  it('removes an entry with everything in it, also files it does not know', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hr-spool-'));
    const spool = new Spool(root);
    const a = await spool.begin(meta('s4'), new Uint8Array([1]));
    await a.append('stdout', Buffer.from('out'));
    await a.setPid(process.pid);
    await a.writeResult(new Uint8Array([2]));
    await a.remove();
    const b = await spool.begin(meta('s5'), new Uint8Array([1]));
    await writeFile(join(b.dir, 'stray.tmp-123'), 'x');
    await b.remove();
    const c = await spool.begin(meta('s6'), new Uint8Array([1]));
    await c.append('stderr', Buffer.from('err'));
    await c.closeStreams();
    const [found] = await new Spool(root).entries(); // an entry found on disk after a restart
    await found!.remove();
    expect(await readdir(root)).toEqual([]);
    await a.remove(); // already gone: no error
  });
});
