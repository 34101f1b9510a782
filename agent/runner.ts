/**
 * Runs one verified step as a child process: argv without a shell (or a script file run by a
 * named interpreter), its own process group, stdin closed, output read in order per stream
 * with backpressure, SHA-256 over exactly the captured bytes, capped capture, and the whole
 * group killed (TERM, then KILL) on timeout or cancel. Never throws for a step failure.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export type OutputStreamName = 'stdout' | 'stderr';

export interface RunSpec {
  readonly argv?: readonly string[];
  readonly script?: { readonly interpreter: readonly string[]; readonly body: string };
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  /** 0 = no limit. */
  readonly timeoutMs: number;
  /** Per stream: bytes captured, delivered and hashed; the rest is read, counted and dropped. */
  readonly maxOutputBytes: number;
  readonly killGraceMs?: number;
}

/** Receives captured output in order per stream; a returned promise pauses that stream until it settles. */
export type OutputSink = (stream: OutputStreamName, offset: number, data: Buffer) => void | Promise<void>;

export interface StreamSummary {
  readonly sha256: Buffer;
  readonly capturedBytes: number;
  readonly totalBytes: number;
  readonly truncated: boolean;
}

export interface RunResult {
  readonly status: 'succeeded' | 'failed' | 'timed_out' | 'canceled' | 'error';
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly pid: number | null;
  readonly stdout: StreamSummary;
  readonly stderr: StreamSummary;
  readonly error?: string;
}

export interface RunOptions {
  readonly signal?: AbortSignal;
  readonly now?: () => number;
  readonly onStarted?: (pid: number) => void;
}

/** After the main process exits, how long to wait for grandchildren to release the pipes. */
const PIPE_LINGER_MS = 500;

class Capture {
  private readonly hash = createHash('sha256');
  captured = 0;
  total = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly name: OutputStreamName,
    private readonly max: number,
    private readonly sink: OutputSink,
  ) {}

  attach(stream: Readable, onDone: () => void): void {
    stream.on('data', (chunk: Buffer) => {
      this.total += chunk.length;
      if (this.captured >= this.max) return;
      const take = chunk.length <= this.max - this.captured ? chunk : chunk.subarray(0, this.max - this.captured);
      const offset = this.captured;
      this.captured += take.length;
      this.hash.update(take);
      let pending: void | Promise<void>;
      try {
        pending = this.sink(this.name, offset, take);
      } catch {
        pending = undefined;
      }
      if (pending && typeof (pending as Promise<void>).then === 'function') {
        stream.pause();
        this.chain = this.chain.then(() => pending as Promise<void>).catch(() => undefined);
        this.chain.then(() => stream.resume(), () => stream.resume());
      }
    });
    stream.on('end', onDone);
    stream.on('close', onDone);
    stream.on('error', onDone);
  }

  async settle(): Promise<StreamSummary> {
    await this.chain;
    return { sha256: this.hash.digest(), capturedBytes: this.captured, totalBytes: this.total, truncated: this.total > this.captured };
  }
}

function emptySummary(): StreamSummary {
  return { sha256: createHash('sha256').digest(), capturedBytes: 0, totalBytes: 0, truncated: false };
}

