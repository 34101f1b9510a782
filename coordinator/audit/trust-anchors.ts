/**
 * Trust anchors for offline verification, as a user keeps them outside the coordinator: audit
 * key ids (`audit-` + 16 hex digits) and CA certificates' SHA-256 fingerprints. A trust file
 * holds one per line, in either form; `#` starts a comment. Pure: text in, values out.
 */
import { isAuditKeyId, normalizeFingerprint } from './verify.js';

export interface TrustAnchors {
  readonly keyIds: readonly string[];
  /** Upper-case hex, no colons. */
  readonly caFingerprints: readonly string[];
}

export interface TrustProblem {
  readonly line: number;
  readonly message: string;
}

export function parseTrustAnchors(text: string): { anchors: TrustAnchors; problems: TrustProblem[] } {
  const keyIds: string[] = [];
  const caFingerprints: string[] = [];
  const problems: TrustProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const value = raw.replace(/#.*/, '').trim();
    if (value === '') return;
    const fp = normalizeFingerprint(value);
    if (isAuditKeyId(value)) keyIds.push(value);
    else if (fp !== undefined) caFingerprints.push(fp);
    else problems.push({ line: i + 1, message: `${JSON.stringify(value)} is neither an audit key id (audit-<16 hex digits>) nor a SHA-256 fingerprint (64 hex digits, colons optional)` });
  });
  return { anchors: { keyIds: [...new Set(keyIds)], caFingerprints: [...new Set(caFingerprints)] }, problems };
}
