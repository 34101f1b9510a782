/**
 * The agent's step journal: one append-only file (journal-record.ts) that holds, per step,
 * what must outlive the agent process:
 *
 * - `begin`: the nonce, ids and signed request, written and fdatasynced before the step starts,
 *   so a replay is refused after a restart, a kill -9 or a power loss;
 * - `pid`: who runs the step (not synced: it matters only within this boot);
 * - `result`: the signed result, written before it is sent (a kill -9 cannot lose it) and
 *   fdatasynced while it is sent (a power loss after the sync cannot either);
 * - `done`: the acknowledgement (not synced: a result brought back by a power loss is sent again,
 *   and the coordinator acknowledges it again).
 *
 * One file held open for appending replaces nonces.log and the spool's per-step files: a step
 * costs two appends with one fdatasync each instead of about thirty file calls and three syncs.
 * Appends queued while a sync runs share the next one. The file is rewritten from memory
 * (compacted) at start-up and when it holds far more records than live state.
 *
 * Clock safety, as before: the journal remembers the latest not-after time of any nonce it
 * forgot (`prunedThroughMs`), and a request expiring at or before it is refused as expired
 * whatever the clock says, so a clock set back cannot revive an envelope whose nonce is gone.
 */
import { writeSync } from 'node:fs';
import { open, readdir, readFile, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeRecords, encodeRecord, type JournalRecord } from './journal-record.js';
import { atomicWrite } from './state-dir.js';

/** A step the journal holds: taken on, not yet acknowledged. */
export interface JournalStep {
  readonly key: string;
  readonly executionId: string;
  readonly stepId: string;
  readonly startedAtMs: number;
  readonly maxOutputBytes: number;
  readonly request: Uint8Array;
  /** The step's nonce (hex) and its request's not-after time: kept with the step while it is held. */
  readonly nonce: string;
  readonly notAfterMs: number;
  pid: number | null;
  processStart?: string;
  bootId?: string;
  result?: Uint8Array;
}

/** Where the agent kept the same state before the journal (read once at start-up, then removed). */
export interface LegacyState {
  readonly noncesFile: string;
  readonly spoolDir: string;
}

const LEGACY_FILES = ['meta.json', 'request.bin', 'pid.json', 'result.bin'];

export class StepJournal {
  private readonly seen = new Map<string, number>();
  private readonly live = new Map<string, JournalStep>();
  private watermark = 0;
  /** Records appended since the file was last rewritten. */
  private appended = 0;
  /** File writes run one at a time: an append racing a rewrite would be lost with the old file. */
  private io: Promise<unknown> = Promise.resolve();
  private pending: Buffer[] = [];
  private pendingSync = false;
  /** Called once the pending records are written (before their sync). */
  private writtenWaiters: Array<() => void> = [];
  private appendHandle: FileHandle | undefined;
  /** Bytes of whole records in the file: a failed append is cut back to here. */
  private size = 0;
  /** A failed append may have left part of a record behind: cut it off before the next one. */
  private torn = false;

  constructor(private readonly file: string) {}

  /** Requests that expire at or before this time may have had their nonce forgotten. */
  get prunedThroughMs(): number {
    return this.watermark;
  }

  /** The steps a journal file holds, read without taking the file over (for tests and diagnostics). */
  static async readSteps(file: string): Promise<JournalStep[]> {
    const j = new StepJournal(file);
    const data = await readFile(file).catch(() => Buffer.alloc(0));
    for (const r of decodeRecords(data).records) j.apply(r);
    return j.steps();
  }

  /** Steps held (taken on and not acknowledged), oldest first. */
  steps(): JournalStep[] {
    return [...this.live.values()].sort((a, b) => a.startedAtMs - b.startedAtMs);
  }

