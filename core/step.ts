/**
 * Steps as both sides see them: the request a coordinator signs for one agent, and the result
 * that agent signs back. Plain types; the wire codec lives in proto/codec/.
 */

export const STEP_REQUEST_TYPE = 'application/vnd.handrail.step-request.v1+proto';
export const STEP_RESULT_TYPE = 'application/vnd.handrail.step-result.v1+proto';

export interface ScriptSpec {
  readonly interpreter: readonly string[];
  readonly body: string;
}

export interface StepRequest {
  readonly executionId: string;
  readonly stepId: string;
  readonly agentId: string;
  /** argv without a shell; empty when `script` is set. */
  readonly argv: readonly string[];
  readonly script: ScriptSpec | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir: string;
  readonly timeoutMs: number;
  readonly issuedAtMs: number;
  readonly notAfterMs: number;
  readonly nonce: Uint8Array;
  readonly runbookId: string;
  readonly runbookOwner: string;
  readonly maxOutputBytes: number;
}

/**
 * `interrupted`: the agent was stopped (SIGTERM: an upgrade, a reboot) while the step ran and
 * its grace period ran out. An agent shutdown, not a step failure: the coordinator runs the
 * step again when the agent is back and never counts it against retries or runs onFailure.
 */
export type StepStatus = 'succeeded' | 'failed' | 'timed_out' | 'canceled' | 'error' | 'interrupted';

export interface StepResult {
  readonly executionId: string;
  readonly stepId: string;
  readonly agentId: string;
  readonly requestSha256: Uint8Array;
  readonly requestNonce: Uint8Array;
  readonly status: StepStatus;
  readonly exitCode: number;
  readonly signal: string;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly stdoutSha256: Uint8Array;
  readonly stderrSha256: Uint8Array;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  readonly error: string;
  readonly signerCertificateSerial: string;
}

/** A signed payload (DSSE-style): the signature covers PAE(payloadType, payload). */
export interface Envelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly keyId: string;
  readonly signature: Uint8Array;
}

export type RejectReason =
  | 'bad_signature'
  | 'unknown_key'
  | 'wrong_target'
  | 'expired'
  | 'replayed'
  | 'policy'
  | 'malformed'
  | 'busy'
  | 'canceled'
  | 'agent_error';
