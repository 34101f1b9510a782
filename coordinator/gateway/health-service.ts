/**
 * The standard gRPC health service (grpc.health.v1) and server reflection for the agent port.
 *
 * Who may call them: only clients with a certificate the gateway accepts (signed by the
 * Handrail CA, current, not revoked: an enrolled agent's), because they are added to the
 * mutual-TLS agent server only. A client without a certificate lands on the enrollment server,
 * which serves neither (UNIMPLEMENTED), so an anonymous peer cannot even list the services.
 */
import { status, type Server, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { HealthCheckResponse_ServingStatus, HealthService, type HealthCheckRequest, type HealthCheckResponse } from '../../proto/gen/grpc/health/v1/health.js';
import { DESCRIPTOR_SET_BASE64 } from '../../proto/gen/descriptor-set.js';

export type ServingState = 'serving' | 'not_serving';

/** The services the agent port reports on; '' is the server as a whole (the standard's convention). */
export const HEALTH_SERVICES = ['', 'handrail.v1.AgentGatewayService', 'handrail.v1.EnrollmentService'] as const;

export class HealthStatus {
  private state: ServingState = 'not_serving';
  private readonly watchers = new Set<(s: ServingState) => void>();

  get current(): ServingState {
    return this.state;
  }

  set(s: ServingState): void {
    if (s === this.state) return;
    this.state = s;
    for (const w of [...this.watchers]) w(s);
  }

  watch(fn: (s: ServingState) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
}

function wire(s: ServingState): HealthCheckResponse {
  return { status: s === 'serving' ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING };
}

const known = (service: string): boolean => (HEALTH_SERVICES as readonly string[]).includes(service);

/** Adds grpc.health.v1.Health and server reflection (v1 and v1alpha) to `server`. */
export function addHealthAndReflection(server: Server, health: HealthStatus): void {
  server.addService(HealthService, {
    check: (call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, cb: sendUnaryData<HealthCheckResponse>) => {
      const service = call.request.service;
      if (!known(service)) {
        cb({ code: status.NOT_FOUND, details: `unknown service "${service.slice(0, 200)}"` });
        return;
      }
      cb(null, wire(health.current));
    },
    watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
      if (!known(call.request.service)) {
        // The standard: an unknown service is reported, not refused, and may appear later.
        call.write({ status: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN });
        return;
      }
      call.write(wire(health.current));
      const stop = health.watch((s) => call.write(wire(s)));
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  });
  new ReflectionService(reflectionInput(Buffer.from(DESCRIPTOR_SET_BASE64, 'base64'))).addToServer(server);
}

/**
 * The files of a FileDescriptorSet, each as its own encoded FileDescriptorProto, in the shape
 * @grpc/reflection indexes (values carrying `fileDescriptorProtos`). Not through proto-loader:
 * it merges the files of one package into one (handrail/v1/*.proto into gateway.proto, with
 * no imports), and clients then cannot resolve the messages (grpc/grpc-node#3018).
 */
export function reflectionInput(descriptorSet: Uint8Array): ConstructorParameters<typeof ReflectionService>[0] {
  const files: Buffer[] = [];
  const r = new BinaryReader(descriptorSet);
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    // FileDescriptorSet: repeated FileDescriptorProto file = 1;
    if (field === 1 && wire === WireType.LengthDelimited) files.push(Buffer.from(r.bytes()));
    else r.skip(wire);
  }
  return { files: { format: 'Protocol Buffer 3 FileDescriptorProto', fileDescriptorProtos: files } } as unknown as ConstructorParameters<typeof ReflectionService>[0];
}
