/**
 * Runs verified steps: checks each envelope (core/step-check.ts) and the local policy, spools,
 * spawns through the runner, streams output with backpressure, signs the result with the
 * agent's own key, and delivers it until the coordinator acknowledges it.
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { checkStepEnvelope } from '../core/step-check.js';
import { sha256, signPayload } from '../core/envelope.js';
import { STEP_RESULT_TYPE, type Envelope, type RejectReason, type StepRequest, type StepResult, type StepStatus } from '../core/step.js';
import { checkLocalPolicy, type LocalPolicy } from '../core/local-policy.js';
import { decodeStepRequest, decodeStepResult, encodeStepResult, rejectReasonToWire } from '../proto/codec/step-codec.js';
import { OutputStream, SignedResult, type ConnectRequest } from '../proto/gen/handrail/v1/gateway.js';
import { processIdentity, type Spool, type SpoolEntry, type SpoolMeta, type StreamName } from './spool.js';
import type { StepJournal } from './step-journal.js';
import { runStep, type RunResult } from './runner.js';

/** The current stream to the coordinator, if any. */
export interface Link {
  readonly generation: number;
  /** Resolves when the message is handed to the stream (after 'drain' if it was full). */
  send(msg: ConnectRequest): Promise<void>;
}

export interface SigningIdentity {
  readonly agentId: string;
  readonly privateKey: KeyObject;
  readonly serial: string;
}

export interface ExecutorDeps {
  readonly identity: () => SigningIdentity;
  readonly dispatchKeys: () => ReadonlyMap<string, KeyObject>;
  /** Resolves when the key sets offered so far are judged (DispatchTrust.settled). */
  readonly dispatchKeysSettled?: () => Promise<void>;
  readonly localPolicy: () => LocalPolicy;
  /** The replay log: the nonces of steps taken on or refused after their checks. */
  readonly nonces: Pick<StepJournal, 'has' | 'add' | 'prunedThroughMs'>;
  readonly spool: Spool;
  readonly link: () => Link | undefined;
  readonly log: Logger;
  readonly now: () => number;
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly defaultWorkingDir: string;
  /** Where script files are written (inside the state dir, so a crash leaves nothing in /tmp). */
  readonly tempDir: string;
  readonly maxConcurrentSteps: number;
  readonly killGraceMs: number;
}

/** The abort reason of steps stopped because the agent is shutting down (not a cancel). */
const SHUTDOWN = Symbol('agent shutdown');

export const INTERRUPTED_ERROR = 'interrupted: the agent was stopped before the step finished (its processes got TERM, then KILL); the coordinator runs the step again when the agent is back';

export interface DrainSummary {
  /** Steps that finished on their own during the grace period. */
  readonly finished: number;
  /** Steps stopped when the grace period ran out (reported as `interrupted`). */
  readonly interrupted: number;
}

interface Running {
  readonly request: StepRequest;
  readonly entry: SpoolEntry;
  readonly abort: AbortController;
  readonly startGeneration: number | undefined;
  needsResend: boolean;
}

export class StepExecutor {
  private readonly running = new Map<string, Running>();
  /** Finished, signed, not yet acknowledged. */
  private readonly unacked = new Map<string, SpoolEntry>();
  /** Signed results the disk could not take: delivered from memory. */
  private readonly inMemory = new Map<string, Uint8Array>();
  private readonly delivering = new Set<string>();
  /** Steps past their checks but not yet running: they hold a slot. */
  private readonly starting = new Set<string>();
  /** Cancels that arrived before their step (or for a step never received): refused when it comes. */
  private readonly canceledEarly = new Map<string, number>();
  private idleWaiters: Array<() => void> = [];
  /** Set when the agent stops: steps that arrive after that are turned away as busy. */
  private stopping = false;
  /** Ends a drain's grace period early (a second stop signal). */
  private interruptNowFn: (() => void) | undefined;
  private deliveredWaiters: Array<() => void> = [];

  constructor(private readonly d: ExecutorDeps) {}

  get runningCount(): number {
    return this.running.size;
  }

  get spooledCount(): number {
    return this.unacked.size;
  }

