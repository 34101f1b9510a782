/**
 * The version handshake's one decision: may this side serve a peer of that version? Each side
 * declares the oldest peer it can serve (MIN_AGENT_VERSION on the coordinator,
 * MIN_COORDINATOR_VERSION on the agent) and refuses only peers older than that. A newer peer is
 * never refused by the older side, which cannot know what the newer one needs: the newer side
 * decides. So upgrades go in either order within what the newer side still serves, and a
 * refusal always names the side to upgrade: the older one.
 */

export type Side = 'agent' | 'coordinator';

export type VersionVerdict = { readonly ok: true } | { readonly ok: false; readonly upgrade: Side; readonly message: string };

export interface VersionCheck {
  /** Which side is deciding. */
  readonly self: Side;
  readonly ownVersion: string;
  /** What the peer reported ("" when it reported nothing: a release before the handshake). */
  readonly peerVersion: string;
  /** The oldest peer release this side serves. */
  readonly minPeerVersion: string;
}

type Triple = readonly [number, number, number];

/** "1.2.3" (optionally "v1.2.3", with a "-pre" or "+build" tail, ignored) → [1, 2, 3]; else null. */
export function parseVersion(text: string): Triple | null {
  const m = /^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:[-+][0-9A-Za-z.+-]{0,64})?$/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

function compare(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

const HOW_TO_UPGRADE: Record<Side, string> = {
  agent: 'upgrade the agent (re-run its install line from `handrail agent install-command`)',
  coordinator: 'upgrade the coordinator',
};

export function judgeVersions(c: VersionCheck): VersionVerdict {
  const peer: Side = c.self === 'agent' ? 'coordinator' : 'agent';
  const min = parseVersion(c.minPeerVersion);
  if (!min) throw new Error(`minimum ${peer} version "${c.minPeerVersion}" is not MAJOR.MINOR.PATCH`);
  const v = parseVersion(c.peerVersion);
  if (v && compare(v, min) >= 0) return { ok: true };
  const what =
    c.peerVersion === ''
      ? `${peer} reports no version (a release before the version handshake)`
      : v
        ? `${peer} ${c.peerVersion} is too old`
        : `${peer} version "${c.peerVersion.slice(0, 40)}" is not MAJOR.MINOR.PATCH`;
  return { ok: false, upgrade: peer, message: `${what}: ${c.self} ${c.ownVersion} serves ${peer}s from ${c.minPeerVersion} on; ${HOW_TO_UPGRADE[peer]}` };
}
