/**
 * What the coordinator serves for installing agents (GET /install/…) and the one line an admin
 * pastes on a host (POST /api/v1/agents/install-command, `handrail agent install-command`).
 * Pure: the bytes come in from server/ (which reads dist/agent-bundle/), values go out.
 *
 * The line runs in the admin's own interactive shell, and only shell builtins (printf, echo,
 * umask) ever see the token, so it appears in no process's argv or environment: it goes to a
 * 0600 file the install script hands to the agent (bootstrapTokenFile), which deletes it once
 * enrolled. The first download (the CA) cannot be checked by TLS, so the line checks it against
 * the fingerprint it carries; everything after that is fetched with that CA pinned (--cacert).
 */
import { createHash } from 'node:crypto';

export interface InstallKit {
  readonly version: string;
  /** The bundled agent (dist/agent-bundle/handrail-agent.mjs). */
  readonly bundle: Uint8Array;
  readonly bundleSha256: string;
  /** The install script, with this bundle's SHA-256 in it. */
  readonly script: string;
  readonly caPem: string;
  /** SHA-256 of the CA file's bytes, as `sha256sum ca.pem` prints it. */
  readonly caSha256: string;
}

export const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

export function makeInstallKit(o: { version: string; bundle: Uint8Array; scriptTemplate: string; caPem: string }): InstallKit {
  const bundleSha256 = sha256Hex(o.bundle);
  const script = o.scriptTemplate.replaceAll('@HANDRAIL_VERSION@', o.version).replaceAll('@BUNDLE_SHA256@', bundleSha256);
  return { version: o.version, bundle: o.bundle, bundleSha256, script, caPem: o.caPem, caSha256: sha256Hex(o.caPem) };
}

export interface InstallLineInput {
  /** The coordinator's web address as hosts reach it (https). */
  readonly serverUrl: string;
  /** Its agent port as hosts reach it, HOST:PORT. */
  readonly coordinator: string;
  /** The name to verify on its certificate, when hosts dial an address not among its names. */
  readonly serverName?: string;
  readonly caSha256: string;
  readonly token: string;
}

/** One POSIX-shell word: single-quoted, with any ' written as '\''. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export function installLine(i: InstallLineInput): string {
  const base = i.serverUrl.replace(/\/+$/, '');
  const q = shellQuote;
  const args = ['--server', q(base), '--coordinator', q(i.coordinator), ...(i.serverName ? ['--server-name', q(i.serverName)] : []), '--ca', '"$d/ca.pem"', '--token-file', '"$d/token"'];
  const steps = [
    `curl -fsSk -o "$d/ca.pem" ${q(`${base}/install/ca.pem`)}`,
    `{ echo ${q(i.caSha256)}'  '"$d/ca.pem" | sha256sum -c --status - || { echo 'handrail: the coordinator CA does not match the fingerprint in this line; not installing' >&2; false; }; }`,
    `curl -fsS --cacert "$d/ca.pem" -o "$d/install.sh" ${q(`${base}/install/agent.sh`)}`,
    `(umask 077 && printf '%s\\n' ${q(i.token)} > "$d/token")`,
    `{ [ "$(id -u)" -eq 0 ] && s= || s=sudo; }`,
    `$s sh "$d/install.sh" ${args.join(' ')}`,
  ];
  // The temporary directory (with the token) goes whether or not a step failed.
  return `d=$(mktemp -d) && { ${steps.join(' && ')}; r=$?; rm -rf "$d"; [ "$r" -eq 0 ]; }`;
}