  /** At start-up: finished results to deliver, and steps an agent restart interrupted. */
  async recover(): Promise<void> {
    for (const entry of await this.d.spool.entries()) {
      try {
        await this.recoverOne(entry);
      } catch (e) {
        // A damaged entry or a full disk must not stop the agent from starting.
        this.d.log.error({ event: 'spool.recover_failed', stepRunId: entry.meta.stepId, err: e }, 'could not recover a spooled step');
      }
    }
  }

  private async recoverOne(entry: SpoolEntry): Promise<void> {
    {
      const result = await entry.readResult();
      if (result) {
        this.unacked.set(entry.meta.stepId, entry);
        return;
      }
      await killLeftover(entry.meta);
      const request = decodeStepRequest(await entry.readRequest());
      const summary = async (s: StreamName): Promise<{ sha: Buffer; bytes: number }> => {
        const h = createHash('sha256');
        let bytes = 0;
        for await (const c of entry.readOutput(s)) {
          h.update(c.data);
          bytes += c.data.length;
        }
        return { sha: h.digest(), bytes };
      };
      const out = await summary('stdout');
      const err = await summary('stderr');
      const now = this.d.now();
      await this.seal(entry, request, {
        status: 'error',
        exitCode: -1,
        signal: '',
        startedAtMs: entry.meta.startedAtMs,
        finishedAtMs: now,
        stdout: { sha: out.sha, bytes: out.bytes, truncated: false },
        stderr: { sha: err.sha, bytes: err.bytes, truncated: false },
        error: 'the agent restarted while this step was running; its process was stopped',
      });
      this.d.log.warn({ event: 'step.interrupted', executionId: request.executionId, stepRunId: request.stepId }, 'step interrupted by an agent restart');
    }
  }

  /** A new stream is up: hand over everything finished but unacknowledged. */
  onConnected(): void {
    for (const r of this.running.values()) r.needsResend = true;
    for (const [stepId, entry] of this.unacked) this.background(this.deliver(stepId, entry, true), 'result.deliver_failed', stepId);
  }

  /** The coordinator stored the result (or, with `refused`, never will: it is set aside, not resent). */
  acknowledge(stepId: string, refused = ''): void {
    this.inMemory.delete(stepId);
    const entry = this.unacked.get(stepId);
    if (!entry) return;
    this.unacked.delete(stepId);
    this.checkDelivered();
    if (refused) {
      this.d.log.error({ event: 'step.result_refused_by_coordinator', stepRunId: stepId, reason: refused }, `the coordinator refused this result: ${refused}; kept in the spool's refused/ folder`);
      void entry.setAside().catch((e: unknown) => this.d.log.error({ event: 'spool.set_aside_failed', stepRunId: stepId, err: e }, 'setting a refused result aside failed'));
      return;
    }
    void entry.remove().catch((e: unknown) => this.d.log.error({ event: 'spool.remove_failed', stepRunId: stepId, err: e }, 'removing a spool entry failed'));
  }

  cancel(stepId: string, executionId = ''): void {
    const r = this.running.get(stepId);
    if (r) {
      this.d.log.info({ event: 'step.cancel', executionId: r.request.executionId, stepRunId: stepId }, 'cancel requested');
      r.abort.abort();
      return;
    }
    if (this.unacked.has(stepId)) return; // finished already: its result is on its way
    // Not started (or never received): remember, so the step is refused if it arrives later.
    this.canceledEarly.set(stepId, this.d.now());
    if (this.canceledEarly.size > 10_000) this.canceledEarly.delete(this.canceledEarly.keys().next().value as string);
    if (!this.starting.has(stepId)) this.background(this.reject({ executionId, stepId }, 'canceled', 'canceled before it started on this agent'), 'step.reject_failed', stepId);
  }

