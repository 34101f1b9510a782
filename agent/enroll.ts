/**
 * First start of an agent: make a key pair locally (it never leaves the host), send a CSR with
 * the one-time token, store the certificate, the CA and the trusted dispatch keys.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { EnrollmentServiceClient, type EnrollResponse } from '../proto/gen/handrail/v1/enrollment.js';
import type { HostFacts, Labels } from '../core/labels.js';
import { channelOptions, type CoordinatorAddress } from './coordinator-address.js';
import type { StateDir } from './state-dir.js';
import { judgeIssuedCertificate } from './issued-certificate.js';
import { judgeDispatchKeySet } from '../core/dispatch-key-set.js';
import { splitPems } from '../core/ca-bundle.js';
import { decodeDispatchKeySet, signedKeySetFromWire } from '../proto/codec/dispatch-key-set-codec.js';

export interface EnrollOptions {
  readonly address: CoordinatorAddress;
  readonly token: string;
  readonly caPem: string;
  readonly name: string;
  readonly labels: Labels;
  readonly facts: HostFacts;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** Agent ids as the coordinator makes them (core/ids.ts): a prefix and base32. */
const AGENT_ID = /^[a-z]{1,16}-[0-9a-z]{8,64}$/;

export class EnrollError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

export async function enroll(state: StateDir, o: EnrollOptions): Promise<EnrollResponse> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // The CSR code is loaded only when a CSR is needed (enrollment, renewal).
  const { createCsr } = await import('../core/csr.js');
  const csrPem = createCsr(privateKey, o.name);
  const client = new EnrollmentServiceClient(o.address.target, credentials.createSsl(Buffer.from(o.caPem)), channelOptions(o.address));
  try {
    const res = await new Promise<EnrollResponse>((resolve, reject) => {
      client.enroll(
        { token: o.token, csrPem, labels: o.labels, facts: o.facts },
        new Metadata(),
        { deadline: Date.now() + (o.timeoutMs ?? 15_000) },
        (err: ServiceError | null, r?: EnrollResponse) => (err || !r ? reject(err) : resolve(r)),
      );
    });
    const accepted = checkAnswer(res, keyPem, o);
    if (!accepted.ok) throw new EnrollError(`enrollment answer refused: ${accepted.reason}; nothing was saved. Check that --ca is this coordinator's CA and that --coordinator points at it`, false);
    await state.ensure();
    // The CA pinned with --ca, never one the answer names: the answer is checked against it.
    await state.writeCa(o.caPem);
    await state.writeCredentials(keyPem, res.certificatePem);
    await state.writeIdentity({
      agentId: res.agentId,
      name: o.name,
      coordinator: o.address.target,
      dispatchKeys: accepted.keys,
      dispatchKeySetVersion: accepted.version,
      labels: o.labels,
    });
    return res;
  } catch (e) {
    if (e instanceof EnrollError) throw e;
    const err = e as ServiceError;
    // 7 PERMISSION_DENIED, 3 INVALID_ARGUMENT: the token or CSR is wrong; 9 FAILED_PRECONDITION: this
    // agent is too old for the coordinator (the message says so). Retrying will not help.
    const permanent = err.code === 7 || err.code === 3 || err.code === 9 || err.code === 16;
    throw new EnrollError(`enrollment failed: ${err.details || err.message}`, !permanent);
  } finally {
    client.close();
  }
}

type CheckedAnswer = { ok: true; keys: Array<{ keyId: string; publicKeyPem: string }>; version: number } | { ok: false; reason: string };

/** The answer becomes this agent's identity only if its certificate and key set hold up. */
function checkAnswer(res: EnrollResponse, keyPem: string, o: EnrollOptions): CheckedAnswer {
  if (!AGENT_ID.test(res.agentId)) return { ok: false, reason: `the agent id ${JSON.stringify(res.agentId.slice(0, 80))} is malformed` };
  const cert = judgeIssuedCertificate({ certPem: res.certificatePem, caPem: o.caPem, agentId: res.agentId, privateKey: createPrivateKey(keyPem), now: (o.now ?? Date.now)() });
  if (!cert.ok) return cert;
  if (!res.dispatchKeySet) return { ok: false, reason: 'the answer carries no signed dispatch key set (is the coordinator older than this agent? upgrade the coordinator)' };
  const keys = judgeDispatchKeySet({ signed: signedKeySetFromWire(res.dispatchKeySet), decode: decodeDispatchKeySet, current: undefined, caPublicKeys: splitPems(o.caPem).map((pem) => createPublicKey(pem)), allowCaRecovery: false });
  if (!keys.ok) return keys;
  return { ok: true, keys: keys.set.keys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })), version: keys.set.version };
}
