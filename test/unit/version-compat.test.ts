import { describe, expect, it } from 'vitest';
import { judgeVersions, parseVersion, type Side } from '../../core/version-compat.js';
import { HANDRAIL_VERSION, MIN_AGENT_VERSION, MIN_COORDINATOR_VERSION } from '../../core/version.js';

describe('the version handshake decision', () => {
  // [deciding side, own, peer, oldest peer served, expected: 'ok' or the side to upgrade]
  const table: ReadonlyArray<readonly [Side, string, string, string, 'ok' | Side]> = [
    ['coordinator', '0.1.0', '0.1.0', '0.1.0', 'ok'],
    ['coordinator', '0.3.0', '0.2.5', '0.2.0', 'ok'], // older agent still served
    ['coordinator', '0.1.0', '0.4.0', '0.1.0', 'ok'], // newer agent: it decides, not us
    ['coordinator', '0.1.0', '2.0.0', '0.1.0', 'ok'],
    ['coordinator', '0.3.0', '0.1.9', '0.2.0', 'agent'],
    ['coordinator', '1.0.0', '0.9.9', '1.0.0', 'agent'],
    ['coordinator', '0.2.0', '0.2.0-rc.1', '0.2.0', 'ok'], // pre-release tails are ignored
    ['coordinator', '0.1.0', '', '0.1.0', 'agent'], // pre-handshake agent
    ['coordinator', '0.1.0', 'banana', '0.1.0', 'agent'],
    ['coordinator', '0.1.0', '1.2', '0.1.0', 'agent'],
    ['agent', '0.1.0', '0.1.0', '0.1.0', 'ok'],
    ['agent', '0.3.0', '0.9.0', '0.2.0', 'ok'], // newer coordinator
    ['agent', '0.3.0', '0.1.0', '0.2.0', 'coordinator'],
    ['agent', '0.3.0', '', '0.2.0', 'coordinator'],
    ['agent', '0.3.0', 'v0.2.1', '0.2.0', 'ok'],
    ['agent', '0.3.0', '0.10.0', '0.9.0', 'ok'], // numeric, not string, order
    ['agent', '0.3.0', '0.9.0', '0.10.0', 'coordinator'],
  ];
  it.each(table)('%s %s meeting %s (serves from %s): %s', (self, own, peer, min, expected) => {
    const v = judgeVersions({ self, ownVersion: own, peerVersion: peer, minPeerVersion: min });
    if (expected === 'ok') {
      expect(v).toEqual({ ok: true });
      return;
    }
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.upgrade).toBe(expected);
    expect(v.message).toContain(`upgrade the ${expected}`);
    expect(v.message).toContain(`${self} ${own} serves ${expected}s from ${min} on`);
    expect(v.message).not.toContain('\n');
  });

  it('says what the peer reported', () => {
    const old = judgeVersions({ self: 'coordinator', ownVersion: '0.3.0', peerVersion: '0.1.9', minPeerVersion: '0.2.0' });
    expect(old).toEqual({
      ok: false,
      upgrade: 'agent',
      message: 'agent 0.1.9 is too old: coordinator 0.3.0 serves agents from 0.2.0 on; upgrade the agent (re-run its install line from `handrail agent install-command`)',
    });
    const none = judgeVersions({ self: 'agent', ownVersion: '0.3.0', peerVersion: '', minPeerVersion: '0.2.0' });
    expect(!none.ok && none.message).toBe('coordinator reports no version (a release before the version handshake): agent 0.3.0 serves coordinators from 0.2.0 on; upgrade the coordinator');
  });

  it('parses MAJOR.MINOR.PATCH and nothing looser', () => {
    expect(parseVersion('1.22.333')).toEqual([1, 22, 333]);
    expect(parseVersion('v0.1.0+build.5')).toEqual([0, 1, 0]);
    for (const bad of ['', '1', '1.2', '1.2.3.4', 'x.y.z', ' 1.2.3 junk', '1.2.3-' + 'a'.repeat(100)]) expect(parseVersion(bad)).toBeNull();
  });

  it('this release serves itself on both sides', () => {
    expect(judgeVersions({ self: 'coordinator', ownVersion: HANDRAIL_VERSION, peerVersion: HANDRAIL_VERSION, minPeerVersion: MIN_AGENT_VERSION }).ok).toBe(true);
    expect(judgeVersions({ self: 'agent', ownVersion: HANDRAIL_VERSION, peerVersion: HANDRAIL_VERSION, minPeerVersion: MIN_COORDINATOR_VERSION }).ok).toBe(true);
  });
});