  /**
   * The agent is stopping: nothing new starts (steps offered now are turned away as busy, and
   * the coordinator offers them again later), running steps get up to `graceMs` to finish, and
   * whatever still runs then is stopped and reported as `interrupted` — an agent shutdown, which
   * the coordinator does not count as the step failing. Resolves once no step runs.
   */
  async drain(graceMs: number): Promise<DrainSummary> {
    this.stopping = true;
    const busy = this.running.size + this.starting.size;
    this.d.log.info({ event: 'agent.shutdown_started', running: this.running.size, starting: this.starting.size, graceMs }, 'shutting down: new steps are turned away; running ones get the grace period');
    if (busy === 0) return { finished: 0, interrupted: 0 };
    if (graceMs > 0) {
      this.d.log.info({ event: 'agent.draining', running: busy, graceMs }, `waiting up to ${graceMs} ms for ${busy} running step(s) to finish`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(done, graceMs);
        this.idleWaiters.push(done);
        this.interruptNowFn = done;
      });
      this.interruptNowFn = undefined;
    }
    const left = [...this.running.values()];
    for (const r of left) {
      this.d.log.warn({ event: 'step.interrupting', executionId: r.request.executionId, stepRunId: r.request.stepId }, 'stopping a running step: the agent is shutting down');
      r.abort.abort(SHUTDOWN);
    }
    if (this.running.size > 0 || this.starting.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    return { finished: Math.max(0, busy - left.length), interrupted: left.length };
  }

  /** During a drain: stop waiting for running steps and interrupt them now. */
  interruptNow(): void {
    this.interruptNowFn?.();
  }

