/**
 * Audit records of agents refused for their version (`agent.version_refused`), at enrollment
 * and on the stream. Anyone who can reach the agent port can present an old version, so
 * records are rate-limited per remote address and stage like the other refusal records
 * (RefusalThrottle, refusal-log.ts): a flood is counted into the next record (`suppressed`),
 * never written one by one. Writes happen in the background, after the refusal was answered.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { AuditLog } from './audit-log.js';
import { AuditEvents } from './events.js';
import { PendingWrites, RefusalThrottle, type RefusalLogOptions } from './refusal-log.js';

export interface VersionRefusal {
  readonly stage: 'enrollment' | 'stream';
  readonly agentId: string | null;
  readonly name: string | null;
  readonly agentVersion: string;
  readonly coordinatorVersion: string;
  readonly upgrade: string;
  /** The peer as grpc-js names it (ipv4:1.2.3.4:5678). */
  readonly remote: string;
}

export class VersionRefusalLog {
  private readonly throttle: RefusalThrottle;
  private readonly pending = new PendingWrites();

  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly now: () => number,
    options: RefusalLogOptions = {},
  ) {
    this.throttle = new RefusalThrottle(options);
  }

  record(r: VersionRefusal): void {
    this.pending.track(this.write(r));
  }

  async settled(): Promise<void> {
    await this.pending.settled();
  }

  private async write(r: VersionRefusal): Promise<void> {
    const admitted = this.throttle.admit(JSON.stringify([remoteHost(r.remote), r.stage]), this.now());
    if (!admitted.record) return;
    try {
      await this.db.batch((tx) =>
        this.audit.append(tx, {
          type: AuditEvents.agentVersionRefused,
          actor: { kind: 'agent', id: r.agentId ?? r.name ?? 'unknown' },
          data: {
            agentId: r.agentId,
            name: r.name === null ? null : r.name.slice(0, 64),
            agentVersion: r.agentVersion.slice(0, 40),
            coordinatorVersion: r.coordinatorVersion,
            upgrade: r.upgrade,
            stage: r.stage,
            remote: r.remote.slice(0, 100),
            suppressed: admitted.suppressed,
          },
        }),
      );
    } catch (e) {
      this.log.error({ event: 'audit.append_failed', err: e }, 'auditing a version refusal failed');
    }
  }
}

/** The address part of a grpc-js peer name (ipv4:1.2.3.4:5678, ipv6:[::1]:5678). */
export function remoteHost(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m?.[1] ?? peer;
}
