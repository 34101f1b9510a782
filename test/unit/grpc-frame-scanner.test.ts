import { describe, expect, it } from 'vitest';
import { GrpcFrameScanner } from '../../coordinator/gateway/grpc-frame-scanner.js';

const frame = (flags: number, length: number, payload = Buffer.alloc(length)): Buffer => {
  const h = Buffer.alloc(5);
  h[0] = flags;
  h.writeUInt32BE(length, 1);
  return Buffer.concat([h, payload]);
};

/** Feeds the bytes in chunks of `size`; returns the first problem and whether it ended mid-message. */
const scan = (bytes: Buffer, size: number, cap = 100): { problem: string | undefined; mid: boolean } => {
  const s = new GrpcFrameScanner(cap);
  for (let i = 0; i < bytes.length; i += size) {
    const p = s.push(bytes.subarray(i, i + size));
    if (p) return { problem: p.kind, mid: s.midMessage };
  }
  return { problem: undefined, mid: s.midMessage };
};

describe('reading gRPC message framing as it arrives', () => {
  const cases: Array<[string, Buffer, string | undefined, boolean]> = [
    ['whole messages', Buffer.concat([frame(0, 10), frame(0, 0), frame(0, 100)]), undefined, false],
    ['a message at the cap', frame(0, 100), undefined, false],
    ['a message over the cap', frame(0, 101), 'over_transport_cap', false],
    ['a compressed message', frame(1, 3), 'compressed_message', false],
    ['bad flags', frame(2, 3), 'bad_frame_flags', false],
    ['a stream stopping inside a payload', frame(0, 50).subarray(0, 30), undefined, true],
    ['a stream stopping inside a header', Buffer.concat([frame(0, 1), frame(0, 9).subarray(0, 3)]), undefined, true],
  ];
  for (const size of [1, 2, 7, 4096]) {
    it.each(cases)(`%s, in chunks of ${size} bytes`, (_label, bytes, problem, mid) => {
      expect(scan(bytes, size)).toEqual({ problem, mid: problem ? expect.any(Boolean) : mid });
    });
  }

  it.each([1, 2, 7, 4096])('tells each whole message as its last byte arrives, in chunks of %i bytes', (size) => {
    const seen: number[] = [];
    const s = new GrpcFrameScanner(100, (n) => seen.push(n));
    const bytes = Buffer.concat([frame(0, 10), frame(0, 0), frame(0, 100), frame(0, 3), frame(0, 50).subarray(0, 30)]);
    for (let i = 0; i < bytes.length; i += size) s.push(bytes.subarray(i, i + size));
    expect(seen).toEqual([10, 0, 100, 3]);
    expect(s.midMessage).toBe(true);
  });

  it('reads a length in all four bytes (no sign or overflow)', () => {
    expect(new GrpcFrameScanner(2 ** 32).push(frame(0, 0xffffffff, Buffer.alloc(0)))).toBeUndefined();
    expect(new GrpcFrameScanner(8 * 2 ** 20).push(frame(0, 0xffffffff, Buffer.alloc(0)))).toEqual({ kind: 'over_transport_cap', declaredBytes: 0xffffffff });
  });
});