  /**
   * Resolves when every finished result has been acknowledged by the coordinator, the stream is
   * down (they stay spooled for the next connection), or after `timeoutMs`.
   */
  async waitDelivered(timeoutMs: number): Promise<number> {
    if (this.unacked.size > 0 && this.d.link() !== undefined) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.deliveredWaiters = this.deliveredWaiters.filter((w) => w !== done);
          resolve();
        };
        const t = setTimeout(done, timeoutMs);
        this.deliveredWaiters.push(done);
      });
    }
    return this.unacked.size;
  }

  private checkDelivered(): void {
    if (this.unacked.size > 0) return;
    for (const w of [...this.deliveredWaiters]) w();
  }

  private settled(): void {
    if (this.running.size > 0 || this.starting.size > 0) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  async handle(env: Envelope): Promise<void> {
    // Only a step signed by a key we do not know yet waits: the set that names it may be in flight.
    if (!this.d.dispatchKeys().has(env.keyId) && this.d.dispatchKeysSettled) await this.d.dispatchKeysSettled();
    const identity = this.d.identity();
    const now = this.d.now();
    let peek: StepRequest | undefined;
    try {
      peek = decodeStepRequest(env.payload);
    } catch {
      peek = undefined;
    }
    // A second delivery of a step this agent holds (resent after a reconnect) is not a replay,
    // but it is checked like any other envelope before it is treated as one.
    const held = peek !== undefined && (this.running.has(peek.stepId) || this.unacked.has(peek.stepId) || this.starting.has(peek.stepId)) && this.d.nonces.has(peek.nonce);
    const verdict = checkStepEnvelope(env, {
      agentId: identity.agentId,
      nowMs: now,
      keys: this.d.dispatchKeys(),
      nonceSeen: (n) => this.d.nonces.has(n),
      expiredThroughMs: this.d.nonces.prunedThroughMs,
      decode: decodeStepRequest,
      redelivery: held,
    });
    if (!verdict.ok) {
      await this.reject(verdict.request ?? peek, verdict.reason, verdict.detail);
      return;
    }
    const request = verdict.request;
    if (held) {
      const running = this.running.get(request.stepId)?.request;
      if (running && !Buffer.from(running.nonce).equals(Buffer.from(request.nonce))) {
        await this.reject(request, 'replayed', 'another request already used this step id');
        return;
      }
      const entry = this.unacked.get(request.stepId);
      if (entry) this.background(this.deliver(request.stepId, entry, true), 'result.deliver_failed', request.stepId);
      return;
    }
    if (this.canceledEarly.has(request.stepId)) {
      await this.rememberNonce(request);
      await this.reject(request, 'canceled', 'canceled before it started on this agent');
      return;
    }
    const policy = checkLocalPolicy(this.d.localPolicy(), {
      runbookId: request.runbookId,
      runbookOwner: request.runbookOwner,
      argv: request.argv,
      isScript: request.script !== undefined,
      ...(request.script ? { interpreter: request.script.interpreter } : {}),
    });
    if (!policy.allowed) {
      await this.rememberNonce(request);
      await this.reject(request, 'policy', policy.reason);
      return;
    }
    if (this.stopping) {
      await this.reject(request, 'busy', 'the agent is shutting down');
      return;
    }
    // The slot is taken before anything is awaited, so concurrent arrivals cannot overrun the limit.
    const busy = this.running.size + this.starting.size;
    if (busy >= this.d.maxConcurrentSteps) {
      await this.reject(request, 'busy', `agent already runs ${busy} steps (limit ${this.d.maxConcurrentSteps})`);
      return;
    }
    this.starting.add(request.stepId);
    let entry: SpoolEntry;
    try {
      // The nonce and the request in one synced record: durable before the step can start.
      entry = await this.d.spool.begin({ executionId: request.executionId, stepId: request.stepId, startedAtMs: now, maxOutputBytes: request.maxOutputBytes }, env.payload, request.nonce, request.notAfterMs);
    } catch (e) {
      this.starting.delete(request.stepId);
      this.settled();
      this.d.log.error({ event: 'step.start_failed', executionId: request.executionId, stepRunId: request.stepId, err: e }, 'could not take the step on');
      await this.reject(request, 'agent_error', `the agent could not take the step on: ${(e as Error).message}`);
      return;
    }
    this.starting.delete(request.stepId);
    const link = this.d.link();
    const run: Running = { request, entry, abort: new AbortController(), startGeneration: link?.generation, needsResend: link === undefined };
    this.running.set(request.stepId, run);
    // Canceled, or the agent began stopping, while it was being set up.
    if (this.canceledEarly.has(request.stepId)) run.abort.abort();
    else if (this.stopping) run.abort.abort(SHUTDOWN);
    this.d.log.info({ event: 'step.accepted', executionId: request.executionId, stepRunId: request.stepId, runbookId: request.runbookId || undefined }, 'step accepted');
    void this.execute(run).catch((e: unknown) => this.d.log.error({ event: 'step.execute_failed', stepRunId: request.stepId, err: e }, 'running a step failed'));
  }

  private async rememberNonce(request: StepRequest): Promise<void> {
    try {
      await this.d.nonces.add(request.nonce, request.notAfterMs);
    } catch (e) {
      this.d.log.error({ event: 'nonce.store_failed', err: e }, 'could not record a nonce (disk full?)');
    }
  }

  private async execute(run: Running): Promise<void> {
    const { request, entry } = run;
    // Sealed only after the pid is on record, so the entry cannot be removed under that write.
    let pidRecorded: Promise<void> = Promise.resolve();
    let result: RunResult;
    try {
      result = await runStep(
        {
          ...(request.script ? { script: { interpreter: request.script.interpreter, body: request.script.body } } : { argv: request.argv }),
          env: {
            ...this.d.baseEnv,
            ...request.env,
            HANDRAIL_EXECUTION_ID: request.executionId,
            HANDRAIL_STEP_ID: request.stepId,
            HANDRAIL_AGENT_ID: request.agentId,
          },
          workingDir: request.workingDir || this.d.defaultWorkingDir,
          timeoutMs: request.timeoutMs,
          maxOutputBytes: request.maxOutputBytes,
          killGraceMs: this.d.killGraceMs,
        },
        async (stream, offset, data) => {
          await entry.append(stream, data);
          await this.sendOutput(run, stream, offset, data);
        },
        {
          signal: run.abort.signal,
          now: this.d.now,
          tempDir: this.d.tempDir,
          onStarted: (pid) => {
            pidRecorded = entry.setPid(pid).catch((e: unknown) => this.d.log.error({ event: 'spool.set_pid_failed', stepRunId: request.stepId, err: e }, 'spool set pid failed'));
            this.background(this.sendLive({ msg: { $case: 'accepted', value: { executionId: request.executionId, stepId: request.stepId, startedAtMs: this.d.now(), pid } } }), 'step.accepted_send_failed', request.stepId);
          },
        },
      );
    } catch (e) {
      const now = this.d.now();
      const empty = sha256(new Uint8Array(0));
      result = {
        status: 'error',
        exitCode: null,
        signal: null,
        startedAtMs: now,
        finishedAtMs: now,
        pid: null,
        stdout: { sha256: empty, capturedBytes: 0, totalBytes: 0, truncated: false },
        stderr: { sha256: empty, capturedBytes: 0, totalBytes: 0, truncated: false },
        error: `runner failed: ${(e as Error).message}`,
      };
    }
    // Stopped by the agent's shutdown, not by a cancel or the step itself: say so.
    const interrupted = run.abort.signal.aborted && run.abort.signal.reason === SHUTDOWN && result.status === 'canceled';
    await pidRecorded;
    await this.seal(entry, request, {
      status: interrupted ? 'interrupted' : result.status,
      exitCode: result.exitCode ?? -1,
      signal: result.signal ?? '',
      startedAtMs: result.startedAtMs,
      finishedAtMs: result.finishedAtMs,
      stdout: { sha: result.stdout.sha256, bytes: result.stdout.capturedBytes, truncated: result.stdout.truncated },
      stderr: { sha: result.stderr.sha256, bytes: result.stderr.capturedBytes, truncated: result.stderr.truncated },
      error: interrupted ? INTERRUPTED_ERROR : (result.error ?? ''),
    }).finally(() => {
      // Only once its result is sealed (and so counted as unacknowledged) is the step done:
      // a stopping agent waits for exactly that before it waits for acknowledgements.
      this.running.delete(request.stepId);
      this.settled();
    });
    this.d.log.info(
      { event: 'step.finished', executionId: request.executionId, stepRunId: request.stepId, status: interrupted ? 'interrupted' : result.status, exitCode: result.exitCode, ms: result.finishedAtMs - result.startedAtMs },
      'step finished',
    );
    const live = this.d.link();
    this.background(this.deliver(request.stepId, entry, run.needsResend || live === undefined || live.generation !== run.startGeneration), 'result.deliver_failed', request.stepId);
  }

  /** Signs the result with the agent's key and writes it to the spool. */
  private async seal(
    entry: SpoolEntry,
    request: StepRequest,
    r: { status: StepStatus; exitCode: number; signal: string; startedAtMs: number; finishedAtMs: number; stdout: { sha: Buffer; bytes: number; truncated: boolean }; stderr: { sha: Buffer; bytes: number; truncated: boolean }; error: string },
  ): Promise<void> {
    const identity = this.d.identity();
    const result: StepResult = {
      executionId: request.executionId,
      stepId: request.stepId,
      agentId: identity.agentId,
      requestSha256: sha256(await entry.readRequest()),
      requestNonce: request.nonce,
      status: r.status,
      exitCode: r.exitCode,
      signal: r.signal,
      startedAtMs: r.startedAtMs,
      finishedAtMs: r.finishedAtMs,
      stdoutSha256: r.stdout.sha,
      stderrSha256: r.stderr.sha,
      stdoutBytes: r.stdout.bytes,
      stderrBytes: r.stderr.bytes,
      stdoutTruncated: r.stdout.truncated,
      stderrTruncated: r.stderr.truncated,
      error: r.error.slice(0, 2000),
      signerCertificateSerial: identity.serial,
    };
    const payload = encodeStepResult(result);
    const signature = signPayload(STEP_RESULT_TYPE, payload, identity.privateKey);
    const encoded = SignedResult.encode({ payloadType: STEP_RESULT_TYPE, payload: Buffer.from(payload), signature }).finish();
    try {
      // Sent once in the file, while the sync runs: the sync is off the step's path.
      const { durable } = await entry.writeResult(encoded);
      durable.catch((e: unknown) => {
        if (this.unacked.has(request.stepId)) this.inMemory.set(request.stepId, encoded);
        this.d.log.error({ event: 'spool.write_failed', executionId: request.executionId, stepRunId: request.stepId, err: e }, 'could not sync the signed result; delivering it from memory');
      });
    } catch (e) {
      // A full disk must not lose the result: keep it in memory and deliver it from there.
      this.inMemory.set(request.stepId, encoded);
      this.d.log.error({ event: 'spool.write_failed', executionId: request.executionId, stepRunId: request.stepId, err: e }, 'could not spool the signed result; delivering it from memory');
    }
    this.unacked.set(request.stepId, entry);
  }

  /** Sends a spooled result (and, if the live stream missed some, its output first). */
  private async deliver(stepId: string, entry: SpoolEntry, resendOutput: boolean): Promise<void> {
    if (this.delivering.has(stepId)) return;
    const link = this.d.link();
    if (!link) return;
    this.delivering.add(stepId);
    try {
      const bytes = this.inMemory.get(stepId) ?? (await entry.readResult());
      if (!bytes) return;
      const signed = SignedResult.decode(bytes);
      if (resendOutput) {
        const result = decodeStepResult(signed.payload);
        for (const stream of ['stdout', 'stderr'] as const) {
          for await (const c of entry.readOutput(stream)) {
            await link.send({
              msg: {
                $case: 'output',
                value: {
                  executionId: result.executionId,
                  stepId: result.stepId,
                  stream: stream === 'stdout' ? OutputStream.OUTPUT_STREAM_STDOUT : OutputStream.OUTPUT_STREAM_STDERR,
                  offset: c.offset,
                  data: c.data,
                },
              },
            });
          }
        }
      }
      await link.send({ msg: { $case: 'result', value: signed } });
    } catch (e) {
      this.d.log.info({ event: 'step.deliver_deferred', stepRunId: stepId, err: (e as Error).message }, 'result delivery deferred until the next connection');
    } finally {
      this.delivering.delete(stepId);
    }
  }

  private async sendOutput(run: Running, stream: StreamName, offset: number, data: Buffer): Promise<void> {
    const link = this.d.link();
    if (!link || link.generation !== run.startGeneration) {
      run.needsResend = true;
      return;
    }
    try {
      await link.send({
        msg: {
          $case: 'output',
          value: {
            executionId: run.request.executionId,
            stepId: run.request.stepId,
            stream: stream === 'stdout' ? OutputStream.OUTPUT_STREAM_STDOUT : OutputStream.OUTPUT_STREAM_STDERR,
            offset,
            data,
          },
        },
      });
    } catch {
      run.needsResend = true;
    }
  }

  /** Work that runs on its own: a failure is logged, never an unhandled rejection. */
  private background(work: Promise<unknown>, event: string, stepId: string): void {
    work.catch((e: unknown) => this.d.log.error({ event, stepRunId: stepId, err: e }, `${event.replace(/[._]/g, ' ')}`));
  }

  private async sendLive(msg: ConnectRequest): Promise<void> {
    const link = this.d.link();
    if (!link) return;
    await link.send(msg).catch(() => undefined);
  }

  private async reject(request: Pick<StepRequest, 'executionId' | 'stepId'> | undefined, reason: RejectReason, detail: string): Promise<void> {
    this.d.log.warn(
      { event: 'step.rejected', reason, executionId: request?.executionId.slice(0, 64), stepRunId: request?.stepId.slice(0, 64) },
      `step rejected: ${detail}`,
    );
    const link = this.d.link();
    if (!link) return;
    await link
      .send({
        msg: {
          $case: 'rejected',
          value: { executionId: request?.executionId.slice(0, 128) ?? '', stepId: request?.stepId.slice(0, 128) ?? '', reason: rejectReasonToWire(reason), detail: detail.slice(0, 500) },
        },
      })
      .catch(() => undefined);
  }
}

/**
 * Stops a step's process group left behind by a crashed agent — only if that pid is still the
 * same process (same boot, same start time): after a reboot or pid reuse it is someone else's.
 */
async function killLeftover(meta: SpoolMeta): Promise<void> {
  const pid = meta.pid;
  if (!pid || pid <= 1 || meta.processStart === undefined || meta.bootId === undefined) return;
  const now = await processIdentity(pid);
  if (!now || now.processStart !== meta.processStart || now.bootId !== meta.bootId) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
