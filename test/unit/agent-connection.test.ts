import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, reconnectDelay } from '../../agent/backoff.js';
import { ConnectionStateMachine } from '../../agent/connection-state.js';
import { parseCoordinatorAddress, channelOptions } from '../../agent/coordinator-address.js';

describe('agent reconnect backoff', () => {
  it.each([
    [0, 0, 250],
    [0, 1, 500],
    [3, 0, 2000],
    [3, 1, 4000],
    [20, 1, 30000],
    [20, 0, 15000],
  ])('attempt %i with random %f waits %i ms', (attempt, r, ms) => {
    expect(backoffDelay(attempt, { initialMs: 500, maxMs: 30_000, factor: 2 }, () => r)).toBe(ms);
  });

  it('spreads a fleet out (jitter)', () => {
    const values = new Set(Array.from({ length: 50 }, () => backoffDelay(4)));
    expect(values.size).toBeGreaterThan(10);
  });
});

describe('agent reconnect schedule', () => {
  const full = () => 1;
  it.each([
    // attempt, how long the lost stream lasted, ms since a healthy stream was lost → delay, next attempt
    ['a healthy stream lost: start over, quickly', 7, 60_000, Infinity, 500, 1],
    ['dials failing right after a healthy loss: at most 4 s apart', 6, 0, 30_000, 4_000, 7],
    ['dials failing long after a healthy loss: up to the 30 s ceiling', 6, 0, 200_000, 30_000, 7],
    ['never connected (first start): the full schedule', 6, 0, Infinity, 30_000, 7],
    ['a stream that did not hold: no reset', 2, 1_000, 30_000, 2_000, 3],
  ])('%s', (_what, attempt, lasted, sinceHealthyLoss, ms, next) => {
    expect(reconnectDelay(attempt, lasted, DEFAULT_BACKOFF, full, sinceHealthyLoss)).toEqual({ ms, nextAttempt: next });
  });

  it('keeps the jitter in recovery (a fleet does not come back in lockstep)', () => {
    const values = new Set(Array.from({ length: 50 }, () => reconnectDelay(8, 0, DEFAULT_BACKOFF, Math.random, 1_000).ms));
    expect(values.size).toBeGreaterThan(10);
    for (const v of values) expect(v).toBeGreaterThanOrEqual(2_000);
  });
});

describe('agent connection state machine', () => {
  it('allows the documented life and refuses illegal transitions', () => {
    const m = new ConnectionStateMachine();
    const seen: string[] = [];
    m.onChange((from, to) => seen.push(`${from}>${to}`));
    m.move('connecting');
    m.move('streaming');
    m.move('backoff');
    m.move('connecting');
    m.move('backoff');
    expect(() => m.move('streaming')).toThrow(/illegal agent connection transition backoff -> streaming/);
    m.move('stopped');
    expect(() => m.move('connecting')).toThrow(/illegal/);
    expect(seen).toEqual(['idle>connecting', 'connecting>streaming', 'streaming>backoff', 'backoff>connecting', 'connecting>backoff', 'backoff>stopped']);
  });
});

describe('coordinator address', () => {
  it.each([
    ['coord.example.net:7443', 'coord.example.net:7443', 'coord.example.net', false],
    ['10.0.0.5:7443', '10.0.0.5:7443', 'handrail-coordinator', true],
    ['[::1]:7443', '[::1]:7443', 'handrail-coordinator', true],
  ])('%s dials %s and verifies %s', (text, target, tlsName, override) => {
    const a = parseCoordinatorAddress(text);
    expect(a.target).toBe(target);
    expect(a.tlsName).toBe(tlsName);
    expect('grpc.ssl_target_name_override' in channelOptions(a)).toBe(override);
  });

  it.each(['coord.example.net', 'http://x:1', 'x:99999', ':7443', 'a b:1'])('rejects %j', (text) => {
    expect(() => parseCoordinatorAddress(text)).toThrow(/HOST:PORT|out of range/);
  });
});
