import { connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { ConnectRequest } from '../../proto/gen/handrail/v1/gateway.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

/**
 * Below grpc-js: a raw HTTP/2 client with a real agent certificate sends framing that grpc-js
 * would cut silently or take against the protocol. Each stream ends with a status that says
 * why, and the coordinator logs and counts the refusal with the agent id.
 */
describe('the agent stream refuses bad gRPC framing, with a status and a logged reason', () => {
  let fleet: Fleet;
  let agentId: string;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    fleet = await Fleet.create();
    await fleet.startCoordinator();
    await fleet.startAgent('framed');
    agentId = await fleet.waitOnline('framed');
    const a = fleet.agents.get('framed')!;
    await a.proc.stop();
    const creds = await readFile(join(a.stateDir, 'identity', 'agent.pem'), 'utf8');
    const [, port] = fleet.coordinator!.address.split(':');
    session = connect(`https://127.0.0.1:${port}`, {
      ca: await readFile(fleet.caFile),
      key: /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(creds)![0],
      cert: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(creds)![0],
      servername: 'handrail-coordinator',
    });
    session.on('error', () => undefined);
  });
  afterAll(async () => {
    session?.destroy();
    await fleet?.close();
  });

  const frame = (flags: number, payload: Uint8Array, declared = payload.length): Buffer => {
    const h = Buffer.alloc(5);
    h[0] = flags;
    h.writeUInt32BE(declared, 1);
    return Buffer.concat([h, payload]);
  };
  const hello = Buffer.from(ConnectRequest.encode({ msg: { $case: 'hello', value: { facts: undefined, labels: {}, spooledResults: 0, agentVersion: HANDRAIL_VERSION } } }).finish());

  /** Opens the agent stream, writes the chunks (then half-closes if asked), resolves with the final gRPC status. */
  const stream = (chunks: Buffer[], halfClose: boolean): Promise<{ code: number; message: string }> =>
    new Promise((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/handrail.v1.AgentGatewayService/Connect', 'content-type': 'application/grpc', te: 'trailers' });
      let code: number | undefined;
      let message = '';
      // The status arrives in the trailers (or a trailers-only response); the client then resets its side.
      const take = (h: Record<string, unknown>): void => {
        if (h['grpc-status'] === undefined) return;
        code = Number(h['grpc-status']);
        message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        resolve({ code, message });
        req.close();
      };
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', () => undefined);
      req.on('error', reject);
      req.on('close', () => (code === undefined ? reject(new Error('stream closed without a gRPC status')) : resolve({ code, message })));
      for (const c of chunks) req.write(c);
      if (halfClose) req.end();
    });

  const refusal = (reason: string) => fleet.coordinator!.proc.waitForLog((l) => l.event === 'session.message_refused' && l['reason'] === reason && l['agentId'] === agentId, 15_000, `refusal ${reason}`);

  it.each<[string, () => Buffer[], boolean, number, RegExp]>([
    ['a message declared over the 8 MiB transport cap', () => [frame(0, Buffer.alloc(1024), 9 * 1024 * 1024)], false, 8, /over the 8388608-byte transport limit/],
    ['a compressed message on a stream with no encoding', () => [frame(1, hello)], false, 13, /compressed/],
    ['invalid frame flags', () => [frame(0x80, hello)], false, 13, /invalid flags 0x80/],
  ])('ends the stream on %s', async (_label, chunks, halfClose, code, why) => {
    const r = await stream(chunks(), halfClose);
    expect(r.code).toBe(code);
    expect(r.message).toMatch(why);
  });

  it('ends a stream half-closed in the middle of a message instead of holding it open', async () => {
    const r = await stream([frame(0, hello, hello.length + 10)], true); // ten bytes short
    expect(r).toEqual({ code: 3, message: 'the stream was half-closed in the middle of a message' });
  });

  it('ends a cleanly half-closed stream with a status too', async () => {
    const r = await stream([frame(0, hello)], true);
    expect(r.code).toBe(0);
  });

  it('logs and counts an agent’s report that it refused a trust update', async () => {
    const refused = Buffer.from(ConnectRequest.encode({ msg: { $case: 'trustRefused', value: { what: 'certificate', reason: 'the certificate is not issued by the pinned CA' } } }).finish());
    const req = session.request({ ':method': 'POST', ':path': '/handrail.v1.AgentGatewayService/Connect', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('data', () => undefined);
    req.on('error', () => undefined);
    req.write(Buffer.concat([frame(0, hello), frame(0, refused)]));
    const line = await fleet.coordinator!.proc.waitForLog((l) => l.event === 'agent.trust_refused' && l['agentId'] === agentId);
    expect(line).toMatchObject({ what: 'certificate', reason: 'the certificate is not issued by the pinned CA' });
    req.close();
    const text = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
    expect(text).toMatch(/^handrail_agent_trust_refusals_total\{what="certificate"\} 1$/m);
  });

  it('logs each refusal with the agent id and counts it by reason', async () => {
    for (const reason of ['over_transport_cap', 'compressed_message', 'bad_frame_flags', 'half_closed_mid_message']) await refusal(reason);
    const text = await (await fetch(`${fleet.coordinator!.url}/metrics`)).text();
    for (const reason of ['over_transport_cap', 'compressed_message', 'bad_frame_flags', 'half_closed_mid_message']) {
      expect(text).toMatch(new RegExp(`^handrail_messages_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'));
    }
  });
});
