/**
 * Whether a certificate the coordinator issued (at enrollment or renewal) may become this
 * agent's identity: it chains to the pinned CA (or a CA of the agent's CA bundle), names this agent, is a client certificate with
 * a sane validity window, and belongs to the key the agent just made. Pure: takes values.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { issuedBy, splitPems } from '../core/ca-bundle.js';

/** Clock skew tolerated between coordinator and agent for notBefore. */
const SKEW_MS = 5 * 60_000;
/** Longer than any agent certificate lifetime the coordinator can be configured with. */
const MAX_LIFETIME_MS = 400 * 86_400_000;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export interface IssuedCertificateInput {
  readonly certPem: string;
  /** The CAs the agent trusts (one PEM, or several: the CA bundle of a roll-over). */
  readonly caPem: string;
  readonly agentId: string;
  readonly privateKey: KeyObject;
  readonly now: number;
}

export type CertificateVerdict = { readonly ok: true; readonly notAfter: number } | { readonly ok: false; readonly reason: string };

export function judgeIssuedCertificate(input: IssuedCertificateInput): CertificateVerdict {
  if (input.certPem.length === 0 || input.certPem.length > 16_384) return refuse(`the certificate is ${input.certPem.length} bytes (expected a PEM certificate)`);
  const pems = input.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length !== 1) return refuse(`expected exactly one PEM certificate, got ${pems.length}`);
  let cert: X509Certificate;
  const cas: X509Certificate[] = [];
  try {
    cert = new X509Certificate(pems[0] as string);
  } catch (e) {
    return refuse(`the certificate does not parse: ${(e as Error).message}`);
  }
  try {
    for (const pem of splitPems(input.caPem)) cas.push(new X509Certificate(pem));
  } catch (e) {
    return refuse(`the pinned CA certificate does not parse: ${(e as Error).message}`);
  }
  // During a CA roll-over the agent trusts both CAs of its bundle: renewals come from the next one.
  if (!cas.some((ca) => issuedBy(cert, ca))) return refuse(`the certificate is not issued by the pinned CA or a CA of its bundle (issuer: ${oneLine(cert.issuer)})`);
  if (cert.ca) return refuse('the certificate is a CA certificate, not an agent certificate');
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn !== input.agentId) return refuse(`the certificate names ${JSON.stringify(cn ?? '')}, not this agent (${input.agentId})`);
  const urn = `URI:urn:handrail:agent:${input.agentId}`;
  if (!(cert.subjectAltName ?? '').split(', ').includes(urn)) return refuse(`the certificate lacks the subject alternative name ${urn.slice(4)}`);
  const usages = cert.keyUsage;
  if (usages !== undefined && !usages.includes(CLIENT_AUTH_OID)) return refuse('the certificate is not for client authentication');
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (!(notAfter > notBefore)) return refuse('the certificate’s validity window is empty');
  if (notBefore > input.now + SKEW_MS) return refuse(`the certificate is not valid before ${new Date(notBefore).toISOString()}, in the future`);
  if (notAfter <= input.now) return refuse(`the certificate expired at ${new Date(notAfter).toISOString()}`);
  if (notAfter - notBefore > MAX_LIFETIME_MS) return refuse(`the certificate lasts ${Math.round((notAfter - notBefore) / 86_400_000)} days (at most 400)`);
  if (!sameKey(cert.publicKey, createPublicKey(input.privateKey))) return refuse('the certificate is for another key than the one this agent just made');
  return { ok: true, notAfter };
}

function sameKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ type: 'spki', format: 'der' }).equals(b.export({ type: 'spki', format: 'der' }));
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ').slice(0, 200);
}

function refuse(reason: string): CertificateVerdict {
  return { ok: false, reason };
}
