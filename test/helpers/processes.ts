/**
 * Test harness: real coordinator and agent processes (the built CLI in dist/), real
 * certificates, real ports on 127.0.0.1, and their structured logs for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The CLI as shipped (bin/handrail.js loads it): the bundle scripts/bundle-cli.mjs makes. */
export const CLI = join(ROOT, 'dist', 'cli-bundle', 'main.js');

/**
 * How long a wait may take before it fails. A backstop only: every wait here ends on an
 * observable state (a log line, a message, a row), never on time passing; this is sized for a
 * loaded 2-core CI box running several suites at once.
 */
export const BACKSTOP_MS = 45_000;

export interface LogLine {
  level: number;
  event?: string;
  msg?: string;
  [k: string]: unknown;
}

export async function workspace(prefix = 'hr-it-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `input`: written to the command's standard input (else it has none). */
export function cli(args: readonly string[], env: Record<string, string> = {}, cwd = ROOT, input?: string): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, HANDRAIL_LOG_LEVEL: 'warn', ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin?.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

/** Every process this test file started: when a test fails, failed-test-logs.ts prints their log tails. */
export const startedProcs: Proc[] = [];

export class Proc {
  readonly logs: LogLine[] = [];
  stderrText = '';
  private exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    startedProcs.push(this);
    let buf = '';
    child.stderr?.on('data', (d: Buffer) => {
      const s = d.toString();
      this.stderrText += s;
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) {
          try {
            this.logs.push(JSON.parse(line) as LogLine);
          } catch {
            // not a log line
          }
        }
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    // 'close', not 'exit': by then stderr is read to its end, so `logs` holds every line the process wrote.
    this.exited = new Promise((r) => child.on('close', (code) => r(code)));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** What was started, for people reading a failure: e.g. "coordinator --data-dir …" or "agent --name web-1 …". */
  get label(): string {
    const args = this.child.spawnargs.slice(1).filter((a) => a !== CLI);
    return args.slice(0, 6).join(' ');
  }

  /** Waits until some log line (or stderr text) satisfies `pred`. */
  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = BACKSTOP_MS, what = 'log line'): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr tail:\n${this.stderrText.slice(-3000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitForText(re: RegExp, timeoutMs = BACKSTOP_MS): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.stderrText);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; stderr tail:\n${this.stderrText.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  events(name: string): LogLine[] {
    return this.logs.filter((l) => l.event === name);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    this.kill(signal);
    const t = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  wait(): Promise<number | null> {
    return this.exited;
  }
}

export const AGENT_BIN = join(ROOT, 'bin', 'handrail-agent.js');

/** Runs an executable file as a user would (its #! line decides the interpreter and flags). */
export function spawnExecutable(file: string, args: readonly string[], env: Record<string, string> = {}): Proc {
  return new Proc(spawn(file, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] }));
}

export function spawnCli(args: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Proc(child);
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = BACKSTOP_MS, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
