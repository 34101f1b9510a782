/**
 * Dispatches signed steps to agents and takes in what comes back: acceptance, output,
 * signed results, refusals. Every dispatch and every result is committed (with its audit
 * record) before it is sent or acknowledged, so a crash loses nothing that was promised.
 */
import { EventEmitter } from 'node:events';
import { pooledRandomBytes } from '../../core/random-pool.js';
import type { Logger } from 'pino';
import type { Database, Tx } from '../store/database.js';
import * as store from '../store/execution-store.js';
import type { Keyring } from '../pki/keyring.js';
import type { AgentRegistry } from '../registry/agent-registry.js';
import type { Counters } from '../metrics/counters.js';
import type { AgentSession } from '../gateway/agent-session.js';
import type { Gateway, StepTraffic } from '../gateway/gateway.js';
import { signEnvelope, sha256, verifyPayload } from '../../core/envelope.js';
import { invalidArgument } from '../../core/errors.js';
import { STEP_REQUEST_TYPE, STEP_RESULT_TYPE, type ScriptSpec, type StepRequest, type StepResult, type StepStatus } from '../../core/step.js';
import {
  decodeStepRequest,
  decodeStepResult,
  envelopeToWire,
  rejectReasonFromWire,
  encodeStepRequest,
} from '../../proto/codec/step-codec.js';
import { OutputStream, type ConnectRequest, type SignedResult, type StepOutput, type StepRejected, type StepAccepted } from '../../proto/gen/handrail/v1/gateway.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { OutputSequence } from './output-sequence.js';

export interface DispatchSpec {
  readonly executionId: string;
  readonly stepRunId: string;
  readonly agentId: string;
  readonly stepIndex: number;
  readonly attempt: number;
  readonly handler: boolean;
  readonly name: string;
  readonly argv: readonly string[];
  /** argv as records may show it (secret-derived arguments masked); defaults to argv. */
  readonly argvForRecords?: readonly string[];
  readonly script: ScriptSpec | undefined;
  readonly env: Readonly<Record<string, string>>;
  /** Names of env vars holding secrets: recorded as "********" in audit records. */
  readonly secretEnv: readonly string[];
  readonly workingDir: string;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly runbookId: string;
  readonly runbookOwner: string;
}

export type StepRunState = 'dispatched' | 'running' | StepStatus | 'rejected' | 'expired' | 'lost';
export const TERMINAL_STEP_STATES: ReadonlySet<StepRunState> = new Set(['succeeded', 'failed', 'timed_out', 'canceled', 'error', 'interrupted', 'rejected', 'expired', 'lost']);

export interface StepRunOutcome {
  readonly stepRunId: string;
  readonly executionId: string;
  readonly agentId: string;
  readonly state: StepRunState;
  readonly exitCode: number | null;
  readonly error: string | null;
}

export interface OutputEvent {
  /** Its place in the store's output order (coordinator/engine/output-sequence.ts). */
  readonly seq: number;
  readonly executionId: string;
  readonly stepRunId: string;
  readonly agentId: string;
  readonly stream: 'stdout' | 'stderr';
  readonly offset: number;
  readonly data: Buffer;
}

export interface DispatcherConfig {
  /** How long a signed step stays valid for delivery. */
  readonly requestTtlMs: number;
  /** Largest signed step request that fits in one gateway message. */
  readonly maxEnvelopeBytes: number;
  /** Upper bound on stored bytes per stream, whatever a request asks for. */
  readonly maxOutputBytes: number;
  /** Grace after a step's timeout (or an untaken request's expiry) before it is given up as lost. */
  readonly lostAfterMs: number;
}

/** What the dispatcher remembers about a step it sent, until its result is stored. */
interface InFlight {
  readonly executionId: string;
  readonly agentId: string;
  readonly requestSha256: Buffer;
  readonly max: number;
  /** Contiguous bytes stored per stream (stdout, stderr). */
  stored: [number, number];
  /** When this process sent the request (coordinator clock), until the agent accepts it: dispatch latency. */
  sentAtMs?: number | undefined;
}

type StepRunRow = store.StepRunRow<StepRunState>;

/** What a stored result tells the engines. */
function outcomeOf(agentId: string, result: StepResult): StepRunOutcome {
  return { stepRunId: result.stepId, executionId: result.executionId, agentId, state: result.status, exitCode: result.exitCode, error: result.error || null };
}

