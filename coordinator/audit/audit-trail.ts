/**
 * The audit trail as readers use it (the portal's Audit trail page and /api/v1/audit): pages of
 * records under the reader's scope, one record, an export bundle of a selection, and
 * verifications of the whole live log with the last result kept.
 *
 * Who sees what is decided by the policy engine (coordinator/policy/visibility.ts,
 * auditTrailScope): `admin`, or `view` over every runbook, sees every record; anyone else only
 * the records of executions they may see, as the history page shows them. A record outside a
 * reader's scope does not exist for them. Only whole-trail readers export time ranges and run or
 * see verifications.
 *
 * An export is written by the same code as `handrail audit export` (bundle.ts) to a temporary
 * file first, so the download can say exactly what it holds (first and last record, whether it
 * runs to the head) and which `handrail audit verify` flag it needs before its first byte.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../store/database.js';
import type { AuditLog } from './audit-log.js';
import { AuditEvents, type Actor } from './events.js';
import { exportBundle, type BundleCas } from './bundle.js';
import { databaseItems } from './export.js';
import { verifyItems } from './verify-stream.js';
import type { AuditTrailScope } from '../policy/visibility.js';
import { describeRecord, type TrailRecord } from './trail-record.js';
import { FEW_EXECUTIONS, pageOf, slackBounds, verifyFlag, exportFileName, type ExportPlan, type ExportedStretch, type TrailPageQuery } from './trail-filter.js';
import { insertVerification, lastVerification, seesFewExecutions, seqWindow, trailRecordRow, trailRows, type VerificationRun } from '../store/audit-trail-queries.js';

export type { VerificationRun } from '../store/audit-trail-queries.js';

export interface TrailPage {
  readonly records: readonly TrailRecord[];
  /** Cursor for the next (older) page: pass it as `before`. */
  readonly next: number | null;
}

export interface ExportedBundle {
  readonly stretch: ExportedStretch;
  /** What `handrail audit verify FILE` needs beside the file ('' for the whole log). */
  readonly verifyFlag: string;
  readonly fileName: string;
  readonly bytes: number;
  /** The bundle's bytes; the temporary file is removed once read to the end or cancelled. */
  body(): ReadableStream<Uint8Array>;
  /** Removes the temporary file (if the body is never read). */
  discard(): Promise<void>;
}

export interface RunningVerification {
  readonly startedAt: number;
  readonly actor: Actor;
}

export interface AuditTrailDeps {
  /** The writer's connection: a verification's result and its audit record. */
  readonly db: Database;
  /**
   * A read-only connection to the same store, for every read (pages, records, exports, the
   * verification's pass over the log): records as committed. On the writer's connection a read
   * would meet the records of a transaction still in progress, which may yet roll back (and
   * whose seq a later record then takes).
   */
  readonly reader: Database;
  readonly audit: AuditLog;
  /**
   * The CA certificates agent certificates are checked against, as they are now: the issuing CA
   * (certs/ca.pem) first, then every other CA the coordinator trusted (a roll-over adds some).
   */
  readonly caPem: () => BundleCas | Promise<BundleCas>;
  readonly now: () => number;
  /** Signature threads for a verification (default 1: this thread, leaving the others to the coordinator). */
  readonly verifyThreads?: number;
}

