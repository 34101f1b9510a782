/**
 * agent/runner.ts with real child processes: exit status, argv and env passed verbatim, working
 * directory, scripts, spawn errors, and the captured output (order, offsets, cap, hash).
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, type RunSpec } from '../../agent/runner.js';
import { MAX_SINK_CHUNK } from '../../agent/output-capture.js';
import { BACKSTOP_MS } from '../helpers/processes.js';
import { PATH_ENV, isRunning, recordingSink, waitUntil } from '../helpers/runner-sink.js';

const NODE = process.execPath;
// Made at load time: the spawn-error table below names paths inside it.
const dir = mkdtempSync(join(tmpdir(), 'hr-runner-'));

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function spec(argv: readonly string[], extra: Partial<RunSpec> = {}): RunSpec {
  // No step timeout: none of these tests is about one, and a loaded machine must not turn a slow step into 'timed_out'.
  return { argv, env: PATH_ENV, timeoutMs: 0, maxOutputBytes: 1 << 20, ...extra };
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

describe('exit status', () => {
  it('exit 0 is succeeded, with pid and times', async () => {
    const rec = recordingSink();
    let started: number | undefined;
    const r = await runStep(spec(['true']), rec.sink, { onStarted: (pid) => (started = pid) });
    expect(r.status).toBe('succeeded');
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.error).toBeUndefined();
    expect(r.pid).toBeGreaterThan(1);
    expect(started).toBe(r.pid);
    expect(r.finishedAtMs).toBeGreaterThanOrEqual(r.startedAtMs);
    expect(r.stdout).toEqual({ sha256: sha256(''), capturedBytes: 0, totalBytes: 0, truncated: false });
  });

  it('a non-zero exit code is failed and reported', async () => {
    const r = await runStep(spec(['sh', '-c', 'exit 3']), recordingSink().sink);
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeNull();
  });

  it('a signal the runner did not send is failed, with the signal', async () => {
    const r = await runStep(spec(['sh', '-c', 'kill -USR1 $$']), recordingSink().sink);
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGUSR1');
  });

  it('uses the injected clock for its times', async () => {
    let t = 1_000;
    const r = await runStep(spec(['true']), recordingSink().sink, { now: () => (t += 5) });
    expect(r.startedAtMs).toBe(1_005);
    expect(r.finishedAtMs).toBeGreaterThan(1_005);
  });
});

describe('no shell: argv and env reach the child verbatim', () => {
  it('hostile argv elements arrive as they were given and nothing is interpreted', async () => {
    const marker = join(dir, 'pwned');
    const hostile = [
      'two words',
      'a;touch ' + marker,
      '$(touch ' + marker + ')',
      '`touch ' + marker + '`',
      'line1\nline2',
      "'single'",
      '"double"',
      '*',
      '',
      '${HOME}',
      'back\\slash',
      '|&><',
      '--flag=ü ñ',
      '   ',
    ];
    const rec = recordingSink();
    const r = await runStep(spec([NODE, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', ...hostile]), rec.sink);
    expect(r.status).toBe('succeeded');
    expect(JSON.parse(rec.text('stdout'))).toEqual(hostile);
    expect(existsSync(marker)).toBe(false);
  });

  it('the environment is exactly the one given (nothing of the agent leaks)', async () => {
    process.env.HANDRAIL_TEST_AGENT_SECRET = 'must-not-leak';
    try {
      const env = { ...PATH_ENV, PLAIN: 'x', WEIRD: 'a b;$(id)\n`x` "q"', EMPTY: '' };
      const rec = recordingSink();
      const r = await runStep({ ...spec(['env', '-0']), env }, rec.sink);
      expect(r.status).toBe('succeeded');
      const seen = Object.fromEntries(
        rec
          .text('stdout')
          .split('\0')
          .filter((l) => l !== '')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(seen).toEqual(env);
    } finally {
      delete process.env.HANDRAIL_TEST_AGENT_SECRET;
    }
  });

  it('argv[0] is looked up on the PATH of the step environment, not the agent one', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'hr-only-here'), '#!/bin/sh\necho found-it\n', { mode: 0o755 });
    const rec = recordingSink();
    const r = await runStep({ ...spec(['hr-only-here']), env: { PATH: `${bin}:/usr/bin:/bin` } }, rec.sink);
    expect(r.status).toBe('succeeded');
    expect(rec.text('stdout')).toBe('found-it\n');
    const missing = await runStep(spec(['hr-only-here']), recordingSink().sink);
    expect(missing.status).toBe('error');
    expect(missing.error).toBe('command not found: hr-only-here');
  });

  it('runs in the given working directory', async () => {
    const rec = recordingSink();
    const r = await runStep(spec(['pwd'], { workingDir: dir }), rec.sink);
    expect(r.status).toBe('succeeded');
    expect(rec.text('stdout')).toBe(`${await realpath(dir)}\n`);
  });

  it('stdin is /dev/null', async () => {
    const rec = recordingSink();
    const r = await runStep(spec(['sh', '-c', 'cat; readlink /proc/self/fd/0']), rec.sink);
    expect(r.status).toBe('succeeded');
    expect(rec.text('stdout')).toBe('/dev/null\n');
  });
});

describe('scripts', () => {
  it('runs a body with /bin/sh from a private temp file that is removed afterwards', async () => {
    const tempDir = await mkdtemp(join(dir, 'tmp-'));
    const rec = recordingSink();
    const body = 'set -e\necho "file=$0"\nstat -c %a "$0" "$(dirname "$0")"\necho "arg-free: $#"\nexit 4\n';
    const r = await runStep({ script: { interpreter: ['/bin/sh'], body }, env: PATH_ENV, timeoutMs: 0, maxOutputBytes: 4096 }, rec.sink, { tempDir });
    expect(r.status).toBe('failed');
    expect(r.exitCode).toBe(4);
    const [fileLine, fileMode, dirMode, args] = rec.text('stdout').trimEnd().split('\n');
    const file = fileLine?.slice('file='.length) ?? '';
    expect(file.startsWith(join(tempDir, 'handrail-step-'))).toBe(true);
    expect(fileMode).toBe('600');
    expect(dirMode).toBe('700');
    expect(args).toBe('arg-free: 0');
    expect(existsSync(file)).toBe(false);
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('runs a body with node, the interpreter given as argv with options', async () => {
    const rec = recordingSink();
    const body = 'const s = "$(not a shell)"; process.stdout.write(JSON.stringify({ s, n: 6 * 7 }));';
    const r = await runStep({ script: { interpreter: [NODE, '--no-warnings'], body }, env: {}, timeoutMs: 0, maxOutputBytes: 4096 }, rec.sink);
    expect(r.status).toBe('succeeded');
    expect(JSON.parse(rec.text('stdout'))).toEqual({ s: '$(not a shell)', n: 42 });
  });

  it('removes the script file when the interpreter cannot start', async () => {
    const tempDir = await mkdtemp(join(dir, 'tmp-'));
    const r = await runStep({ script: { interpreter: ['no-such-interpreter'], body: 'x' }, env: PATH_ENV, timeoutMs: 0, maxOutputBytes: 0 }, recordingSink().sink, { tempDir });
    expect(r.status).toBe('error');
    expect(r.error).toBe('command not found: no-such-interpreter');
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('a script directory that cannot be written is an error, not a throw', async () => {
    const r = await runStep({ script: { interpreter: ['/bin/sh'], body: 'true' }, env: PATH_ENV, timeoutMs: 0, maxOutputBytes: 0 }, recordingSink().sink, { tempDir: join(dir, 'missing', 'deeper') });
    expect(r.status).toBe('error');
    expect(r.error).toMatch(/^cannot write the script to a temporary file: ENOENT/);
  });
});

describe('spawn errors become status error with a clear message', () => {
  const plainFile = join(dir, 'not-executable');
  const badShebang = join(dir, 'bad-shebang');
  beforeAll(async () => {
    await writeFile(plainFile, 'echo hi\n', { mode: 0o644 });
    await writeFile(badShebang, '#!/no/such/interpreter\n');
    await chmod(badShebang, 0o755);
  });

  const cases: Array<[string, () => RunSpec, string | RegExp]> = [
    ['command not on PATH', () => spec(['hr-no-such-command']), 'command not found: hr-no-such-command'],
    ['absolute path that does not exist', () => spec(['/no/such/bin']), 'command not found: /no/such/bin'],
    ['file without the exec bit', () => spec([plainFile]), `permission denied: ${plainFile} (not executable, or a directory)`],
    ['a directory', () => spec([dir]), `permission denied: ${dir} (not executable, or a directory)`],
    ['missing #! interpreter', () => spec([badShebang]), `interpreter of ${badShebang} (its #! line) not found`],
    ['missing working directory', () => spec(['true'], { workingDir: join(dir, 'nope') }), `working directory does not exist: ${join(dir, 'nope')}`],
    ['working directory is a file', () => spec(['true'], { workingDir: plainFile }), `working directory is not a directory: ${plainFile}`],
    ['NUL byte in argv', () => spec(['echo', 'a\0b']), /^cannot start echo: .*null bytes/],
    ['NUL byte in env', () => ({ ...spec(['true']), env: { A: 'a\0b' } }), /^cannot start true: .*null bytes/],
    ['empty argv', () => spec([]), 'step has no command'],
    ['empty command', () => spec(['']), 'step has no command'],
    ['argv and script', () => ({ ...spec(['true']), script: { interpreter: ['/bin/sh'], body: '' } }), 'step has both a command and a script'],
    ['script without interpreter', () => ({ script: { interpreter: [], body: '' }, env: {}, timeoutMs: 0, maxOutputBytes: 0 }), 'script step has no interpreter'],
    ['negative timeout', () => spec(['true'], { timeoutMs: -1 }), 'invalid timeout: -1'],
    ['NaN output limit', () => spec(['true'], { maxOutputBytes: Number.NaN }), 'invalid output limit: NaN'],
  ];
  it.each(cases)('%s', async (_name, make, message) => {
    const rec = recordingSink();
    const r = await runStep(make(), rec.sink);
    expect(r.status).toBe('error');
    expect(r.pid).toBeNull();
    expect(r.exitCode).toBeNull();
    if (typeof message === 'string') expect(r.error).toBe(message);
    else expect(r.error).toMatch(message);
    expect(rec.calls).toEqual([]);
    expect(r.stdout.sha256).toEqual(sha256(''));
  });

  it('an already aborted signal cancels before anything starts', async () => {
    const ac = new AbortController();
    ac.abort();
    let started = false;
    const r = await runStep(spec(['true']), recordingSink().sink, { signal: ac.signal, onStarted: () => (started = true) });
    expect(r.status).toBe('canceled');
    expect(r.pid).toBeNull();
    expect(started).toBe(false);
  });
});

describe('output capture', () => {
  it('delivers both streams in order with contiguous offsets, in pieces of at most 64 KiB', async () => {
    // Interleaved writes of numbered lines: each stream must arrive complete and in order.
    const program = `
      const fs = require('node:fs');
      for (let i = 0; i < 20000; i++) {
        fs.writeSync(1, 'out ' + i + '\\n');
        if (i % 7 === 0) fs.writeSync(2, 'err ' + i + '\\n');
      }
      fs.writeSync(1, Buffer.alloc(300 * 1024, 0x61));`;
    const rec = recordingSink();
    const r = await runStep(spec([NODE, '-e', program]), rec.sink);
    expect(r.status).toBe('succeeded');
    const expectedOut = Array.from({ length: 20000 }, (_, i) => `out ${i}\n`).join('') + 'a'.repeat(300 * 1024);
    const expectedErr = Array.from({ length: 20000 }, (_, i) => i)
      .filter((i) => i % 7 === 0)
      .map((i) => `err ${i}\n`)
      .join('');
    expect(rec.text('stdout')).toBe(expectedOut);
    expect(rec.text('stderr')).toBe(expectedErr);
    expect(r.stdout).toEqual({ sha256: sha256(expectedOut), capturedBytes: expectedOut.length, totalBytes: expectedOut.length, truncated: false });
    expect(r.stderr.sha256).toEqual(sha256(expectedErr));
    expect(Math.max(...rec.calls.map((c) => c.length))).toBeLessThanOrEqual(MAX_SINK_CHUNK);
    expect(rec.calls.every((c) => c.length > 0)).toBe(true);
  });

  it('caps each stream: the prefix is captured and hashed, the rest counted', async () => {
    // 1 MiB of non-repeating bytes on stdout, 10 bytes on stderr; cap 100,000 (inside a chunk).
    const program = `
      const fs = require('node:fs');
      const b = Buffer.alloc(1 << 20);
      for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
      fs.writeSync(1, b);
      fs.writeSync(2, '0123456789');`;
    const all = Buffer.alloc(1 << 20);
    for (let i = 0; i < all.length; i++) all[i] = (i * 31 + (i >> 8)) & 0xff;
    const rec = recordingSink();
    const r = await runStep(spec([NODE, '-e', program], { maxOutputBytes: 100_000 }), rec.sink);
    expect(r.status).toBe('succeeded');
    expect(rec.bytes('stdout').equals(all.subarray(0, 100_000))).toBe(true);
    expect(r.stdout).toEqual({ sha256: sha256(all.subarray(0, 100_000)), capturedBytes: 100_000, totalBytes: 1 << 20, truncated: true });
    expect(r.stderr).toEqual({ sha256: sha256('0123456789'), capturedBytes: 10, totalBytes: 10, truncated: false });
  });

  it('output exactly at the cap is not truncated; a cap of 0 captures nothing but counts', async () => {
    const exact = await runStep(spec(['printf', '12345'], { maxOutputBytes: 5 }), recordingSink().sink);
    expect(exact.stdout).toEqual({ sha256: sha256('12345'), capturedBytes: 5, totalBytes: 5, truncated: false });
    const rec = recordingSink();
    const none = await runStep(spec(['printf', '12345'], { maxOutputBytes: 0 }), rec.sink);
    expect(none.stdout).toEqual({ sha256: sha256(''), capturedBytes: 0, totalBytes: 5, truncated: true });
    expect(rec.calls).toEqual([]);
  });

  it('a sink that throws stops the step: status error, the process group killed', async () => {
    // One write, so the first (failing) delivery is exactly it however the reads fall. The kill
    // grace outlasts the test: the step can only end because TERM stopped the group.
    const r = await runStep(spec(['sh', '-c', 'echo tick; exec sleep 1000'], { killGraceMs: 600_000 }), () => {
      throw new Error('disk full');
    });
    expect(r.status).toBe('error');
    expect(r.error).toBe('output sink failed: disk full');
    expect(r.signal).toBe('SIGTERM');
    expect(r.stdout.capturedBytes).toBe(5);
    expect(r.stdout.sha256).toEqual(sha256('tick\n'));
  });

  it('a sink whose promise rejects stops the step the same way', async () => {
    let calls = 0;
    const given: Buffer[] = [];
    const r = await runStep(spec(['sh', '-c', 'while :; do echo tick; sleep 0.01; done']), async (_s, _o, data) => {
      calls++;
      given.push(Buffer.from(data));
      if (calls === 3) throw new Error('spool write failed');
    });
    expect(r.status).toBe('error');
    expect(r.error).toBe('output sink failed: spool write failed');
    expect(calls).toBe(3);
    // How many ticks each read holds depends on scheduling; what counts is that exactly what the
    // sink was given (the failing piece too) is what is counted and hashed, and nothing after it.
    const all = Buffer.concat(given);
    expect(all.toString()).toMatch(/^(tick\n)+$/);
    expect(r.stdout.capturedBytes).toBe(all.length);
    expect(r.stdout.sha256).toEqual(sha256(all));
  });

  it('a sink failing after the process exited still fails the step', async () => {
    let pid = 0;
    // The sink holds its piece until the process is gone (dead or a zombie), then fails.
    const afterExit = async (): Promise<void> => {
      await waitUntil(() => pid > 0 && !isRunning(pid), BACKSTOP_MS, 'the step to exit');
      throw new Error('late');
    };
    const r = await runStep(spec(['echo', 'done']), afterExit, { onStarted: (p) => (pid = p) });
    expect(r.exitCode).toBe(0);
    expect(r.status).toBe('error');
    expect(r.error).toBe('output sink failed: late');
  });
});