export class StepDispatcher implements StepTraffic {
  readonly events = new EventEmitter<{ finished: [StepRunOutcome]; output: [OutputEvent]; accepted: [string] }>();
  private readonly inflight = new Map<string, InFlight | Promise<InFlight | undefined>>();
  /**
   * Result writes per step run, one at a time, on either path. Writes batched into one
   * transaction run concurrently, so two copies of a result (resent across reconnects) could
   * both read "no result yet" and both be recorded; and output arriving while a result is being
   * stored must not reload the step as still open (a second copy would then take the fast path).
   */
  private readonly resultWrites = new Map<string, Promise<unknown>>();
  /** Steps a busy agent turned away: how often, and the one pending re-offer (dropped once taken or ended). */
  private readonly deferred = new Map<string, { attempts: number; timer: NodeJS.Timeout | undefined }>();
  /** Told of a result inside the transaction that stores it (see onResultStoring). */
  private readonly storingListeners: Array<(tx: Tx, o: StepRunOutcome) => Promise<void>> = [];
  /** One per open step: gives it up when nobody answers (see watch()). */
  private readonly watchdogs = new Map<string, { timer: NodeJS.Timeout; timeoutMs: number; executionId: string; agentId: string }>();

  constructor(
    private readonly db: Database,
    private readonly gateway: Gateway,
    private readonly keyring: Keyring,
    private readonly registry: AgentRegistry,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly counters: Counters,
    private readonly config: DispatcherConfig,
    private readonly now: () => number,
    private readonly outputSeq: OutputSequence,
  ) {
    this.events.setMaxListeners(0);
  }

  /**
   * `fn` runs inside the transaction that stores a step's result (results of steps this
   * process dispatched), so what it writes commits with the result: one commit, not two. It
   * may run again if that transaction is retried, after an afterRollback. 'finished' is still
   * emitted for every outcome once it is committed.
   */
  onResultStoring(fn: (tx: Tx, o: StepRunOutcome) => Promise<void>): void {
    this.storingListeners.push(fn);
  }

  /** Throws (invalid argument) if a step with this content could not be sent in one message. */
  assertFits(spec: Pick<DispatchSpec, 'argv' | 'script' | 'env' | 'workingDir'>): void {
    const probe = encodeStepRequest({
      executionId: 'exe-0000000000000000', stepId: 'sr-0000000000000000', agentId: 'agt-0000000000000000', argv: spec.argv, script: spec.script, env: spec.env,
      workingDir: spec.workingDir, timeoutMs: 0, issuedAtMs: 0, notAfterMs: 0, nonce: new Uint8Array(16), runbookId: '', runbookOwner: '', maxOutputBytes: 0,
    });
    this.checkEnvelopeSize(probe.length + 256);
  }

  private checkEnvelopeSize(bytes: number): void {
    if (bytes > this.config.maxEnvelopeBytes) {
      throw invalidArgument(`the signed step request would be ${bytes} bytes; at most ${this.config.maxEnvelopeBytes} fit in one message: shorten the script, arguments or environment`);
    }
  }

  /** How long after dispatch an agent may still take a step (its not-after time). */
  get requestTtlMs(): number {
    return this.config.requestTtlMs;
  }

