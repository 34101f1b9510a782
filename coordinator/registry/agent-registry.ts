/**
 * The registry of enrolled agents: identities and certificates (in the store), plus the live
 * view the gateway keeps (connected, last seen). Peer checks run on every connection and
 * must be cheap, so certificates are cached in memory and revocations are polled from the
 * store (an admin may revoke from another process via the data dir).
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { Database, Queryable, Tx } from '../store/database.js';
import * as q from '../store/agent-queries.js';
import type { AgentRow } from '../store/agent-queries.js';
import type { IssuedCertificate } from '../pki/ca.js';
import type { HostFacts, Labels } from '../../core/labels.js';
import { notFound } from '../../core/errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';

export interface AgentRecord {
  readonly id: string;
  readonly name: string;
  readonly labels: Labels;
  readonly pinnedLabels: Labels;
  readonly facts: Partial<HostFacts>;
  readonly enrolledAt: number;
  readonly certSerial: string;
  readonly certNotAfter: number;
  readonly connected: boolean;
  readonly lastSeenAt: number | null;
  /** The heartbeat interval the agent was told at its last connection (null before its first). */
  readonly heartbeatIntervalMs: number | null;
  readonly lastAddress: string | null;
  readonly version: string | null;
  readonly revokedAt: number | null;
  readonly revokeReason: string | null;
}


function fromRow(r: AgentRow): AgentRecord {
  return {
    id: r.id,
    name: r.name,
    labels: JSON.parse(r.labels_json) as Labels,
    pinnedLabels: JSON.parse(r.pinned_labels_json) as Labels,
    facts: JSON.parse(r.facts_json) as Partial<HostFacts>,
    enrolledAt: r.enrolled_at,
    certSerial: r.cert_serial,
    certNotAfter: r.cert_not_after,
    connected: r.connected === 1,
    lastSeenAt: r.last_seen_at,
    heartbeatIntervalMs: r.heartbeat_interval_ms,
    lastAddress: r.last_address,
    version: r.version,
    revokedAt: r.revoked_at,
    revokeReason: r.revoke_reason,
  };
}

/**
 * What the registry remembers about one issued certificate: what a peer check needs. Not the
 * certificate itself: a coordinator holding 10,000 agents kept each one's PEM (1.5 KB) only to
 * parse its public key once a result arrived (publicKey() reads it from the store then).
 */
export interface KnownCertificate {
  readonly serial: string;
  readonly agentId: string;
  readonly fingerprint256: string;
  readonly notAfter: number;
  readonly revoked: boolean;
}

const MAX_CACHED_CERTIFICATES = 20_000;

export type PeerRefusal = 'unknown_agent' | 'unknown_certificate' | 'revoked' | 'expired' | 'wrong_agent';

/**
 * Every enrolled agent, read through `db`: the registry's own connection, or the web layer's
 * read-only one (which sees only what has committed).
 */
export async function listAgentRecords(db: Queryable): Promise<AgentRecord[]> {
  return (await q.listAgents(db)).map(fromRow);
}

/** One agent, read through `db` (see listAgentRecords). */
export async function findAgentRecord(db: Queryable, id: string): Promise<AgentRecord | undefined> {
  const r = await q.findAgent(db, id);
  return r ? fromRow(r) : undefined;
}

export class AgentRegistry {
  private readonly certs = new Map<string, KnownCertificate>();
  /** Public keys of certificates that signed results, parsed on first use (bounded like certs). */
  private readonly keys = new Map<string, KeyObject>();
  private readonly revokedAgents = new Set<string>();


  constructor(
    private readonly db: Database,
    private readonly audit: AuditLog,
  ) {}

  async list(): Promise<AgentRecord[]> {
    return listAgentRecords(this.db);
  }

  /** Several agents in one query (any number of ids). */
  async getMany(ids: readonly string[]): Promise<Map<string, AgentRecord>> {
    const rows = await q.agentsByIds(this.db, ids);
    return new Map(rows.map((r) => [r.id, fromRow(r)]));
  }

  async get(id: string): Promise<AgentRecord | undefined> {
    return findAgentRecord(this.db, id);
  }

  /** Records a new agent and its first certificate; call inside the enrollment transaction. */
  async insertEnrolled(
    tx: Tx,
    a: { id: string; name: string; labels: Labels; pinnedLabels: Labels; facts: HostFacts; tokenId: string; cert: IssuedCertificate },
    now: number,
  ): Promise<void> {
    await q.insertAgent(tx, {
      id: a.id, name: a.name, labelsJson: JSON.stringify(a.labels), pinnedLabelsJson: JSON.stringify(a.pinnedLabels), factsJson: JSON.stringify(a.facts),
      tokenId: a.tokenId, enrolledAt: now, certSerial: a.cert.serial, certNotAfter: a.cert.notAfter, version: a.facts.agentVersion,
    });
    await this.insertCertificate(tx, a.id, a.cert, now);
  }

