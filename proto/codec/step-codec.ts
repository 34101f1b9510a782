/**
 * The one mapping between the wire (generated ts-proto types) and the plain step types of
 * core/step.ts. Both the coordinator and the agent use it; nothing else imports proto/gen.
 */
import {
  RejectReason as WireRejectReason,
  StepRequest as WireStepRequest,
  StepResultPayload as WireStepResult,
  StepStatus as WireStepStatus,
  type SignedEnvelope,
} from '../gen/handrail/v1/gateway.js';
import type { Envelope, RejectReason, StepRequest, StepResult, StepStatus } from '../../core/step.js';

export function encodeStepRequest(r: StepRequest): Uint8Array {
  return WireStepRequest.encode({
    executionId: r.executionId,
    stepId: r.stepId,
    agentId: r.agentId,
    argv: [...r.argv],
    script: r.script ? { interpreter: [...r.script.interpreter], body: r.script.body } : undefined,
    env: { ...r.env },
    workingDir: r.workingDir,
    timeoutMs: r.timeoutMs,
    issuedAtMs: r.issuedAtMs,
    notAfterMs: r.notAfterMs,
    nonce: buf(r.nonce),
    runbookId: r.runbookId,
    runbookOwner: r.runbookOwner,
    maxOutputBytes: r.maxOutputBytes,
  }).finish();
}

export function decodeStepRequest(bytes: Uint8Array): StepRequest {
  const w = WireStepRequest.decode(bytes);
  return {
    executionId: w.executionId,
    stepId: w.stepId,
    agentId: w.agentId,
    argv: w.argv,
    script: w.script ? { interpreter: w.script.interpreter, body: w.script.body } : undefined,
    env: w.env,
    workingDir: w.workingDir,
    timeoutMs: w.timeoutMs,
    issuedAtMs: w.issuedAtMs,
    notAfterMs: w.notAfterMs,
    nonce: w.nonce,
    runbookId: w.runbookId,
    runbookOwner: w.runbookOwner,
    maxOutputBytes: w.maxOutputBytes,
  };
}

const STATUS_TO_WIRE: Record<StepStatus, WireStepStatus> = {
  succeeded: WireStepStatus.STEP_STATUS_SUCCEEDED,
  failed: WireStepStatus.STEP_STATUS_FAILED,
  timed_out: WireStepStatus.STEP_STATUS_TIMED_OUT,
  canceled: WireStepStatus.STEP_STATUS_CANCELED,
  error: WireStepStatus.STEP_STATUS_ERROR,
  interrupted: WireStepStatus.STEP_STATUS_INTERRUPTED,
};

export function statusFromWire(s: WireStepStatus): StepStatus {
  switch (s) {
    case WireStepStatus.STEP_STATUS_SUCCEEDED:
      return 'succeeded';
    case WireStepStatus.STEP_STATUS_FAILED:
      return 'failed';
    case WireStepStatus.STEP_STATUS_TIMED_OUT:
      return 'timed_out';
    case WireStepStatus.STEP_STATUS_CANCELED:
      return 'canceled';
    case WireStepStatus.STEP_STATUS_INTERRUPTED:
      return 'interrupted';
    default:
      return 'error';
  }
}

export function encodeStepResult(r: StepResult): Uint8Array {
  return WireStepResult.encode({
    executionId: r.executionId,
    stepId: r.stepId,
    agentId: r.agentId,
    requestSha256: buf(r.requestSha256),
    status: STATUS_TO_WIRE[r.status],
    exitCode: r.exitCode,
    signal: r.signal,
    startedAtMs: r.startedAtMs,
    finishedAtMs: r.finishedAtMs,
    stdoutSha256: buf(r.stdoutSha256),
    stderrSha256: buf(r.stderrSha256),
    stdoutBytes: r.stdoutBytes,
    stderrBytes: r.stderrBytes,
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
    error: r.error,
    signerCertificateSerial: r.signerCertificateSerial,
    requestNonce: buf(r.requestNonce),
  }).finish();
}

export function decodeStepResult(bytes: Uint8Array): StepResult {
  const w = WireStepResult.decode(bytes);
  return {
    executionId: w.executionId,
    stepId: w.stepId,
    agentId: w.agentId,
    requestSha256: w.requestSha256,
    requestNonce: w.requestNonce,
    status: statusFromWire(w.status),
    exitCode: w.exitCode,
    signal: w.signal,
    startedAtMs: w.startedAtMs,
    finishedAtMs: w.finishedAtMs,
    stdoutSha256: w.stdoutSha256,
    stderrSha256: w.stderrSha256,
    stdoutBytes: w.stdoutBytes,
    stderrBytes: w.stderrBytes,
    stdoutTruncated: w.stdoutTruncated,
    stderrTruncated: w.stderrTruncated,
    error: w.error,
    signerCertificateSerial: w.signerCertificateSerial,
  };
}

export function envelopeFromWire(e: SignedEnvelope): Envelope {
  return { payloadType: e.payloadType, payload: e.payload, keyId: e.keyId, signature: e.signature };
}

export function envelopeToWire(e: Envelope): SignedEnvelope {
  return { payloadType: e.payloadType, payload: buf(e.payload), keyId: e.keyId, signature: buf(e.signature) };
}

const REASON_TO_WIRE: Record<RejectReason, WireRejectReason> = {
  bad_signature: WireRejectReason.REJECT_REASON_BAD_SIGNATURE,
  unknown_key: WireRejectReason.REJECT_REASON_UNKNOWN_KEY,
  wrong_target: WireRejectReason.REJECT_REASON_WRONG_TARGET,
  expired: WireRejectReason.REJECT_REASON_EXPIRED,
  replayed: WireRejectReason.REJECT_REASON_REPLAYED,
  policy: WireRejectReason.REJECT_REASON_POLICY,
  malformed: WireRejectReason.REJECT_REASON_MALFORMED,
  busy: WireRejectReason.REJECT_REASON_BUSY,
  canceled: WireRejectReason.REJECT_REASON_CANCELED,
  agent_error: WireRejectReason.REJECT_REASON_AGENT_ERROR,
};

export function rejectReasonToWire(r: RejectReason): WireRejectReason {
  return REASON_TO_WIRE[r];
}

export function rejectReasonFromWire(w: WireRejectReason): RejectReason | 'unspecified' {
  for (const [k, v] of Object.entries(REASON_TO_WIRE)) if (v === w) return k as RejectReason;
  return 'unspecified';
}

/** A Buffer view of bytes without copying (ts-proto's node output wants Buffers). */
export function buf(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