  /** Signs, records and sends one step. Resolves once it is committed (and sent if the agent is online). */
  async dispatch(spec: DispatchSpec): Promise<{ sent: boolean }> {
    const now = this.now();
    const request: StepRequest = {
      executionId: spec.executionId,
      stepId: spec.stepRunId,
      agentId: spec.agentId,
      argv: spec.argv,
      script: spec.script,
      env: spec.env,
      workingDir: spec.workingDir,
      timeoutMs: spec.timeoutMs,
      issuedAtMs: now,
      notAfterMs: now + this.config.requestTtlMs,
      nonce: pooledRandomBytes(16),
      runbookId: spec.runbookId,
      runbookOwner: spec.runbookOwner,
      maxOutputBytes: Math.min(spec.maxOutputBytes, this.config.maxOutputBytes),
    };
    const payload = encodeStepRequest(request);
    const key = this.keyring.active('dispatch');
    const envelope = signEnvelope(STEP_REQUEST_TYPE, payload, key);
    this.checkEnvelopeSize(payload.length + envelope.signature.length + envelope.keyId.length + STEP_REQUEST_TYPE.length + 64);
    const requestSha256 = sha256(payload);
    this.inflight.set(spec.stepRunId, { executionId: spec.executionId, agentId: spec.agentId, requestSha256, max: request.maxOutputBytes, stored: [0, 0] });
    try {
      await this.db.batch(async (tx) => {
        store.queueDispatchedStep(tx, {
          id: spec.stepRunId, executionId: spec.executionId, agentId: spec.agentId, stepIndex: spec.stepIndex, attempt: spec.attempt, handler: spec.handler, name: spec.name,
          requestPayload: Buffer.from(payload), requestSha256: requestSha256.toString('hex'), requestKeyId: key.keyId, requestSignature: Buffer.from(envelope.signature),
          notAfter: request.notAfterMs, dispatchedAt: now,
        });
        await this.audit.append(tx, {
          type: AuditEvents.stepDispatched,
          actor: { kind: 'system', id: 'coordinator' },
          data: {
            executionId: spec.executionId,
            stepRunId: spec.stepRunId,
            agentId: spec.agentId,
            name: spec.name,
            argv: [...(spec.argvForRecords ?? spec.argv)],
            script: spec.script ? { interpreter: [...spec.script.interpreter], sha256: sha256(Buffer.from(spec.script.body)).toString('hex') } : null,
            env: Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, spec.secretEnv.includes(k) ? '********' : v])),
            timeoutMs: spec.timeoutMs,
            notAfter: new Date(request.notAfterMs).toISOString(),
            requestSha256: requestSha256.toString('hex'),
            keyId: key.keyId,
            signature: Buffer.from(envelope.signature).toString('base64'),
          },
        });
      });
    } catch (e) {
      this.inflight.delete(spec.stepRunId);
      throw e;
    }
    this.counters.inc('steps_dispatched_total');
    this.watch(spec.stepRunId, spec.executionId, spec.agentId, spec.timeoutMs, false);
    const sent = this.gateway.send(spec.agentId, { msg: { $case: 'step', value: envelopeToWire(envelope) } });
    const entry = this.inflight.get(spec.stepRunId);
    if (sent && entry && !(entry instanceof Promise)) entry.sentAtMs = this.now();
    return { sent };
  }

  /** Agent steps sent and not yet ended (each has a watchdog until its result is stored). */
  get stepsInFlight(): number {
    return this.watchdogs.size;
  }

  /** Queue depths for metrics: steps waiting for a result, and busy-agent re-offers pending. */
  queueDepths(): { stepsInFlight: number; stepsDeferred: number } {
    let deferred = 0;
    for (const d of this.deferred.values()) if (d.timer) deferred++;
    return { stepsInFlight: this.watchdogs.size, stepsDeferred: deferred };
  }

  /**
   * After a restart, before agents reconnect: every open agent step gets its watchdog back (the
   * old process's died with it), counted from the request's not-after time.
   */
  async resume(): Promise<void> {
    const rows = await store.openStepRunsWithRequest<StepRunState>(this.db);
    const now = this.now();
    for (const r of rows) {
      let timeoutMs = 0;
      try {
        timeoutMs = decodeStepRequest(r.request_payload as Buffer).timeoutMs;
      } catch {
        timeoutMs = 0;
      }
      this.watch(r.id, r.execution_id, r.agent_id, timeoutMs, false, Math.max(0, (r.not_after ?? now) - now));
    }
  }

  /**
   * Gives up on a step nobody answers. Until an agent takes it: once its request's not-after
   * time has passed (an offline or busy agent may take it until then); once taken: after its
   * timeout. Each plus lostAfterMs. It ends as canceled if a cancel was asked for, else lost.
   */
  private watch(stepRunId: string, executionId: string, agentId: string, timeoutMs: number, taken: boolean, untilTakenMs = this.config.requestTtlMs): void {
    this.unwatch(stepRunId);
    const grace = Math.round(this.config.lostAfterMs / 1000);
    const timer = setTimeout(() => {
      this.watchdogs.delete(stepRunId);
      store
        .stepCancelRequestedAt(this.db, stepRunId)
        .then((row) => {
          const ref = { id: stepRunId, execution_id: executionId, agent_id: agentId };
          if (row?.cancel_requested_at != null) return this.finishWithoutResult(ref, 'canceled', 'canceled; the agent never confirmed');
          return this.finishWithoutResult(ref, 'lost', `${taken ? 'no result within the step timeout' : 'no agent took the step before it expired'} plus ${grace} s`);
        })
        .catch((e: unknown) => this.log.error({ event: 'step.give_up_failed', stepRunId, err: e }, 'giving up on a silent step failed'));
    }, Math.min(2_000_000_000, (taken ? 0 : untilTakenMs) + (timeoutMs > 0 ? timeoutMs : 3_600_000) + this.config.lostAfterMs));
    timer.unref();
    this.watchdogs.set(stepRunId, { timer, timeoutMs, executionId, agentId });
  }

  private unwatch(stepRunId: string): void {
    const w = this.watchdogs.get(stepRunId);
    if (w) clearTimeout(w.timer);
    this.watchdogs.delete(stepRunId);
  }

  /** Sends a recorded step request again (after a reconnect, or to an agent that was busy). */
  private resend(row: StepRunRow): void {
    if (!row.request_payload || !row.request_signature || !row.request_key_id) return;
    this.gateway.send(row.agent_id, {
      msg: { $case: 'step', value: envelopeToWire({ payloadType: STEP_REQUEST_TYPE, payload: row.request_payload, keyId: row.request_key_id, signature: row.request_signature }) },
    });
  }

  /** Tells engines a step ended; it needs no watching or re-offering any more. */
  private emitFinished(o: StepRunOutcome): void {
    this.unwatch(o.stepRunId);
    this.clearDeferred(o.stepRunId);
    this.events.emit('finished', o);
  }

  /**
   * Asks the agent to stop a step. Nothing is decided here: the agent may already have the
   * step even if this process never heard back, so it answers (a canceled result, or a
   * refusal for a step it never started) now or when it reconnects.
   */
  async cancel(stepRunId: string): Promise<void> {
    const now = this.now();
    const row = await store.findStepRun<StepRunState>(this.db, stepRunId);
    if (!row || TERMINAL_STEP_STATES.has(row.state)) return;
    await this.db.batch((tx) => store.markStepCancelRequested(tx, stepRunId, now));
    this.gateway.send(row.agent_id, { msg: { $case: 'cancel', value: { executionId: row.execution_id, stepId: row.id } } });
  }

  // ---- StepTraffic ----

  agentReady(agentId: string): void {
    this.resendOpen(agentId).catch((e: unknown) => this.log.error({ event: 'dispatch.resend_failed', agentId, err: e }, 'resending open steps failed'));
  }

  private async resendOpen(agentId: string): Promise<void> {
    const rows = await store.openStepRunsOf<StepRunState>(this.db, agentId);
    for (const row of rows) {
      if (row.cancel_requested_at !== null) {
        this.gateway.send(agentId, { msg: { $case: 'cancel', value: { executionId: row.execution_id, stepId: row.id } } });
      } else if (row.state === 'dispatched') {
        // The agent may or may not have it: it deduplicates, or refuses an expired request (with the reason).
        this.resend(row);
      }
    }
  }

  inbound(session: AgentSession, msg: NonNullable<ConnectRequest['msg']>): void {
    switch (msg.$case) {
      case 'accepted':
        session.track(this.accepted(session, msg.value));
        return;
      case 'output':
        this.output(session, msg.value);
        return;
      case 'result':
        session.track(this.result(session, msg.value));
        return;
      case 'rejected':
        session.track(this.rejected(session, msg.value));
        return;
      default:
        this.log.warn({ event: 'dispatch.unexpected_message', agentId: session.agentId, kind: msg.$case }, 'unexpected message');
    }
  }

  private async accepted(session: AgentSession, m: StepAccepted): Promise<void> {
    const entry = this.inflight.get(m.stepId);
    this.clearDeferred(m.stepId);
    if (entry && !(entry instanceof Promise) && entry.agentId !== session.agentId) return;
    if (entry && !(entry instanceof Promise) && entry.sentAtMs !== undefined) {
      this.counters.observe('dispatch_latency_seconds', (this.now() - entry.sentAtMs) / 1000);
      entry.sentAtMs = undefined;
    }
    // Also for steps this process did not dispatch (it restarted): the store decides.
    await this.db.batch(async (tx) => store.queueStepAccepted(tx, m.stepId, session.agentId, m.startedAtMs));
    const w = this.watchdogs.get(m.stepId);
    if (w) this.watch(m.stepId, w.executionId, w.agentId, w.timeoutMs, true);
    this.events.emit('accepted', m.stepId);
  }

  private output(session: AgentSession, m: StepOutput): void {
    const stream = m.stream === OutputStream.OUTPUT_STREAM_STDOUT ? 0 : m.stream === OutputStream.OUTPUT_STREAM_STDERR ? 1 : -1;
    if (stream < 0) {
      this.counters.inc('messages_refused_total', { reason: 'bad_output_stream' });
      return;
    }
    const known = this.inflight.get(m.stepId);
    if (known && !(known instanceof Promise)) {
      this.storeOutput(session, m, stream, known);
      return;
    }
    // First chunk of this step in this process: load its state once, then keep order by chaining.
    const loading = (known ?? this.loadInFlight(m.stepId)).then((state) => {
      if (state) {
        this.inflight.set(m.stepId, state);
        this.storeOutput(session, m, stream, state);
      } else {
        this.inflight.delete(m.stepId);
        this.log.warn({ event: 'dispatch.output_unknown_step', agentId: session.agentId, stepRunId: m.stepId.slice(0, 64) }, 'output for an unknown step dropped');
      }
      return state;
    });
    this.inflight.set(m.stepId, loading);
    session.track(loading);
  }

  /** After a coordinator restart the in-memory view is rebuilt from the store, step by step. */
  private async loadInFlight(stepRunId: string): Promise<InFlight | undefined> {
    // A result being stored ends the step: read the row only once it is written.
    await this.resultWritesSettled(stepRunId);
    const row = await store.findStepRun<StepRunState>(this.db, stepRunId);
    if (!row || !row.request_payload || TERMINAL_STEP_STATES.has(row.state)) return undefined;
    const req = decodeStepRequest(row.request_payload);
    return { executionId: row.execution_id, agentId: row.agent_id, requestSha256: sha256(row.request_payload), max: req.maxOutputBytes, stored: [row.stdout_bytes, row.stderr_bytes] };
  }

  private storeOutput(session: AgentSession, m: StepOutput, stream: number, state: InFlight): void {
    if (state.agentId !== session.agentId) {
      this.counters.inc('messages_refused_total', { reason: 'output_for_other_agent' });
      this.log.warn({ event: 'dispatch.output_wrong_agent', agentId: session.agentId, stepRunId: m.stepId }, 'output for another agent\'s step dropped');
      return;
    }
    const stored = state.stored[stream] as number;
    const end = m.offset + m.data.length;
    if (m.offset > stored) {
      this.counters.inc('output_gaps_total');
      return; // the agent resends from its spool after a reconnect; keep storage contiguous
    }
    if (end <= stored || stored >= state.max) return; // duplicate, or over the cap
    const slice = m.data.subarray(stored - m.offset, Math.min(m.data.length, state.max - m.offset));
    const offset = stored;
    state.stored[stream] = offset + slice.length;
    const now = this.now();
    const seq = this.outputSeq.next();
    session.track(
      this.db
        .batch(async (tx) => store.queueOutputChunk(tx, { stepRunId: m.stepId, stream: stream === 0 ? 1 : 2, offset, data: slice, receivedAt: now, seq }, offset + slice.length))
        .catch((e: unknown) => {
          // Keep storage contiguous: later chunks are dropped until the agent resends from its spool.
          state.stored[stream] = Math.min(state.stored[stream] as number, offset);
          this.log.error({ event: 'step.output_store_failed', agentId: session.agentId, stepRunId: m.stepId, err: e }, 'storing output failed');
        }),
    );
    this.events.emit('output', { seq, executionId: state.executionId, stepRunId: m.stepId, agentId: session.agentId, stream: stream === 0 ? 'stdout' : 'stderr', offset, data: slice });
  }

  private async result(session: AgentSession, signed: SignedResult): Promise<void> {
    const refuse = (reason: string, detail: string, extra: Record<string, unknown> = {}, ids?: { executionId: string; stepId: string }): void => {
      this.counters.inc('results_refused_total', { reason });
      this.log.warn({ event: 'step.result_refused', agentId: session.agentId, reason, ...extra }, `result refused: ${detail}`);
      // Resending cannot make it acceptable: say so, and the agent sets it aside instead of resending forever.
      if (ids) session.send({ msg: { $case: 'ack', value: { executionId: ids.executionId, stepId: ids.stepId, refused: `${reason}: ${detail}` } } });
    };
    if (signed.payloadType !== STEP_RESULT_TYPE) return refuse('malformed', `unexpected payload type ${signed.payloadType.slice(0, 80)}`);
    let result: StepResult;
    try {
      result = decodeStepResult(signed.payload);
    } catch (e) {
      return refuse('malformed', `payload does not decode: ${(e as Error).message}`);
    }
    const ids = { stepRunId: result.stepId.slice(0, 64), executionId: result.executionId.slice(0, 64) };
    const back = { executionId: result.executionId.slice(0, 128), stepId: result.stepId.slice(0, 128) };
    if (result.agentId !== session.agentId) return refuse('wrong_agent', `result names agent ${result.agentId.slice(0, 64)}`, ids, back);
    const cert = await this.registry.certificate(result.signerCertificateSerial);
    if (!cert || cert.agentId !== session.agentId) return refuse('unknown_certificate', `signer certificate ${result.signerCertificateSerial.slice(0, 64)} is not this agent's`, ids, back);
    const key = await this.registry.publicKey(cert.serial);
    if (!key || !verifyPayload(signed.payloadType, signed.payload, signed.signature, key)) return refuse('bad_signature', 'agent signature does not verify', ids, back);

    const claimed = this.inflight.get(result.stepId);
    if (claimed instanceof Promise) await claimed; // output state still loading: keep order
    const entry = this.inflight.get(result.stepId);
    let outcome: { ack: boolean; note: 'stored' | 'late' | 'duplicate' | 'unknown step' | 'mismatch' | 'request_digest' };
    if (entry && !(entry instanceof Promise) && !this.resultWrites.has(result.stepId)) {
      // Fast path: the step is in flight in this process; decide without reading the store.
      if (entry.agentId !== session.agentId || entry.executionId !== result.executionId) {
        outcome = { ack: false, note: 'mismatch' };
      } else if (!entry.requestSha256.equals(result.requestSha256)) {
        outcome = { ack: false, note: 'request_digest' };
      } else {
        this.inflight.delete(result.stepId);
        try {
          await this.oneResultWriteAtATime(result.stepId, () =>
            this.db.batch(async (tx) => {
              store.queueStepResult(tx, result.stepId, this.resultColumns(signed, result));
              await this.appendResultAudit(tx, session.agentId, signed, result);
              for (const fn of this.storingListeners) await fn(tx, outcomeOf(session.agentId, result));
            }),
          );
        } catch (e) {
          this.inflight.set(result.stepId, entry);
          throw e;
        }
        outcome = { ack: true, note: 'stored' };
      }
    } else {
      outcome = await this.storeResultSlow(session, signed, result);
    }
    const now = this.now();
    if (outcome.note === 'mismatch' || outcome.note === 'request_digest') {
      return refuse(outcome.note, outcome.note === 'mismatch' ? 'result does not match the dispatched step' : 'result answers a different request', ids, back);
    }
    if (outcome.note === 'unknown step') this.log.info({ event: 'step.result_unknown', agentId: session.agentId, ...ids }, 'result for a step this coordinator has no record of; acknowledged and dropped');
    if (outcome.ack) session.send({ msg: { $case: 'ack', value: { executionId: result.executionId, stepId: result.stepId, refused: '' } } });
    if (outcome.note === 'late') {
      this.counters.inc('results_stored_total');
      this.log.warn({ event: 'step.result_late', agentId: session.agentId, ...ids, status: result.status }, 'result arrived after the step was given up on; recorded');
      return;
    }
    if (outcome.note === 'stored') {
      this.counters.inc('results_stored_total');
      this.counters.observe('step_duration_seconds', (result.finishedAtMs - result.startedAtMs) / 1000, { status: result.status });
      // Debug: a fan-out to thousands of agents would write thousands of lines; the audit log has each result.
      if (this.log.isLevelEnabled('debug')) this.log.debug(
        { event: 'step.finished', executionId: result.executionId, stepRunId: result.stepId, agentId: session.agentId, status: result.status, exitCode: result.exitCode, ms: result.finishedAtMs - result.startedAtMs, lagMs: now - result.finishedAtMs },
        'step finished',
      );
      this.emitFinished(outcomeOf(session.agentId, result));
    }
  }

  private resultColumns(signed: SignedResult, result: StepResult): store.StoredResult {
    return {
      state: result.status,
      finishedAt: result.finishedAtMs,
      exitCode: result.exitCode,
      signal: result.signal || null,
      payload: asBuffer(signed.payload),
      signature: asBuffer(signed.signature),
      certSerial: result.signerCertificateSerial,
      error: result.error || null,
      acceptedAt: result.startedAtMs,
      reported: { stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes, stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated },
    };
  }

  /** A result for a step this process did not dispatch (it restarted since): decide from the store. */
  private async storeResultSlow(
    session: AgentSession,
    signed: SignedResult,
    result: StepResult,
  ): Promise<{ ack: boolean; note: 'stored' | 'late' | 'duplicate' | 'unknown step' | 'mismatch' | 'request_digest' }> {
    return this.oneResultWriteAtATime(result.stepId, () => this.storeResultSlowNow(session, signed, result));
  }

  /** Runs `write` after every result write already started for this step run has settled. */
  private oneResultWriteAtATime<T>(stepRunId: string, write: () => Promise<T>): Promise<T> {
    const mine = this.resultWritesSettled(stepRunId).then(write);
    this.resultWrites.set(stepRunId, mine);
    const done = (): void => {
      if (this.resultWrites.get(stepRunId) === mine) this.resultWrites.delete(stepRunId);
    };
    mine.then(done, done);
    return mine;
  }

  private resultWritesSettled(stepRunId: string): Promise<void> {
    const pending = this.resultWrites.get(stepRunId);
    return pending ? pending.then(() => undefined, () => undefined) : Promise.resolve();
  }

  private async storeResultSlowNow(
    session: AgentSession,
    signed: SignedResult,
    result: StepResult,
  ): Promise<{ ack: boolean; note: 'stored' | 'late' | 'duplicate' | 'unknown step' | 'mismatch' | 'request_digest' }> {
    return this.db.batch(async (tx) => {
      const row = await store.findStepRun<StepRunState>(tx, result.stepId);
      if (!row) return { ack: true, note: 'unknown step' as const };
      if (row.agent_id !== session.agentId || row.execution_id !== result.executionId) return { ack: false, note: 'mismatch' as const };
      const digest = row.request_sha256 ?? (row.request_payload ? sha256(row.request_payload).toString('hex') : null);
      if (digest !== Buffer.from(result.requestSha256).toString('hex')) return { ack: false, note: 'request_digest' as const };
      if (row.result_payload !== null) return { ack: true, note: 'duplicate' as const };
      // A step given up on (lost, canceled while unreachable) still ran: record what it did, but
      // the execution has moved on, so nothing is told it finished again.
      const late = TERMINAL_STEP_STATES.has(row.state);
      await store.storeStepResult(tx, row.id, this.resultColumns(signed, result));
      this.inflight.delete(result.stepId);
      await this.appendResultAudit(tx, session.agentId, signed, result, late);
      return { ack: true, note: late ? ('late' as const) : ('stored' as const) };
    });
  }

  private async appendResultAudit(tx: Tx, agentId: string, signed: SignedResult, result: StepResult, late = false): Promise<void> {
    await this.audit.append(tx, {
      type: AuditEvents.stepResult,
      actor: { kind: 'agent', id: agentId },
      data: {
        executionId: result.executionId,
        stepRunId: result.stepId,
        agentId,
        status: result.status,
        exitCode: result.exitCode,
        certificateSerial: result.signerCertificateSerial,
        payloadType: signed.payloadType,
        payload: asBuffer(signed.payload).toString('base64'),
        signature: asBuffer(signed.signature).toString('base64'),
        ...(late ? { late: true } : {}),
      },
    });
  }

  private async rejected(session: AgentSession, m: StepRejected): Promise<void> {
    const reason = rejectReasonFromWire(m.reason);
    const detail = m.detail.slice(0, 500);
    const row = await store.findAgentStepRun<StepRunState>(this.db, m.stepId, session.agentId);
    const ids = { agentId: session.agentId, stepRunId: m.stepId.slice(0, 64), executionId: m.executionId.slice(0, 64) };
    if (reason === 'busy' && row?.state === 'dispatched' && row.cancel_requested_at === null && row.not_after !== null && row.not_after > this.now()) {
      // A full agent is not a failure: the same signed request is offered again (the agent keeps
      // no nonce for a step it turned away) until it is taken or its not-after time passes.
      this.counters.inc('steps_deferred_total');
      const delay = this.deferBusy(row);
      if (delay !== null) this.log.info({ event: 'step.deferred', ...ids, detail, retryInMs: delay }, `agent busy; offering the step again in ${delay} ms`);
      return;
    }
    if (row?.state === 'running' && (reason === 'expired' || reason === 'replayed')) {
      // The agent took this step and runs it; what it refused is a later copy (resent after a
      // reconnect), which must not end the step it is running.
      this.counters.inc('steps_rejected_total', { reason: `${reason}_copy` });
      this.log.info({ event: 'step.copy_refused', ...ids, reason, detail }, 'agent refused a second copy of a step it runs; the step goes on');
      return;
    }
    this.counters.inc('steps_rejected_total', { reason });
    this.log.warn({ event: 'step.rejected', ...ids, reason, detail }, `agent rejected step: ${detail}`);
    if (!row || TERMINAL_STEP_STATES.has(row.state)) return;
    this.inflight.delete(row.id);
    const state = reason === 'canceled' ? 'canceled' : 'rejected';
    await this.db.batch(async (tx) => {
      await store.markStepRefused(tx, row.id, state, this.now(), `${reason}: ${detail}`);
      await this.audit.append(tx, {
        type: AuditEvents.stepRejected,
        actor: { kind: 'agent', id: session.agentId },
        data: { executionId: row.execution_id, stepRunId: row.id, agentId: session.agentId, reason, detail },
      });
    });
    this.emitFinished({ stepRunId: row.id, executionId: row.execution_id, agentId: session.agentId, state, exitCode: null, error: `${reason}: ${detail}` });
  }

  /**
   * Offers a step a busy agent turned away again, after 0.5 s doubling to 8 s. One re-offer per
   * step is pending at a time, however many refusals arrive. Returns the delay, or null when
   * one is already pending.
   */
  private deferBusy(row: StepRunRow): number | null {
    const d = this.deferred.get(row.id) ?? { attempts: 0, timer: undefined };
    if (d.timer) return null;
    const delay = Math.min(8_000, 500 * 2 ** Math.min(d.attempts, 4));
    d.attempts++;
    d.timer = setTimeout(() => {
      d.timer = undefined;
      store
        .findStepRun<StepRunState>(this.db, row.id)
        .then((cur) => {
          if (!cur || cur.state !== 'dispatched' || cur.cancel_requested_at !== null) {
            this.clearDeferred(row.id);
            return;
          }
          this.resend(cur);
        })
        .catch((e: unknown) => {
          this.clearDeferred(row.id);
          this.log.error({ event: 'step.resend_failed', stepRunId: row.id, err: e }, 'offering a deferred step again failed');
        });
    }, delay);
    d.timer.unref();
    this.deferred.set(row.id, d);
    return delay;
  }

  private clearDeferred(stepRunId: string): void {
    const d = this.deferred.get(stepRunId);
    if (d?.timer) clearTimeout(d.timer);
    this.deferred.delete(stepRunId);
  }

  /** Ends a step run the agent will never answer (expired before delivery, canceled, lost). */
  async finishWithoutResult(row: { id: string; execution_id: string; agent_id: string }, state: 'expired' | 'canceled' | 'lost', why: string): Promise<void> {
    this.inflight.delete(row.id);
    // If the agent still has it, it should stop: a result that arrives anyway is recorded as late.
    this.gateway.send(row.agent_id, { msg: { $case: 'cancel', value: { executionId: row.execution_id, stepId: row.id } } });
    const changed = await this.db.batch(async (tx) => {
      const r = await store.closeOpenStep(tx, row.id, state, this.now(), why);
      if (r.changes === 1) {
        await this.audit.append(tx, {
          type: AuditEvents.stepAbandoned,
          actor: { kind: 'system', id: 'coordinator' },
          data: { executionId: row.execution_id, stepRunId: row.id, agentId: row.agent_id, state, reason: why },
        });
      }
      return r.changes === 1;
    });
    if (changed) this.emitFinished({ stepRunId: row.id, executionId: row.execution_id, agentId: row.agent_id, state, exitCode: null, error: why });
  }

  /** Request bytes as recorded, for callers that show or export a step. */
  static decodeRequest(payload: Uint8Array): StepRequest {
    return decodeStepRequest(payload);
  }
}

/**
 * A Buffer over the same bytes, not a copy. The decoded message's byte fields are views of the
 * message gRPC received, which nothing reuses; SQLite copies what it binds.
 */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
