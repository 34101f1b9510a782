import { describe, expect, it } from 'vitest';
import { parsePath, resolvePath } from '../../coordinator/webhooks/json-path.js';

const DOC = JSON.parse(
  '{"alerts":[{"labels":{"instance":"web-1:9100","alertname":"DiskFull"}},{"labels":{"instance":"web-2"}}],"odd key":{"a.b":1},"n":0,"f":false,"z":null,"s":"text","__proto__":{"polluted":true}}',
) as unknown;

describe('webhook JSON paths', () => {
  it.each([
    ['$', DOC],
    ['$.alerts[0].labels.instance', 'web-1:9100'],
    ['$.alerts[-1].labels.instance', 'web-2'],
    ['$.alerts[-2].labels.alertname', 'DiskFull'],
    ['$["odd key"]["a.b"]', 1],
    ['$["alerts"][1]["labels"].instance', 'web-2'],
    ['$.n', 0],
    ['$.f', false],
    ['$.z', null],
    // JSON.parse makes "__proto__" an own data member: it is data like any other key
    ['$.__proto__.polluted', true],
  ])('%s resolves', (path, expected) => {
    const p = parsePath(path);
    expect(p.ok).toBe(true);
    if (p.ok) expect(resolvePath(DOC, p.path)).toEqual({ found: true, value: expected });
  });

  it.each([
    ['$.missing', '$.missing'],
    ['$.alerts[2].labels', '$.alerts[2]'],
    ['$.alerts[-3]', '$.alerts[-3]'],
    ['$.alerts.length', '$.alerts.length'],
    ['$.s.length', '$.s.length'],
    ['$.n.toFixed', '$.n.toFixed'],
    ['$.constructor', '$.constructor'],
    ['$.alerts[0].constructor.name', '$.alerts[0].constructor'],
    ['$.alerts[0].labels.hasOwnProperty', '$.alerts[0].labels.hasOwnProperty'],
    ['$.alerts[0].labels.__proto__', '$.alerts[0].labels.__proto__'],
    ['$["toString"]', '$.toString'],
    ['$.s[0]', '$.s[0]'],
    ['$.alerts.0', undefined],
  ])('%s finds nothing (no prototype, no length, no string indexing)', (path, missing) => {
    const p = parsePath(path);
    if (!p.ok) {
      expect(missing).toBeUndefined();
      return;
    }
    expect(resolvePath(DOC, p.path)).toEqual({ found: false, missing });
  });

  it('does not see inherited or accessor members of other objects either', () => {
    const p = parsePath('$.x');
    if (!p.ok) throw new Error(p.error);
    const withGetter = Object.defineProperty({}, 'x', { get: () => 'from a getter', enumerable: true });
    expect(resolvePath(withGetter, p.path).found).toBe(false);
    expect(resolvePath(Object.create({ x: 1 }) as unknown, p.path).found).toBe(false);
  });

  it.each([
    ['', /must start with \$/],
    ['alerts[0]', /must start with \$/],
    ['$.', /no name after "\." at column 3/],
    ['$..x', /no name after "\."/],
    ['$.1abc', /no name after "\."/],
    ['$[01]', /column 2/],
    ['$[1.5]', /column 2/],
    ["$['single']", /column 2/],
    ['$["unterminated]', /column 2/],
    ['$.a b', /column 4/],
    ['$[*]', /column 2/],
    [`$${'.a'.repeat(33)}`, /more than 32 steps/],
    [`$.${'a'.repeat(300)}`, /longer than 256/],
  ])('refuses %j', (path, message) => {
    const p = parsePath(path);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.error).toMatch(message);
  });

  it('reads escapes in quoted keys', () => {
    const p = parsePath('$["a\\"b\\u0041"]');
    expect(p.ok && p.path.segments).toEqual([{ kind: 'key', name: 'a"bA' }]);
  });
});
