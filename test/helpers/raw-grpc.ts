/** A bare grpc-js client for adversarial tests: any credentials, any bytes on the agent stream. */
import { Client, credentials, Metadata, type ChannelCredentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { BACKSTOP_MS } from './processes.js';

export function rawClient(address: string, creds: ChannelCredentials): Client {
  return new Client(address, creds, {
    'grpc.ssl_target_name_override': 'handrail-coordinator',
    'grpc.default_authority': 'handrail-coordinator',
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_send_message_length': 8 * 1024 * 1024,
  });
}

export function tlsCredentials(caPem: string, keyPem?: string, certPem?: string): ChannelCredentials {
  return keyPem && certPem ? credentials.createSsl(Buffer.from(caPem), Buffer.from(keyPem), Buffer.from(certPem)) : credentials.createSsl(Buffer.from(caPem));
}

/** Opens the agent stream sending raw bytes; resolves with the status the server ends it with. */
export function rawConnect(client: Client, frames: readonly Buffer[]): Promise<{ code: number; details: string; received: number }> {
  return new Promise((resolve) => {
    const call: ClientDuplexStream<Buffer, Buffer> = client.makeBidiStreamRequest(
      '/handrail.v1.AgentGatewayService/Connect',
      (b: Buffer) => b,
      (b: Buffer) => b,
      new Metadata(),
      { deadline: Date.now() + BACKSTOP_MS }, // a backstop: the server ends every call these tests make
    );
    let received = 0;
    call.on('data', () => received++);
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details, received }));
    call.on('status', (s: { code: number; details: string }) => {
      if (s.code === 0) resolve({ code: 0, details: s.details, received });
    });
    for (const f of frames) call.write(f);
  });
}