  /**
   * Reads the journal (and, once, the state an older agent left in `legacy`), forgets expired
   * nonces and rewrites the file from what is left. A torn record at the end, and whatever
   * follows it, is dropped: the write it came from never completed.
   */
  async load(now: number, legacy?: LegacyState): Promise<void> {
    const data = await readFile(this.file).catch(() => Buffer.alloc(0));
    for (const r of decodeRecords(data).records) this.apply(r);
    const migrated = legacy ? await this.readLegacy(legacy) : [];
    this.prune(now);
    await this.compact();
    // Only once the journal holds it on disk may the old copy go.
    if (legacy) await this.removeLegacy(legacy, migrated);
  }

  has(nonce: Uint8Array): boolean {
    return this.seen.has(Buffer.from(nonce).toString('hex'));
  }

  /** Records a nonce alone (a step refused after its checks); resolves once it is durable. */
  add(nonce: Uint8Array, notAfterMs: number): Promise<void> {
    const hex = Buffer.from(nonce).toString('hex');
    this.seen.set(hex, notAfterMs);
    return this.append({ kind: 'nonce', nonce: hex, notAfterMs }, true);
  }

  /** Takes a step on: its nonce and request are durable when this resolves (the step may start). */
  async begin(step: Omit<JournalStep, 'pid' | 'nonce' | 'notAfterMs'>, nonce: Uint8Array, notAfterMs: number): Promise<JournalStep> {
    const hex = Buffer.from(nonce).toString('hex');
    this.seen.set(hex, notAfterMs);
    const held: JournalStep = { ...step, nonce: hex, notAfterMs, pid: null };
    this.live.set(step.key, held);
    try {
      await this.append(beginRecord(held), true);
    } catch (e) {
      this.live.delete(step.key);
      throw e;
    }
    return held;
  }

  /** Who runs the step; not synced (see the top of this file). */
  setPid(key: string, pid: number, identity?: { processStart: string; bootId: string }): Promise<void> {
    const s = this.live.get(key);
    if (s) {
      s.pid = pid;
      if (identity) {
        s.processStart = identity.processStart;
        s.bootId = identity.bootId;
      }
    }
    return this.append({ kind: 'pid', key, pid, ...(identity ?? {}) }, false);
  }

  /** The signed result; durable when this resolves. */
  /**
   * The signed result. `written` resolves once the record is in the file (it survives the agent
   * being killed: the kernel holds it), `durable` once it is synced (it survives a power loss).
   * The result may be sent once written: a power loss before the sync loses it on this side
   * either way, and the coordinator stores the first result of a step it gets.
   */
  setResult(key: string, result: Uint8Array): { written: Promise<void>; durable: Promise<void> } {
    let markWritten: () => void = () => undefined;
    const signal = new Promise<void>((resolve) => (markWritten = resolve));
    this.writtenWaiters.push(markWritten);
    const durable = this.append({ kind: 'result', key, result }, true);
    // A failed write rejects `durable` before the record is marked written.
    const written = Promise.race([signal, durable]).then(() => {
      const s = this.live.get(key);
      if (s) s.result = result;
    });
    durable.catch(() => undefined); // the caller may only look at `written`
    return { written, durable };
  }

  /** The step is finished with (acknowledged, or set aside); not synced. */
  done(key: string): Promise<void> {
    if (!this.live.delete(key)) return Promise.resolve();
    return this.append({ kind: 'done', key }, false);
  }

  prune(now: number): void {
    for (const [k, t] of this.seen) {
      if (t > now) continue;
      this.seen.delete(k);
      if (t > this.watermark) this.watermark = t;
    }
  }

  /** Rewrites the journal once it holds far more records than live state (it only grows otherwise). */
  async compactIfLarge(): Promise<void> {
    if (this.appended > 1000 && this.appended > 4 * (this.seen.size + this.live.size)) await this.compact();
  }

  /** Resolves once every record appended so far is written (synced only where it asked to be). */
  written(): Promise<void> {
    return this.serial(() => this.flush());
  }

  /** Closes the file (pending appends are written first). The journal may still be used: it reopens. */
  close(): Promise<void> {
    return this.serial(async () => {
      await this.flush();
      await this.closeAppendHandle();
    });
  }

