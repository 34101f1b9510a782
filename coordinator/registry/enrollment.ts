/**
 * Enrollment: a bootstrap token plus a CSR become an agent identity and a short-lived client
 * certificate. Token check, certificate issue, registry insert and audit record commit in one
 * transaction; a refusal spends no token use but is audited.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import { agentCertValidity, issueAgentCertificate, parseCsr, type CertificateAuthority } from '../pki/ca.js';
import type { TokenStore } from './token-store.js';
import type { AgentRegistry } from './agent-registry.js';
import { validAgentName } from './bootstrap-token.js';
import { boundFacts, labelProblems, type HostFacts, type Labels } from '../../core/labels.js';
import { failedPrecondition, HandrailError, invalidArgument, permissionDenied } from '../../core/errors.js';
import { HANDRAIL_VERSION, MIN_AGENT_VERSION } from '../../core/version.js';
import { judgeVersions } from '../../core/version-compat.js';
import { remoteHost, type VersionRefusalLog } from '../audit/version-refusal-log.js';
import { newId } from '../../core/ids.js';
import { RateLimiter } from '../../core/rate-limiter.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AuditEvents } from '../audit/events.js';
import type { Counters } from '../metrics/counters.js';

export interface EnrollInput {
  readonly token: string;
  readonly csrPem: string;
  readonly labels: Labels;
  readonly facts: Partial<HostFacts> | undefined;
  readonly remote: string;
}

export interface EnrollOutput {
  readonly agentId: string;
  readonly name: string;
  readonly certificatePem: string;
  readonly labels: Labels;
}

export interface EnrollerDeps {
  readonly db: Database;
  /** The issuing CA now (a CA roll-over switches it under a running coordinator). */
  readonly ca: () => CertificateAuthority;
  /** Audits version refusals (rate-limited); optional for tools that enroll without one. */
  readonly versionRefusals?: VersionRefusalLog;
  readonly tokens: TokenStore;
  readonly registry: AgentRegistry;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly counters: Counters;
  readonly certTtlMs: number;
  /** Enrollment attempts allowed per remote address per minute (burst of the same size); 0 = no limit. */
  readonly attemptsPerMinute: number;
  readonly now: () => number;
}

export class Enroller {
  /** Enrollment is the only unauthenticated RPC: attempts are limited per remote address. */
  private readonly limiter: RateLimiter | undefined;

  constructor(private readonly d: EnrollerDeps) {
    this.limiter = d.attemptsPerMinute > 0 ? new RateLimiter(d.attemptsPerMinute, d.attemptsPerMinute / 60) : undefined;
  }

  async enroll(input: EnrollInput): Promise<EnrollOutput> {
    const host = remoteHost(input.remote);
    if (this.limiter && !this.limiter.take(host, this.d.now())) {
      this.d.counters.inc('enrollments_refused_total', { reason: 'rate_limited' });
      this.d.log.warn({ event: 'enroll.refused', reason: 'rate_limited', remote: input.remote }, 'too many enrollment attempts');
      throw new HandrailError('resource_exhausted', 'too many enrollment attempts from this address; wait a minute');
    }
    try {
      return await this.enrollUnchecked(input);
    } catch (e) {
      const reason = e instanceof HandrailError ? e.kind : 'internal';
      this.d.counters.inc('enrollments_refused_total', { reason });
      throw e;
    }
  }

  private async enrollUnchecked(input: EnrollInput): Promise<EnrollOutput> {
    const { d } = this;
    const csr = parseCsr(input.csrPem);
    if (!validAgentName(csr.commonName)) {
      throw invalidArgument(`agent name "${csr.commonName.slice(0, 80)}" in the CSR is invalid: use letters, digits, . _ - (at most 63 characters)`);
    }
    const problems = labelProblems(input.labels);
    if (problems.length > 0) throw invalidArgument(problems.join('; '));
    const facts = boundFacts(input.facts);
    const version = judgeVersions({ self: 'coordinator', ownVersion: HANDRAIL_VERSION, peerVersion: facts.agentVersion, minPeerVersion: MIN_AGENT_VERSION });
    const now = d.now();
    const agentId = newId('agt');
    const result = await d.db.write(async (tx) => {
      const verdict = await d.tokens.consume(tx, input.token, csr.commonName, now);
      if (!verdict.ok) {
        await d.audit.append(tx, {
          type: AuditEvents.agentEnrollRefused,
          actor: { kind: 'agent', id: csr.commonName },
          data: { name: csr.commonName, reason: verdict.reason, tokenId: verdict.tokenId ?? null, remote: input.remote },
        });
        return { ok: false as const, reason: verdict.reason, detail: verdict.detail };
      }
      if (!version.ok) {
        // Only to a holder of a good token (the message names this coordinator's release), and
        // thrown so that the transaction rolls back: the token stays unspent for an upgraded agent.
        d.log.warn({ event: 'enroll.refused', reason: 'agent_version', name: csr.commonName, agentVersion: facts.agentVersion, tokenId: verdict.token.id, remote: input.remote }, version.message);
        d.versionRefusals?.record({ stage: 'enrollment', agentId: null, name: csr.commonName, agentVersion: facts.agentVersion, coordinatorVersion: HANDRAIL_VERSION, upgrade: version.upgrade, remote: input.remote });
        throw failedPrecondition(version.message);
      }
      const pinned = verdict.token.labels;
      const labels = { ...input.labels, ...pinned };
      const cert = issueAgentCertificate(d.ca(), csr, agentId, agentCertValidity(now, d.certTtlMs));
      await d.registry.insertEnrolled(
        tx,
        { id: agentId, name: csr.commonName, labels, pinnedLabels: pinned, facts, tokenId: verdict.token.id, cert },
        now,
      );
      await d.audit.append(tx, {
        type: AuditEvents.agentEnrolled,
        actor: { kind: 'agent', id: agentId },
        data: {
          agentId,
          name: csr.commonName,
          tokenId: verdict.token.id,
          labels,
          certificateSerial: cert.serial,
          certificateFingerprint256: cert.fingerprint256,
          notAfter: new Date(cert.notAfter).toISOString(),
          remote: input.remote,
        },
      });
      return { ok: true as const, cert, labels };
    });
    if (!result.ok) {
      d.log.warn(
        { event: 'enroll.refused', reason: result.reason, name: csr.commonName, remote: input.remote },
        `enrollment refused: ${result.detail}`,
      );
      throw permissionDenied(`enrollment refused: ${result.detail}`);
    }
    d.counters.inc('enrollments_total');
    d.log.info({ event: 'agent.enrolled', agentId, name: csr.commonName, remote: input.remote, serial: result.cert.serial }, 'agent enrolled');
    return { agentId, name: csr.commonName, certificatePem: result.cert.pem, labels: result.labels };
  }
}

/** "ipv4:10.0.0.5:1234" / "ipv6:[::1]:1234" (grpc-js peers) → the address without the port. */