const RECORD_SEQ = /^\{"t":"record","seq":(\d+),/;

export class AuditTrail {
  private running: { readonly info: RunningVerification; readonly done: Promise<VerificationRun> } | undefined;

  constructor(private readonly d: AuditTrailDeps) {}

  async page(q: TrailPageQuery, scope: AuditTrailScope): Promise<TrailPage> {
    const query = await this.plan(q, scope);
    if (!query) return { records: [], next: null };
    const { records, next } = pageOf(await trailRows(this.d.reader, query, scope), q.limit);
    return { records: records.map(describeRecord), next };
  }

  /** The query a page runs: a time filter as its seq window, a reader of few executions by execution (null: nothing can match). */
  async plan(q: TrailPageQuery, scope: AuditTrailScope): Promise<TrailPageQuery | null> {
    let query = q;
    if (q.fromIso !== undefined || q.toIso !== undefined) {
      const w = await seqWindow(this.d.reader, slackBounds(q));
      if (!w) return null;
      query = { ...query, seqWindow: w };
    }
    if (!scope.all && (await seesFewExecutions(this.d.reader, scope, FEW_EXECUTIONS))) query = { ...query, fewExecutions: true };
    return query;
  }

  /** Record `seq`, or undefined when it does not exist or is outside the reader's scope. */
  async record(seq: number, scope: AuditTrailScope): Promise<TrailRecord | undefined> {
    const row = await trailRecordRow(this.d.reader, seq, scope);
    return row ? describeRecord(row) : undefined;
  }

  /** Whether the reader may see any record of this execution (else it is "not found" to them). */
  async hasVisibleRecords(executionId: string, scope: AuditTrailScope): Promise<boolean> {
    return (await trailRows(this.d.reader, { executionId, limit: 0 }, scope)).length > 0;
  }

  /** Writes the bundle of an allowed plan to a temporary file and says what it holds. */
  async export(plan: Extract<ExportPlan, { ok: true }>): Promise<ExportedBundle> {
    const dir = await mkdtemp(join(tmpdir(), 'hr-audit-export-'));
    const path = join(dir, 'bundle.jsonl');
    const discard = (): Promise<void> => rm(dir, { recursive: true, force: true });
    const sel = plan.kind === 'execution' ? { executionId: plan.executionId } : { ...(plan.fromMs !== undefined ? { fromMs: plan.fromMs } : {}), ...(plan.toMs !== undefined ? { toMs: plan.toMs } : {}) };
    let first: number | null = null;
    let last: number | null = null;
    let toHead = true;
    let bytes = 0;
    try {
      const out = createWriteStream(path, { mode: 0o600 });
      try {
        let header = true;
        for await (const line of exportBundle(this.d.reader, await this.d.caPem(), sel, this.d.now())) {
          if (header) toHead = (JSON.parse(line) as { toHead: boolean }).toHead;
          header = false;
          const seq = RECORD_SEQ.exec(line)?.[1];
          if (seq !== undefined) {
            first ??= Number(seq);
            last = Number(seq);
          }
          bytes += Buffer.byteLength(line) + 1;
          if (!out.write(line + '\n')) await once(out, 'drain');
        }
      } finally {
        out.end();
        await once(out, 'close');
      }
    } catch (e) {
      await discard();
      throw e;
    }
    const stretch: ExportedStretch = plan.kind === 'execution' ? { kind: 'execution', executionId: plan.executionId, first, last, toHead: false } : { kind: 'range', first, last, toHead };
    return {
      stretch,
      verifyFlag: verifyFlag(stretch),
      fileName: exportFileName(stretch),
      bytes,
      discard,
      body: () => {
        const file = createReadStream(path, { highWaterMark: 1 << 16 });
        const it = file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        return new ReadableStream<Uint8Array>({
          async pull(ctl) {
            const r = await it.next();
            if (r.done) {
              ctl.close();
              await discard();
            } else ctl.enqueue(new Uint8Array(r.value));
          },
          async cancel() {
            file.destroy();
            await discard();
          },
        });
      },
    };
  }

  /** The verification in progress, if any. */
  inProgress(): RunningVerification | undefined {
    return this.running?.info;
  }

  /** Resolves once no verification is running (whatever its outcome). */
  async idle(): Promise<void> {
    await this.running?.done.catch(() => undefined);
  }

  /** The last finished verification. */
  last(): Promise<VerificationRun | undefined> {
    return lastVerification(this.d.reader);
  }

  /**
   * Verifies the whole live log (as `handrail audit verify --data-dir` does) in the background,
   * then stores the result and its audit.verified record. One at a time: a second request while
   * one runs joins it (`started` false).
   */
  verify(actor: Actor, source: 'portal' | 'api'): { readonly started: boolean; readonly info: RunningVerification; readonly done: Promise<VerificationRun> } {
    if (this.running) return { started: false, ...this.running };
    const info: RunningVerification = { startedAt: this.d.now(), actor };
    const done = this.run(info, source).finally(() => {
      this.running = undefined;
    });
    this.running = { info, done };
    return { started: true, info, done };
  }

  private async run(info: RunningVerification, source: string): Promise<VerificationRun> {
    let result: Omit<VerificationRun, 'id' | 'startedAt' | 'finishedAt' | 'actor' | 'source'>;
    try {
      const r = await verifyItems(databaseItems(this.d.reader, await this.d.caPem(), info.startedAt), { threads: this.d.verifyThreads ?? 1 });
      result = { ok: r.ok, records: r.records, firstSeq: r.firstSeq, lastSeq: r.lastSeq, firstBadSeq: r.ok ? null : (r.firstBad?.seq ?? null), reason: r.ok ? null : (r.firstBad?.reason ?? 'failed') };
    } catch (e) {
      // A log that cannot even be read is a failed verification, said in one line.
      result = { ok: false, records: 0, firstSeq: null, lastSeq: null, firstBadSeq: null, reason: `the log could not be read: ${(e as Error).message.split('\n')[0] ?? ''}` };
    }
    const finishedAt = this.d.now();
    return this.d.db.write(async (tx) => {
      const run = { startedAt: info.startedAt, finishedAt, actor: info.actor, source, ...result };
      const id = await insertVerification(tx, run);
      await this.d.audit.append(tx, {
        type: AuditEvents.auditVerified,
        actor: info.actor,
        data: { verificationId: id, ok: run.ok, records: run.records, firstSeq: run.firstSeq, lastSeq: run.lastSeq, firstBadSeq: run.firstBadSeq, reason: run.reason, source },
      });
      return { id, ...run };
    });
  }
}
