/**
 * First start of an agent: make a key pair locally (it never leaves the host), send a CSR with
 * the one-time token, store the certificate, the CA and the trusted dispatch keys.
 */
import { generateKeyPairSync } from 'node:crypto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { EnrollmentServiceClient, type EnrollResponse } from '../proto/gen/handrail/v1/enrollment.js';
import type { HostFacts, Labels } from '../core/labels.js';
import { channelOptions, type CoordinatorAddress } from './coordinator-address.js';
import type { StateDir } from './state-dir.js';

export interface EnrollOptions {
  readonly address: CoordinatorAddress;
  readonly token: string;
  readonly caPem: string;
  readonly name: string;
  readonly labels: Labels;
  readonly facts: HostFacts;
  readonly timeoutMs?: number;
}

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
  // node-forge is loaded only when a CSR is needed, to keep the idle agent small.
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
    await state.ensure();
    await state.writeCa(o.caPem);
    await state.writeCredentials(keyPem, res.certificatePem);
    await state.writeIdentity({
      agentId: res.agentId,
      name: o.name,
      coordinator: o.address.target,
      dispatchKeys: res.dispatchKeys.map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem })),
      labels: o.labels,
    });
    return res;
  } catch (e) {
    const err = e as ServiceError;
    // 7 PERMISSION_DENIED, 3 INVALID_ARGUMENT: the token or CSR is wrong; retrying will not help.
    const permanent = err.code === 7 || err.code === 3 || err.code === 16;
    throw new EnrollError(`enrollment failed: ${err.details || err.message}`, !permanent);
  } finally {
    client.close();
  }
}
