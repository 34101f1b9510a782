/**
 * Runs one verified step as a child process and reports how it ended. Never throws for a step
 * failure: a command that cannot start is status 'error' with a message saying why.
 *
 * - No shell: argv goes to the kernel element by element (argv[0] is looked up on the PATH of
 *   the step's own environment, /usr/bin:/bin without one). A script body is written to a
 *   private temp file and run as [...interpreter, file]; the file is removed afterwards.
 * - The environment is exactly `spec.env`; nothing of the agent's own leaks in.
 * - stdin is /dev/null. The process leads its own group, and the group is what gets killed:
 *   on timeout, cancel or a failing sink, TERM and then, after the grace period if anything in
 *   the group survives, KILL. Once the main process has exited, whatever it left in its group
 *   is killed too (after PIPE_LINGER_MS if it still holds the output pipes), so a step never
 *   outlives its result. A daemon meant to stay must leave the group (setsid), as daemons do.
 * - Output: see output-capture.ts (ordered, capped, hashed, with backpressure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { OutputCapture, type OutputSink, type OutputStreamName, type StreamSummary } from './output-capture.js';
import { groupHasLiveMembers, signalGroup } from './process-group.js';
import { writeScriptFile, type ScriptFile } from './script-file.js';

export type { OutputSink, OutputStreamName, StreamSummary };

export interface RunSpec {
  /** The command, spawned without a shell. Exactly one of argv and script. */
  readonly argv?: readonly string[];
  /** A body run as [...interpreter, privateTempFile]. */
  readonly script?: { readonly interpreter: readonly string[]; readonly body: string };
  /** The complete environment of the child; the caller builds it. */
  readonly env: Readonly<Record<string, string>>;
  /** Must exist; the agent's working directory when absent. */
  readonly workingDir?: string;
  /** 0 = no limit. */
  readonly timeoutMs: number;
  /** Per stream: bytes captured, delivered and hashed; the rest is read, counted and dropped. */
  readonly maxOutputBytes: number;
  /** Time between TERM and KILL when the runner stops the group. @default 5000 */
  readonly killGraceMs?: number;
}

export type RunStatus = 'succeeded' | 'failed' | 'timed_out' | 'canceled' | 'error';

export interface RunResult {
  /**
   * succeeded: exit 0. failed: another exit code, or a signal the runner did not send.
   * timed_out / canceled: the runner stopped the group, whatever the exit status was then.
   * error: it could not start, or the sink failed (it was stopped).
   */
  readonly status: RunStatus;
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
  /** Aborting it cancels the step (status 'canceled'). */
  readonly signal?: AbortSignal;
  /** Wall clock for startedAtMs/finishedAtMs; timers do not use it. */
  readonly now?: () => number;
  readonly onStarted?: (pid: number) => void;
  /** Where script files are written. @default os.tmpdir() */
  readonly tempDir?: string;
}

export const DEFAULT_KILL_GRACE_MS = 5_000;
/** After the main process exits, how long what it left in its group may keep the pipes open. */
export const PIPE_LINGER_MS = 500;
/** How often the group is looked at while its members have their grace period after TERM. */
const GROUP_POLL_MS = 25;

type StopReason = 'timed_out' | 'canceled' | 'error';
type Outcome = { readonly code: number | null; readonly signal: NodeJS.Signals | null } | { readonly error: NodeJS.ErrnoException };