  private apply(r: JournalRecord): void {
    switch (r.kind) {
      case 'nonce':
        this.seen.set(r.nonce, r.notAfterMs);
        return;
      case 'begin':
        if (r.nonce !== '') this.seen.set(r.nonce, r.notAfterMs);
        this.live.set(r.key, { key: r.key, executionId: r.executionId, stepId: r.stepId, startedAtMs: r.startedAtMs, maxOutputBytes: r.maxOutputBytes, request: r.request, nonce: r.nonce, notAfterMs: r.notAfterMs, pid: null });
        return;
      case 'pid': {
        const s = this.live.get(r.key);
        if (!s) return;
        s.pid = r.pid;
        if (r.processStart !== undefined) s.processStart = r.processStart;
        if (r.bootId !== undefined) s.bootId = r.bootId;
        return;
      }
      case 'result': {
        const s = this.live.get(r.key);
        if (s) s.result = r.result;
        return;
      }
      case 'done':
        this.live.delete(r.key);
        return;
      case 'pruned':
        this.watermark = Math.max(this.watermark, r.throughMs);
        return;
    }
  }

  /** The live state as records: what a rewritten journal holds. */
  private snapshot(): Buffer[] {
    const out: Buffer[] = [encodeRecord({ kind: 'pruned', throughMs: this.watermark })];
    const stepNonces = new Set<string>();
    for (const s of this.live.values()) {
      stepNonces.add(s.nonce);
      out.push(encodeRecord(beginRecord(s)));
      if (s.pid !== null) out.push(encodeRecord({ kind: 'pid', key: s.key, pid: s.pid, ...(s.processStart !== undefined ? { processStart: s.processStart } : {}), ...(s.bootId !== undefined ? { bootId: s.bootId } : {}) }));
      if (s.result) out.push(encodeRecord({ kind: 'result', key: s.key, result: s.result }));
    }
    for (const [nonce, notAfterMs] of this.seen) if (!stepNonces.has(nonce)) out.push(encodeRecord({ kind: 'nonce', nonce, notAfterMs }));
    return out;
  }

  private append(r: JournalRecord, sync: boolean): Promise<void> {
    this.pending.push(encodeRecord(r));
    if (sync) this.pendingSync = true;
    this.appended++;
    return this.serial(() => this.flush());
  }