  /** Records a renewed certificate as the agent's current one. */
  async recordRenewal(tx: Tx, agentId: string, cert: IssuedCertificate, now: number): Promise<void> {
    await q.setCurrentCertificate(tx, agentId, cert.serial, cert.notAfter);
    await this.insertCertificate(tx, agentId, cert, now);
  }

  private async insertCertificate(tx: Tx, agentId: string, cert: IssuedCertificate, now: number): Promise<void> {
    await q.insertCertificate(tx, agentId, cert, now);
    this.remember({ serial: cert.serial, agentId, fingerprint256: cert.fingerprint256, notAfter: cert.notAfter, revoked: false });
  }

  /** The certificate cache keeps recently used ones only (every renewal adds one). */
  private remember(c: KnownCertificate): void {
    this.certs.delete(c.serial);
    this.certs.set(c.serial, c);
    if (this.certs.size > MAX_CACHED_CERTIFICATES) {
      const oldest = this.certs.keys().next().value as string;
      this.certs.delete(oldest);
    }
  }

  /** Revokes an agent and every certificate it holds. Returns false if already revoked. */
  async revoke(agentId: string, reason: string, actor: { kind: 'cli' | 'user'; id: string }, now: number): Promise<boolean> {
    return this.db.write(async (tx) => {
      const row = await q.findAgent(tx, agentId);
      if (!row) throw notFound(`no agent with id ${agentId} (see \`handrail agents ls\`)`);
      if (row.revoked_at !== null) return false;
      await q.revokeAgent(tx, agentId, now, reason);
      await q.revokeCertificatesOf(tx, agentId, now);
      await this.audit.append(tx, {
        type: AuditEvents.agentRevoked,
        actor,
        data: { agentId, name: row.name, reason },
      });
      this.markRevokedInMemory(agentId);
      return true;
    });
  }

  private markRevokedInMemory(agentId: string): void {
    this.revokedAgents.add(agentId);
    for (const [serial, c] of this.certs) if (c.agentId === agentId) this.certs.set(serial, { ...c, revoked: true });
  }

  /**
   * Reads the whole revoked set (by this process or another one sharing the store). Not a
   * time cursor: a revocation written with an earlier clock must not be missed.
   */
  async pollRevocations(): Promise<string[]> {
    const fresh: string[] = [];
    for (const id of await q.revokedAgentIds(this.db)) {
      if (!this.revokedAgents.has(id)) {
        fresh.push(id);
        this.markRevokedInMemory(id);
      }
    }
    return fresh;
  }

  isRevoked(agentId: string): boolean {
    return this.revokedAgents.has(agentId);
  }

  async certificate(serial: string): Promise<KnownCertificate | undefined> {
    const cached = this.certs.get(serial);
    if (cached) {
      this.remember(cached);
      return cached;
    }
    const r = await q.findCertificate(this.db, serial);
    if (!r) return undefined;
    const c: KnownCertificate = { serial: r.serial, agentId: r.agent_id, fingerprint256: r.fingerprint256, notAfter: r.not_after, revoked: r.revoked_at !== null || this.revokedAgents.has(r.agent_id) };
    this.remember(c);
    return c;
  }

  /**
   * The public key of an issued certificate (to verify a result it signed), parsed from the
   * stored certificate on first use: a peer check never needs it, and after a restart parsing
   * every reconnecting agent's certificate cost about 1 ms of CPU each (bench/reconnect.ts).
   */
  async publicKey(serial: string): Promise<KeyObject | undefined> {
    const cached = this.keys.get(serial);
    if (cached) return cached;
    const r = await q.findCertificate(this.db, serial);
    if (!r) return undefined;
    const key = new X509Certificate(r.certificate_pem).publicKey;
    this.keys.set(serial, key);
    if (this.keys.size > MAX_CACHED_CERTIFICATES) this.keys.delete(this.keys.keys().next().value as string);
    return key;
  }

