/**
 * The agent's decision on a step envelope, as a pure function: signature by a trusted
 * dispatch key, addressed to this agent, inside its validity window, nonce never seen.
 * Local policy is checked separately (core/local-policy.ts) after this passes.
 */
import type { KeyObject } from 'node:crypto';
import { verifyPayload } from './envelope.js';
import { STEP_REQUEST_TYPE, type Envelope, type RejectReason, type StepRequest } from './step.js';

export type StepCheck =
  | { readonly ok: true; readonly request: StepRequest }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string; readonly request?: StepRequest };

export interface StepCheckContext {
  readonly agentId: string;
  readonly nowMs: number;
  /** Dispatch public keys by key id. */
  readonly keys: ReadonlyMap<string, KeyObject>;
  /**
   * Requests expiring at or before this time are refused as expired even if the clock says
   * otherwise: the replay log may have forgotten their nonces (a clock set back).
   */
  readonly expiredThroughMs?: number;
  /** Whether this nonce was already accepted (replay). */
  readonly nonceSeen: (nonce: Uint8Array) => boolean;
  readonly decode: (payload: Uint8Array) => StepRequest;
  /** Allowed clock skew between coordinator and agent. */
  readonly skewMs?: number;
  /**
   * A second copy of a step this agent already holds (resent after a reconnect): it will not be
   * run again, so only who signed it and for whom matter; its validity window and nonce were
   * checked when it was taken, and a long step may well outlive them.
   */
  readonly redelivery?: boolean;
}

export function checkStepEnvelope(env: Envelope, ctx: StepCheckContext): StepCheck {
  if (env.payloadType !== STEP_REQUEST_TYPE) {
    return { ok: false, reason: 'malformed', detail: `unexpected payload type "${env.payloadType.slice(0, 100)}"` };
  }
  const key = ctx.keys.get(env.keyId);
  if (!key) return { ok: false, reason: 'unknown_key', detail: `dispatch key "${env.keyId.slice(0, 100)}" is not trusted by this agent` };
  if (!verifyPayload(env.payloadType, env.payload, env.signature, key)) return { ok: false, reason: 'bad_signature', detail: `signature does not verify with key ${env.keyId}` };
  let request: StepRequest;
  try {
    request = ctx.decode(env.payload);
  } catch (e) {
    return { ok: false, reason: 'malformed', detail: `signed payload does not decode: ${(e as Error).message}` };
  }
  if (request.agentId !== ctx.agentId) {
    return { ok: false, reason: 'wrong_target', detail: `step is addressed to agent ${request.agentId}, this is ${ctx.agentId}`, request };
  }
  if (ctx.redelivery) return { ok: true, request };
  const skew = ctx.skewMs ?? 60_000;
  if (ctx.nowMs > request.notAfterMs) {
    return { ok: false, reason: 'expired', detail: `step expired at ${new Date(request.notAfterMs).toISOString()}`, request };
  }
  if (ctx.expiredThroughMs !== undefined && request.notAfterMs <= ctx.expiredThroughMs) {
    return { ok: false, reason: 'expired', detail: `step expired at ${new Date(request.notAfterMs).toISOString()}, before this agent's replay log was pruned (is the clock set back?)`, request };
  }
  if (request.issuedAtMs > ctx.nowMs + skew) {
    return { ok: false, reason: 'expired', detail: `step issued in the future (${new Date(request.issuedAtMs).toISOString()}); check clocks`, request };
  }
  if (request.nonce.length < 16 || request.nonce.length > 64) return { ok: false, reason: 'malformed', detail: 'nonce must be 16 to 64 bytes', request };
  if (ctx.nonceSeen(request.nonce)) return { ok: false, reason: 'replayed', detail: 'nonce was already used', request };
  if (request.argv.length === 0 && !request.script) return { ok: false, reason: 'malformed', detail: 'step has neither argv nor script', request };
  if (request.argv.length > 0 && request.script) return { ok: false, reason: 'malformed', detail: 'step has both argv and script', request };
  if (request.script && request.script.interpreter.length === 0) {
    return { ok: false, reason: 'malformed', detail: 'script step has no interpreter', request };
  }
  return { ok: true, request };
}
