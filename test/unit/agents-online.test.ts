import { describe, expect, it } from 'vitest';
import { onlineFromStore } from '../../cli/commands/agents.js';
import type { AgentRecord } from '../../coordinator/registry/agent-registry.js';

const base: AgentRecord = {
  id: 'agt_1', name: 'web-1', labels: {}, pinnedLabels: {}, facts: {}, enrolledAt: 0, certSerial: '01', certNotAfter: 0,
  connected: true, lastSeenAt: 0, heartbeatIntervalMs: 10_000, lastAddress: null, version: null, revokedAt: null, revokeReason: null,
};

describe('online as the store shows it', () => {
  const now = 1_000_000;
  it.each([
    ['seen just now', { lastSeenAt: now }, true],
    ['seen within three and a half intervals plus slack', { lastSeenAt: now - 39_000 }, true],
    ['silent longer than the coordinator would keep it', { lastSeenAt: now - 41_000 }, false],
    ['marked disconnected', { connected: false, lastSeenAt: now }, false],
    ['never seen', { lastSeenAt: null }, false],
    ['a slow heartbeat keeps it online longer', { heartbeatIntervalMs: 60_000, lastSeenAt: now - 200_000 }, true],
    ['a fast heartbeat shows it offline sooner', { heartbeatIntervalMs: 1_000, lastSeenAt: now - 9_000 }, false],
    ['an old row without the interval uses the default', { heartbeatIntervalMs: null, lastSeenAt: now - 30_000 }, true],
  ] as const)('%s', (_name, patch, expected) => {
    expect(onlineFromStore({ ...base, ...patch }, now)).toBe(expected);
  });
});