  /** Decides whether a TLS peer (already chain-verified) may use the gateway. */
  async checkPeer(agentId: string, serial: string, now: number, fingerprint256?: string): Promise<{ ok: true; cert: KnownCertificate } | { ok: false; reason: PeerRefusal }> {
    if (this.revokedAgents.has(agentId)) return { ok: false, reason: 'revoked' };
    const cert = await this.certificate(serial);
    if (!cert) return { ok: false, reason: (await this.get(agentId)) ? 'unknown_certificate' : 'unknown_agent' };
    if (cert.agentId !== agentId) return { ok: false, reason: 'wrong_agent' };
    // The serial alone could be reused by a certificate the registry never issued: compare the whole certificate.
    if (fingerprint256 !== undefined && fingerprint256 !== cert.fingerprint256) return { ok: false, reason: 'unknown_certificate' };
    if (cert.revoked) return { ok: false, reason: 'revoked' };
    if (now > cert.notAfter) return { ok: false, reason: 'expired' };
    return { ok: true, cert };
  }

  /** Loads every revocation at start-up so the very first connection is checked. */
  async warm(): Promise<void> {
    await this.pollRevocations();
  }

  async markConnected(agentId: string, live: { facts: HostFacts; ownLabels: Labels; address: string; heartbeatIntervalMs: number }, now: number): Promise<AgentRecord> {
    return this.db.batch(async (tx) => {
      const row = await q.findAgent(tx, agentId);
      if (!row) throw notFound(`agent ${agentId} is not enrolled`);
      const pinned = JSON.parse(row.pinned_labels_json) as Labels;
      const labels = { ...live.ownLabels, ...pinned };
      await q.markAgentConnected(tx, agentId, { at: now, heartbeatIntervalMs: live.heartbeatIntervalMs, address: live.address, factsJson: JSON.stringify(live.facts), labelsJson: JSON.stringify(labels), version: live.facts.agentVersion });
      return fromRow({ ...row, connected: 1, last_seen_at: now, heartbeat_interval_ms: live.heartbeatIntervalMs, last_address: live.address, facts_json: JSON.stringify(live.facts), labels_json: JSON.stringify(labels), version: live.facts.agentVersion });
    });
  }

  markDisconnected(agentId: string, now: number): Promise<void> {
    return this.db.batch(async (tx) => {
      await q.markAgentDisconnected(tx, agentId, now);
    });
  }

  /** Writes last-seen times for many agents in one transaction (heartbeats are not written one by one). */
  touchMany(seen: ReadonlyMap<string, number>): Promise<void> {
    if (seen.size === 0) return Promise.resolve();
    return this.db.batch(async (tx) => q.queueLastSeen(tx, seen));
  }

  /** After a coordinator crash nobody is connected, whatever the store says. */
  async resetConnections(): Promise<void> {
    await this.db.write(async (tx) => {
      await q.markAllDisconnected(tx);
    });
  }

  /** The dispatch key set version an agent said it holds (only ever raised). */
  recordDispatchKeysHeld(agentId: string, version: number): Promise<void> {
    return this.db.batch(async (tx) => {
      await q.raiseDispatchKeysVersion(tx, agentId, version);
    });
  }

  /** Every enrolled, unrevoked agent with the dispatch key set version it last acknowledged. */
  async dispatchKeyHolders(): Promise<DispatchKeyHolder[]> {
    const rows = await q.dispatchKeyVersions(this.db);
    return rows.map((r) => ({ agentId: r.id, name: r.name, online: r.connected === 1, version: r.dispatch_keys_version }));
  }

  /** The CA bundle version an agent said it holds (only ever raised). */
  recordCaBundleHeld(agentId: string, version: number): Promise<void> {
    return this.db.batch(async (tx) => {
      await q.raiseCaBundleVersion(tx, agentId, version);
    });
  }

  /** Every enrolled, unrevoked agent with the CA bundle version it last acknowledged and its current certificate. */
  async caBundleHolders(): Promise<CaBundleHolder[]> {
    const rows = await q.caBundleVersions(this.db);
    return rows.map((r) => ({ agentId: r.id, name: r.name, online: r.connected === 1, version: r.ca_bundle_version, certificatePem: r.certificate_pem ?? '' }));
  }
}

/** An agent as a CA roll-over sees it: the CA bundle it acknowledged and its current certificate. */
export interface CaBundleHolder extends DispatchKeyHolder {
  /** PEM of the agent's current certificate (which CA issued it decides whether retiring a CA locks it out). */
  readonly certificatePem: string;
}

export interface DispatchKeyHolder {
  readonly agentId: string;
  readonly name: string;
  readonly online: boolean;
  /** null: the agent never acknowledged a set (it predates acknowledgements, or never connected since). */
  readonly version: number | null;
}
