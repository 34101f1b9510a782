import { describe, expect, it } from 'vitest';
import { allocationsByFunction, type SamplingHeapProfile } from '../../bench/heap-sampling.js';

type Node = SamplingHeapProfile['head'];
const node = (functionName: string, selfSize: number, children: Node[] = []): Node => ({ callFrame: { functionName, url: `file:///x/${functionName}.js`, lineNumber: 0 }, selfSize, children });

describe('allocationsByFunction (bench/heap-sampling.ts)', () => {
  it('sums self and inclusive bytes per function, counting a recursive function once per stack', () => {
    const profile: SamplingHeapProfile = {
      head: node('(root)', 0, [
        node('result', 100, [node('decode', 40), node('result', 10, [node('decode', 5)])]),
        node('pump', 30, [node('decode', 20)]),
      ]),
    };
    const a = allocationsByFunction(profile);
    expect(a.total).toBe(205);
    expect(Object.fromEntries(a.self)).toEqual({ '(root) (root).js:1': 0, 'result result.js:1': 110, 'decode decode.js:1': 65, 'pump pump.js:1': 30 });
    expect(Object.fromEntries(a.inclusive)).toEqual({ '(root) (root).js:1': 205, 'result result.js:1': 155, 'decode decode.js:1': 65, 'pump pump.js:1': 50 });
    expect(a.self[0]?.[0]).toBe('result result.js:1');
  });
});
