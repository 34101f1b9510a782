/**
 * Reads the gRPC length-prefixed message framing (1 flag byte, 4 length bytes, payload) of a
 * request stream as it arrives, without keeping payloads: enough to say what grpc-js would
 * refuse silently (over its size cap), what it would take against the protocol (a compressed
 * flag without an encoding; agents never compress, so any compressed message is refused) or bad
 * flags, and whether
 * the client half-closed in the middle of a message. Pure: bytes in, findings out.
 */
export type FrameProblem =
  | { readonly kind: 'over_transport_cap'; readonly declaredBytes: number }
  | { readonly kind: 'compressed_message' }
  | { readonly kind: 'bad_frame_flags'; readonly flags: number };

export class GrpcFrameScanner {
  private header = Buffer.alloc(5);
  private headerFill = 0;
  private remaining = 0;
  private length = 0;

  /** `onMessage` is told each whole message's payload length as its last byte arrives. */
  constructor(
    private readonly capBytes: number,
    private readonly onMessage?: (bytes: number) => void,
  ) {}

  /** Whether the stream stopped inside a message (header or payload). */
  get midMessage(): boolean {
    return this.headerFill > 0 || this.remaining > 0;
  }

  /** Scans a chunk; returns the first problem found in it, if any. */
  push(chunk: Uint8Array): FrameProblem | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.onMessage?.(this.length);
        continue;
      }
      this.header[this.headerFill++] = chunk[i++] as number;
      if (this.headerFill < 5) continue;
      this.headerFill = 0;
      const flags = this.header[0] as number;
      const length = this.header.readUInt32BE(1);
      if (flags > 1) return { kind: 'bad_frame_flags', flags };
      if (flags === 1) return { kind: 'compressed_message' };
      if (length > this.capBytes) return { kind: 'over_transport_cap', declaredBytes: length };
      this.remaining = length;
      this.length = length;
      if (length === 0) this.onMessage?.(0);
    }
    return undefined;
  }
}