export async function runStep(spec: RunSpec, sink: OutputSink, options: RunOptions = {}): Promise<RunResult> {
  const now = options.now ?? Date.now;
  const startedAtMs = now();
  const notStarted = (status: 'error' | 'canceled', error: string): RunResult => ({
    status,
    exitCode: null,
    signal: null,
    startedAtMs,
    finishedAtMs: now(),
    pid: null,
    stdout: emptySummary(),
    stderr: emptySummary(),
    error,
  });

  const invalid = specProblem(spec);
  if (invalid) return notStarted('error', invalid);
  if (options.signal?.aborted) return notStarted('canceled', 'canceled before it started');
  // The working directory is looked at only when the spawn fails (spawn reports a missing cwd
  // as ENOENT, like a missing command): a stat before every step costs CPU for the rare case.
  let script: ScriptFile | undefined;
  if (spec.script) {
    try {
      script = await writeScriptFile(spec.script.body, options.tempDir ?? tmpdir());
    } catch (e) {
      return notStarted('error', `cannot write the script to a temporary file: ${errorMessage(e)}`);
    }
  }
  try {
    if (options.signal?.aborted) return notStarted('canceled', 'canceled before it started');
    const argv = script && spec.script ? [...spec.script.interpreter, script.path] : (spec.argv ?? []);
    const [command, ...args] = argv;
    if (command === undefined) return notStarted('error', 'step has no command');
    return await supervise(command, args, spec, sink, options, startedAtMs, now);
  } finally {
    await script?.remove();
  }
}

async function supervise(
  command: string,
  args: readonly string[],
  spec: RunSpec,
  sink: OutputSink,
  options: RunOptions,
  startedAtMs: number,
  now: () => number,
): Promise<RunResult> {
  const grace = spec.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  let stopReason: StopReason | undefined;
  let stopDetail = '';
  let mainExited = false;
  let graceEndsAt = Infinity;
  let killTimer: NodeJS.Timeout | undefined;
  let pid: number | undefined;

  const stop = (reason: StopReason, detail: string): void => {
    // Once the main process is gone its result stands; the leftovers are killed anyway.
    if (stopReason !== undefined || mainExited || pid === undefined) return;
    stopReason = reason;
    stopDetail = detail;
    graceEndsAt = performance.now() + grace;
    signalStep('SIGTERM');
    killTimer = setTimeout(() => signalStep('SIGKILL'), grace);
  };
  /** The whole group; the main process alone if the group cannot be signalled (should not happen). */
  const signalStep = (sig: NodeJS.Signals): void => {
    if (pid === undefined || signalGroup(pid, sig) || mainExited) return;
    child.kill(sig);
  };
  let sinkFailure: string | undefined;
  const onSinkError = (e: unknown): void => {
    sinkFailure ??= `output sink failed: ${errorMessage(e)}`;
    stop('error', sinkFailure);
  };
  const limit = Math.floor(spec.maxOutputBytes);
  const out = new OutputCapture('stdout', limit, sink, onSinkError);
  const err = new OutputCapture('stderr', limit, sink, onSinkError);

  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: spec.workingDir || undefined,
      env: { ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      windowsHide: true,
    });
  } catch (e) {
    // Synchronous refusals: NUL bytes in argv or env, a cwd that is not a directory, and the like.
    const cwdProblem = spec.workingDir ? await workingDirProblem(spec.workingDir) : undefined;
    return { ...notRun(startedAtMs, now), error: cwdProblem ?? `cannot start ${command}: ${errorMessage(e)}` };
  }
  const exited = new Promise<Outcome>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ error }));
  });
  out.attach(child.stdout);
  err.attach(child.stderr);
  pid = child.pid;

  if (pid === undefined) {
    const outcome = await exited;
    out.cut();
    err.cut();
    await Promise.all([out.done, err.done]);
    const cwdProblem = spec.workingDir ? await workingDirProblem(spec.workingDir) : undefined;
    const error = cwdProblem ?? ('error' in outcome ? await describeSpawnError(outcome.error, command) : `cannot start ${command}`);
    return { ...notRun(startedAtMs, now), error };
  }
  const group = pid;
  try {
    options.onStarted?.(group);
  } catch {
    // The caller's bookkeeping must not orphan a running process.
  }

  // setTimeout fires at once for delays over 2^31-1 ms: longer timeouts are clamped (about 24.8 days).
  const timeout = spec.timeoutMs > 0 ? setTimeout(() => stop('timed_out', `timed out after ${spec.timeoutMs} ms`), Math.min(spec.timeoutMs, 2_147_483_647)) : undefined;
  const onAbort = (): void => stop('canceled', 'canceled');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const outcome = await exited;
  mainExited = true;
  clearTimeout(timeout);
  options.signal?.removeEventListener('abort', onAbort);

  const streamsDone = Promise.all([out.done, err.done]);
  if (stopReason !== undefined) {
    // The group got TERM: the rest of it has what is left of the grace period to finish.
    await waitForGroupExit(group, graceEndsAt);
  } else {
    await Promise.race([streamsDone, sleep(PIPE_LINGER_MS)]);
  }
  clearTimeout(killTimer);
  signalGroup(group, 'SIGKILL');
  // Only a process that left the group can still hold a pipe now; don't wait on it for long.
  out.closeWhenQuiet(PIPE_LINGER_MS);
  err.closeWhenQuiet(PIPE_LINGER_MS);
  await streamsDone;

  const ended = {
    exitCode: 'error' in outcome ? null : outcome.code,
    signal: 'error' in outcome ? null : outcome.signal,
    startedAtMs,
    finishedAtMs: now(),
    pid: group,
    stdout: out.summary(),
    stderr: err.summary(),
  };
  if (stopReason !== undefined) return { ...ended, status: stopReason, error: stopDetail };
  // The output nobody stored would still be in the signed hash: not a success.
  if (sinkFailure !== undefined) return { ...ended, status: 'error', error: sinkFailure };
  if ('error' in outcome) return { ...ended, status: 'error', error: `process error: ${outcome.error.message}` };
  return { ...ended, status: outcome.code === 0 ? 'succeeded' : 'failed' };
}