export async function runStep(spec: RunSpec, sink: OutputSink, options: RunOptions = {}): Promise<RunResult> {
  const now = options.now ?? Date.now;
  const startedAtMs = now();
  const failed = (error: string): RunResult => ({
    status: 'error',
    exitCode: null,
    signal: null,
    startedAtMs,
    finishedAtMs: now(),
    pid: null,
    stdout: emptySummary(),
    stderr: emptySummary(),
    error,
  });
  if (options.signal?.aborted) return { ...failed('canceled before it started'), status: 'canceled' };

  let argv: readonly string[];
  let scriptDir: string | undefined;
  if (spec.script) {
    if (spec.script.interpreter.length === 0) return failed('script step has no interpreter');
    scriptDir = await mkdtemp(join(tmpdir(), 'handrail-step-'));
    const file = join(scriptDir, 'step.script');
    await writeFile(file, spec.script.body, { mode: 0o700 });
    argv = [...spec.script.interpreter, file];
  } else {
    argv = spec.argv ?? [];
  }
  try {
    if (argv.length === 0) return failed('step has no command');
    return await runProcess(argv, spec, sink, options, startedAtMs, now);
  } finally {
    if (scriptDir) await rm(scriptDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function runProcess(argv: readonly string[], spec: RunSpec, sink: OutputSink, options: RunOptions, startedAtMs: number, now: () => number): Promise<RunResult> {
  return new Promise((resolve) => {
    const [command, ...args] = argv as [string, ...string[]];
    const child = spawn(command, args, {
      cwd: spec.workingDir || undefined,
      env: { ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
    const out = new Capture('stdout', spec.maxOutputBytes, sink);
    const err = new Capture('stderr', spec.maxOutputBytes, sink);
    let killedFor: 'timed_out' | 'canceled' | undefined;
    let spawnError: Error | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let open = 2;
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    const grace = spec.killGraceMs ?? 5_000;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const stop = (why: 'timed_out' | 'canceled'): void => {
      if (killedFor || finished) return;
      killedFor = why;
      killGroup('SIGTERM');
      timers.push(setTimeout(() => killGroup('SIGKILL'), grace));
    };
    const onAbort = (): void => stop('canceled');

    const finish = async (): Promise<void> => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener('abort', onAbort);
      // Leave nothing of the group behind (daemonized grandchildren included).
      killGroup('SIGKILL');
      const [stdout, stderr] = await Promise.all([out.settle(), err.settle()]);
      const base = { startedAtMs, finishedAtMs: now(), pid: child.pid ?? null, stdout, stderr };
      if (spawnError) {
        resolve({ ...base, status: 'error', exitCode: null, signal: null, error: describeSpawnError(spawnError, command, spec.workingDir) });
        return;
      }
      const code = exit?.code ?? null;
      const signal = exit?.signal ?? null;
      if (killedFor) {
        resolve({ ...base, status: killedFor, exitCode: code, signal, error: killedFor === 'timed_out' ? `timed out after ${spec.timeoutMs} ms` : 'canceled' });
        return;
      }
      resolve({ ...base, status: code === 0 ? 'succeeded' : 'failed', exitCode: code, signal });
    };
    const maybeDone = (): void => {
      if (exit && open === 0) void finish();
    };
    let streamsClosed = { stdout: false, stderr: false };
    const closed = (name: 'stdout' | 'stderr') => (): void => {
      if (streamsClosed[name]) return;
      streamsClosed = { ...streamsClosed, [name]: true };
      open--;
      maybeDone();
    };

    child.on('error', (e) => {
      spawnError = e;
      exit = exit ?? { code: null, signal: null };
      open = 0;
      void finish();
    });
    if (child.stdout) out.attach(child.stdout, closed('stdout'));
    if (child.stderr) err.attach(child.stderr, closed('stderr'));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      if (open > 0) {
        // A grandchild may hold the pipes open forever; give it a moment, then end the group.
        timers.push(
          setTimeout(() => {
            killGroup('SIGKILL');
            child.stdout?.destroy();
            child.stderr?.destroy();
            open = 0;
            void finish();
          }, PIPE_LINGER_MS),
        );
      }
      maybeDone();
    });
    if (child.pid !== undefined) {
      options.onStarted?.(child.pid);
      if (spec.timeoutMs > 0) timers.push(setTimeout(() => stop('timed_out'), spec.timeoutMs));
      if (options.signal) options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

function describeSpawnError(e: Error & { code?: string }, command: string, cwd: string | undefined): string {
  switch (e.code) {
    case 'ENOENT':
      return cwd ? `command not found: ${command} (or working directory ${cwd} does not exist)` : `command not found: ${command}`;
    case 'EACCES':
      return `permission denied: ${command}`;
    case 'ENOTDIR':
      return `working directory is not a directory: ${cwd ?? ''}`;
    default:
      return `cannot start ${command}: ${e.message}`;
  }
}
