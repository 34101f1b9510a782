import { describe, expect, it } from 'vitest';
import { agentsLacking, decideRetire, decideSwitch, type DispatchKeyHolder } from '../../coordinator/pki/dispatch-rotation.js';
import { dispatchSetVersion, type PublicKeyRecord } from '../../coordinator/pki/keyring.js';

const h = (name: string, online: boolean, version: number | null): DispatchKeyHolder => ({ agentId: `agt-${name}`, name, online, version });
const V = 2000;

describe('when a dispatch key rotation switches signing', () => {
  it.each([
    ['every online agent holds it', [h('a', true, V), h('b', true, V + 5), h('off', false, 1000)], 0, false, 'switch', []],
    ['no agent is online', [h('off', false, null)], 0, false, 'switch', []],
    ['an online agent is behind, still waiting', [h('a', true, V), h('b', true, 1000)], 10, false, 'wait', ['b']],
    ['an online agent never acknowledged one (older agent)', [h('a', true, null)], 10, false, 'wait', ['a']],
    ['the wait ran out', [h('a', true, V), h('b', true, 1000)], 100, false, 'timed_out', ['b']],
    ['the wait ran out, forced', [h('a', true, V), h('b', true, 1000)], 100, true, 'switch', ['b']],
    ['forced but still within the wait', [h('b', true, 1000)], 10, true, 'wait', ['b']],
  ] as const)('%s', (_what, holders, waitedMs, force, kind, lacking) => {
    const d = decideSwitch({ holders, version: V, waitedMs, waitMs: 100, force });
    expect(d.kind).toBe(kind);
    expect(d.lacking.map((x) => x.name)).toEqual(lacking);
    if (d.kind === 'switch') expect(d.forced).toBe(lacking.length > 0);
  });
});

describe('when the old dispatch key may be retired', () => {
  const base = { activeVersion: V, signingSince: 10_000, now: 20_000, requestTtlMs: 5_000, force: false };
  it.each([
    ['everyone holds the active key and old steps expired', [h('a', true, V), h('off', false, V)], {}, 'retire', /./],
    ['an offline agent lacks it', [h('a', true, V), h('off', false, 1000)], {}, 'refuse', /1 agent\(s\) do not hold the active key yet.*off \(agt-off, offline\)/],
    ['old steps may still be delivered', [h('a', true, V)], { now: 12_000 }, 'refuse', /for 3 s \(the request TTL\)/],
    ['the rotation never switched', [h('a', true, V)], { signingSince: null }, 'refuse', /finish `handrail keys rotate dispatch` first/],
    ['forced past an agent that lacks it', [h('off', false, null)], { force: true }, 'retire', /./],
  ] as const)('%s', (_what, holders, over, kind, reason) => {
    const d = decideRetire({ ...base, ...over, holders });
    expect(d.kind).toBe(kind);
    if (d.kind === 'refuse') expect(d.reason).toMatch(reason);
  });

  it('counts online-only or every agent as asked', () => {
    const all = [h('a', true, 1000), h('off', false, 1000), h('new', false, V)];
    expect(agentsLacking(all, V, 'online').map((x) => x.name)).toEqual(['a']);
    expect(agentsLacking(all, V, 'all').map((x) => x.name)).toEqual(['a', 'off']);
  });
});

describe('the dispatch key set version', () => {
  const k = (keyId: string, createdAt: number, retiredAt: number | null, purpose: 'dispatch' | 'audit' = 'dispatch'): PublicKeyRecord => ({ keyId, purpose, algorithm: 'ed25519', publicKeyPem: '', createdAt, signingSince: createdAt, retiredAt });
  it('is the newest key for stores from before publication (what agents already hold)', () => {
    expect(dispatchSetVersion([k('d1', 100, 200), k('d2', 200, null)])).toBe(200);
  });
  it('grows when a key is published and when one is retired, and ignores audit keys', () => {
    expect(dispatchSetVersion([k('d1', 100, null), k('d2', 300, null)])).toBe(300);
    expect(dispatchSetVersion([k('d1', 100, 400), k('d2', 300, null)])).toBe(400);
    expect(dispatchSetVersion([k('d1', 100, null), k('a1', 900, null, 'audit')])).toBe(100);
  });
});