  /** Writes every pending record, and syncs once if any of them asked for it. */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const records = this.pending;
    const sync = this.pendingSync;
    const written = this.writtenWaiters;
    this.pending = [];
    this.pendingSync = false;
    this.writtenWaiters = [];
    this.appendHandle ??= await open(this.file, 'a', 0o600);
    const fh = this.appendHandle;
    try {
      if (this.torn) {
        await fh.truncate(this.size);
        this.torn = false;
      }
      const data = records.length === 1 ? (records[0] as Buffer) : Buffer.concat(records);
      this.torn = true;
      // A small append goes to the page cache in microseconds: written from this thread, it
      // spares a trip through libuv's pool (a wake-up and a completion) and lets a result be
      // sent in the same turn. Large records (a long script in a request) go through the pool.
      if (data.length <= SYNC_WRITE_MAX) writeAllSync(fh.fd, data);
      else await fh.write(data);
      this.torn = false;
      this.size += data.length;
      for (const w of written) w();
      if (sync) await fh.datasync();
    } catch (e) {
      // A failed write or sync (disk full): cut back what may be half a record, and start over
      // with a fresh handle next time. Records written but not synced count as not written.
      this.torn = true;
      await fh.truncate(this.size).then(
        () => (this.torn = false),
        () => undefined,
      );
      this.appendHandle = undefined;
      await fh.close().catch(() => undefined);
      throw e;
    }
  }

  private async closeAppendHandle(): Promise<void> {
    const fh = this.appendHandle;
    this.appendHandle = undefined;
    await fh?.close();
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.io.then(op);
    this.io = next.catch(() => undefined);
    return next;
  }

  /** Rewrites the file from memory via a temp file and rename; forgotten nonces leave the disk here. */
  private compact(): Promise<void> {
    return this.serial(async () => {
      await this.flush();
      await this.closeAppendHandle();
      const data = Buffer.concat(this.snapshot());
      await atomicWrite(this.file, data, 0o600);
      this.size = data.length;
      this.torn = false;
      this.appended = 0;
    });
  }

  /** nonces.log and spool/<key>/{meta.json,request.bin,pid.json,result.bin} of an older agent. */
  private async readLegacy(legacy: LegacyState): Promise<string[]> {
    const text = await readFile(legacy.noncesFile, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const [head, value] = line.split(' ');
      const t = Number(value);
      if (!head || !Number.isFinite(t)) continue;
      if (head === 'pruned-through') this.watermark = Math.max(this.watermark, t);
      else if (/^[0-9a-f]{32,128}$/.test(head) && !this.seen.has(head)) this.seen.set(head, t);
    }
    const names = await readdir(legacy.spoolDir).catch(() => [] as string[]);
    const migrated: string[] = [];
    for (const key of names) {
      if (!/^[0-9a-f]{32}$/.test(key)) continue;
      const dir = join(legacy.spoolDir, key);
      const meta = await readFile(join(dir, 'meta.json'), 'utf8').then(
        (t) => JSON.parse(t) as { executionId?: unknown; stepId?: unknown; startedAtMs?: unknown; maxOutputBytes?: unknown },
        () => undefined,
      );
      if (!meta) continue; // output files of a journal step, or a half-created old entry (handled below)
      migrated.push(key);
      const request = await readFile(join(dir, 'request.bin')).catch(() => undefined);
      if (typeof meta.executionId !== 'string' || typeof meta.stepId !== 'string' || typeof meta.startedAtMs !== 'number' || typeof meta.maxOutputBytes !== 'number' || !request) continue;
      if (this.live.has(key)) continue;
      // The old spool did not keep the nonce with the step: nonces.log has it, on its own.
      const step: JournalStep = { key, executionId: meta.executionId, stepId: meta.stepId, startedAtMs: meta.startedAtMs, maxOutputBytes: meta.maxOutputBytes, request: new Uint8Array(request), nonce: '', notAfterMs: 0, pid: null };
      const pid = await readFile(join(dir, 'pid.json'), 'utf8').then(
        (t) => JSON.parse(t) as { pid?: unknown; processStart?: unknown; bootId?: unknown },
        () => undefined,
      );
      if (pid && Number.isSafeInteger(pid.pid)) {
        step.pid = pid.pid as number;
        if (typeof pid.processStart === 'string') step.processStart = pid.processStart;
        if (typeof pid.bootId === 'string') step.bootId = pid.bootId;
      }
      const result = await readFile(join(dir, 'result.bin')).catch(() => undefined);
      if (result) step.result = new Uint8Array(result);
      this.live.set(key, step);
    }
    return migrated;
  }

  private async removeLegacy(legacy: LegacyState, migrated: readonly string[]): Promise<void> {
    await unlink(legacy.noncesFile).catch(() => undefined);
    for (const key of migrated) {
      const dir = join(legacy.spoolDir, key);
      for (const f of LEGACY_FILES) await rm(join(dir, f), { force: true });
      // A half-created old entry (no request): its step never started.
      if (!this.live.has(key)) await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Appends up to this size are written synchronously (see flush). */
const SYNC_WRITE_MAX = 64 * 1024;

function writeAllSync(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
}

function beginRecord(s: JournalStep): JournalRecord {
  return { kind: 'begin', key: s.key, nonce: s.nonce, notAfterMs: s.notAfterMs, executionId: s.executionId, stepId: s.stepId, startedAtMs: s.startedAtMs, maxOutputBytes: s.maxOutputBytes, request: s.request };
}
