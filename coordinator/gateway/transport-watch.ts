/**
 * What grpc-js refuses on its own (a message over its size cap) or lets through against the
 * protocol (a compressed flag without an encoding, taken as uncompressed; a half-close in the
 * middle of a message). Agents never compress, so the agent stream refuses any compressed
 * message (which also rules out decompression bombs). Each would otherwise show only as a
 * cancelled stream or pass unnoticed. This server interceptor watches the request
 * framing of the agent stream, ends a bad stream with a status that says why, and reports each
 * refusal with the agent id so it is logged and counted like every other one.
 *
 * grpc-js has no public hook for this: the interceptor reads the request's HTTP/2 stream from
 * the base call (a field grpc-js does not export), read-only. If a grpc-js upgrade moves it,
 * the watch reports itself unavailable once and the transport test fails.
 */
import { status, type ServerInterceptingCallInterface, type ServerInterceptor, ServerInterceptingCall } from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import { GrpcFrameScanner, type FrameProblem } from './grpc-frame-scanner.js';

export interface TransportRefusal {
  readonly agentId: string;
  readonly remote: string;
  readonly reason: FrameProblem['kind'] | 'half_closed_mid_message';
  readonly detail: string;
}

interface Http2RequestStream extends Duplex {
  readonly sentHeaders?: unknown;
}

function requestStream(call: ServerInterceptingCallInterface): Http2RequestStream | undefined {
  const s = (call as unknown as { stream?: unknown }).stream;
  return s && typeof s === 'object' && typeof (s as Duplex).on === 'function' && 'sentHeaders' in s ? (s as Http2RequestStream) : undefined;
}

export function transportWatch(o: {
  readonly capBytes: number;
  readonly onRefused: (r: TransportRefusal) => void;
  readonly onUnavailable: () => void;
}): ServerInterceptor {
  let warned = false;
  return (_method, call) => {
    const stream = requestStream(call);
    if (!stream) {
      if (!warned) o.onUnavailable();
      warned = true;
      return new ServerInterceptingCall(call);
    }
    const scanner = new GrpcFrameScanner(o.capBytes);
    let ended = false;
    const refuse = (reason: TransportRefusal['reason'], detail: string, code: status): void => {
      if (ended) return;
      ended = true;
      // Read only on a refusal: getAuthContext parses the peer certificate again, on every stream.
      const peer = call.getAuthContext().sslPeerCertificate;
      const agentId = typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '';
      o.onRefused({ agentId, remote: call.getPeer(), reason, detail });
      call.sendStatus({ code, details: detail });
    };
    // Passive and first: grpc-js paused the stream and drives its flow (a prepended listener does
    // not resume it), and a bad frame is refused before grpc-js acts on it.
    stream.prependListener('data', (chunk: Buffer) => {
      const problem = scanner.push(chunk);
      if (!problem) return;
      if (problem.kind === 'over_transport_cap') refuse(problem.kind, `message of ${problem.declaredBytes} bytes is over the ${o.capBytes}-byte transport limit`, status.RESOURCE_EXHAUSTED);
      else if (problem.kind === 'compressed_message') refuse(problem.kind, 'message is compressed: the agent stream takes uncompressed messages only', status.INTERNAL);
      else refuse(problem.kind, `message frame has invalid flags 0x${problem.flags.toString(16)}`, status.INTERNAL);
    });
    stream.prependListener('end', () => {
      if (scanner.midMessage) refuse('half_closed_mid_message', 'the stream was half-closed in the middle of a message', status.INVALID_ARGUMENT);
    });
    return new ServerInterceptingCall(call);
  };
}