function notRun(startedAtMs: number, now: () => number): RunResult {
  return { status: 'error', exitCode: null, signal: null, startedAtMs, finishedAtMs: now(), pid: null, stdout: emptySummary(), stderr: emptySummary() };
}

function emptySummary(): StreamSummary {
  return { sha256: createHash('sha256').digest(), capturedBytes: 0, totalBytes: 0, truncated: false };
}

function specProblem(spec: RunSpec): string | undefined {
  if (spec.argv && spec.script) return 'step has both a command and a script';
  if (spec.script) {
    if (spec.script.interpreter.length === 0 || !spec.script.interpreter[0]) return 'script step has no interpreter';
  } else if (!spec.argv || spec.argv.length === 0 || !spec.argv[0]) {
    return 'step has no command';
  }
  if (!(spec.timeoutMs >= 0) || !Number.isFinite(spec.timeoutMs)) return `invalid timeout: ${spec.timeoutMs}`;
  if (!(spec.maxOutputBytes >= 0) || !Number.isFinite(spec.maxOutputBytes)) return `invalid output limit: ${spec.maxOutputBytes}`;
  if (spec.killGraceMs !== undefined && (!(spec.killGraceMs >= 0) || !Number.isFinite(spec.killGraceMs))) return `invalid kill grace: ${spec.killGraceMs}`;
  return undefined;
}

/** Checked before spawning, because spawn reports a missing cwd as ENOENT, like a missing command. */
async function workingDirProblem(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return `working directory is not a directory: ${dir}`;
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `working directory does not exist: ${dir}`;
    if (code === 'ENOTDIR') return `working directory is not a directory: ${dir}`;
    return `cannot use working directory ${dir}: ${errorMessage(e)}`;
  }
}

async function describeSpawnError(e: NodeJS.ErrnoException, command: string): Promise<string> {
  switch (e.code) {
    case 'ENOENT':
      // A file that exists but fails with ENOENT names a missing interpreter in its #! line.
      if (command.includes('/') && (await stat(command).then(() => true, () => false))) return `interpreter of ${command} (its #! line) not found`;
      return `command not found: ${command}`;
    case 'EACCES':
      return `permission denied: ${command} (not executable, or a directory)`;
    case 'ENOEXEC':
      return `not an executable format: ${command}`;
    case 'E2BIG':
      return 'arguments and environment are too large';
    default:
      return `cannot start ${command}: ${e.message}`;
  }
}

async function waitForGroupExit(pgid: number, deadline: number): Promise<void> {
  while (performance.now() < deadline) {
    if (!(await groupHasLiveMembers(pgid))) return;
    await sleep(Math.min(GROUP_POLL_MS, Math.max(0, deadline - performance.now())));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
