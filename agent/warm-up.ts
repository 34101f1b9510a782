/**
 * Start-up warm-up of the step path. The agent runs under --lite-mode (agent/node-flags.ts):
 * every function is compiled on its first call, and Node sets up its child-process machinery
 * (SIGCHLD handling, pipe sockets) on the first spawn, OpenSSL a key's RSA contexts on its
 * first signature. Paid by the first step, that made it cost about three later steps' CPU
 * (bench/agent-step-cpu.ts "cold"), which is what an agent that runs a few steps (bench/vs-ssh)
 * mostly pays. Here it is paid once at start-up, while the stream's handshake is in flight:
 *
 * - one run of `true` through the runner (no shell, an environment of PATH alone, stdin
 *   /dev/null, its own process group, output discarded), as a step would run;
 * - one signature with the agent's key over a payload type no verifier accepts as anything
 *   (PAE binds the type: it can never pass for a step result), which is then dropped;
 * - one verification against a dispatch key of a signature that cannot verify.
 *
 * Measured (bench/agent-step-cpu.ts "cold", medians of 5 interleaved runs, two sets, 2 shared
 * cores): the first step's agent CPU is 10.6 / 11.7 ms without the warm-up, 10.3 with the
 * signature and verification alone, 8.9 / 9.2 with the run of `true` too (later steps: ~5.2).
 * Running a step's codecs here as well changed nothing measurable.
 *
 * Nothing is sent, journaled or kept, and a failure (no `true` on the PATH) changes nothing but
 * the first step's cost.
 */
import type { KeyObject } from 'node:crypto';
import { sha256, signPayload, verifyPayload } from '../core/envelope.js';
import { encodeStepResult } from '../proto/codec/step-codec.js';
import { runStep } from './runner.js';

/** Signed over during the warm-up only; nothing verifies this type. */
export const WARM_UP_PAYLOAD_TYPE = 'application/vnd.handrail.agent-warm-up.v1';

export interface WarmUpDeps {
  readonly privateKey: KeyObject;
  readonly dispatchKeys: Iterable<KeyObject>;
  /** PATH for `true` (the steps' own PATH). */
  readonly path: string;
  readonly workingDir: string;
}

/** Never rejects. */
export async function warmUpStepPath(d: WarmUpDeps): Promise<void> {
  try {
    await runStep({ argv: ['true'], env: { PATH: d.path }, workingDir: d.workingDir, timeoutMs: 10_000, maxOutputBytes: 0, killGraceMs: 1_000 }, () => undefined);
    const empty = sha256(new Uint8Array(0));
    const payload = encodeStepResult({
      executionId: '', stepId: '', agentId: '', requestSha256: empty, requestNonce: new Uint8Array(16), status: 'succeeded', exitCode: 0, signal: '',
      startedAtMs: 0, finishedAtMs: 0, stdoutSha256: empty, stderrSha256: empty, stdoutBytes: 0, stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false,
      error: '', signerCertificateSerial: '',
    });
    signPayload(WARM_UP_PAYLOAD_TYPE, payload, d.privateKey);
    for (const key of d.dispatchKeys) {
      verifyPayload(WARM_UP_PAYLOAD_TYPE, payload, new Uint8Array(64), key);
      break;
    }
  } catch {
    // Only the first step's cost depends on it.
  }
}
