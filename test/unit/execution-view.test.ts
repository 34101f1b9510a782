import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { Database } from '../../coordinator/store/database.js';
import { loadExecution } from '../../coordinator/store/execution-queries.js';
import { queueStepResult, storeStepResult, type StoredResult } from '../../coordinator/store/execution-store.js';
import { encodeStepResult } from '../../proto/codec/step-codec.js';
import type { StepResult } from '../../core/step.js';
import { insertExecution, insertNode, insertStepRun, migratedStore } from '../helpers/store-fixture.js';

const stored = (payload: Buffer, reported: StoredResult['reported']): StoredResult => ({
  state: 'succeeded', finishedAt: 2000, exitCode: 0, signal: null, payload, signature: Buffer.alloc(256, 7), certSerial: 'ab', error: null, acceptedAt: 1500, reported,
});

function resultPayload(o: Pick<StepResult, 'stdoutBytes' | 'stderrBytes' | 'stdoutTruncated' | 'stderrTruncated'>): Buffer {
  const digest = createHash('sha256').update('x').digest();
  return Buffer.from(encodeStepResult({
    executionId: 'exe-1', stepId: 'old', agentId: 'agt-0', requestSha256: digest, requestNonce: Buffer.alloc(16, 1), status: 'succeeded', exitCode: 0, signal: '',
    startedAtMs: 1500, finishedAtMs: 2000, stdoutSha256: digest, stderrSha256: digest, error: '', signerCertificateSerial: 'ab', ...o,
  }));
}

describe("an execution's view: what each agent's signed result says about its output", () => {
  let db: Database | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it('reads it from the columns written with the result, decodes results stored before they existed, and has none for a step without a result', async () => {
    const d = (db = await migratedStore());
    await insertExecution(d, { id: 'exe-1', requestedBy: 'alice', createdAt: 1000 });
    for (const [i, id] of ['queued', 'slow', 'old', 'none'].entries()) {
      await insertNode(d, 'exe-1', `agt-${i}`, `host-${i}`, i);
      await insertStepRun(d, id, 'exe-1', `agt-${i}`);
    }
    // Both writers. Their payloads do not decode: a view that decoded them instead of reading the columns would report nothing.
    await d.batch(async (tx) => queueStepResult(tx, 'queued', stored(Buffer.from('not protobuf'), { stdoutBytes: 100_000, stderrBytes: 5, stdoutTruncated: true, stderrTruncated: false })));
    await d.write((tx) => storeStepResult(tx, 'slow', stored(Buffer.from([0xff, 0xff, 0xff]), { stdoutBytes: 0, stderrBytes: 70, stdoutTruncated: false, stderrTruncated: true })));
    // A result stored by a release before schema 12: only the signed payload.
    await d.write((tx) => tx.run("UPDATE step_runs SET state = 'succeeded', result_payload = ? WHERE id = 'old'", [resultPayload({ stdoutBytes: 12, stderrBytes: 3, stdoutTruncated: false, stderrTruncated: true })]));

    const view = await loadExecution(d, 'exe-1');
    const byId = new Map(view?.steps.map((s) => [s.id, [s.stdoutReportedBytes, s.stderrReportedBytes, s.stdoutTruncated, s.stderrTruncated]]));
    expect(Object.fromEntries(byId)).toEqual({
      queued: [100_000, 5, true, false],
      slow: [0, 70, false, true],
      old: [12, 3, false, true],
      none: [null, null, null, null],
    });
  });
});
