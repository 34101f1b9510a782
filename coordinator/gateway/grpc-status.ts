/** The one mapping between Handrail's error kinds and gRPC status codes, both ways. */
import { status, type ServiceError } from '@grpc/grpc-js';
import { HandrailError, type ErrorKind } from '../../core/errors.js';

const TO_GRPC: Record<ErrorKind, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  permission_denied: status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  failed_precondition: status.FAILED_PRECONDITION,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  cancelled: status.CANCELLED,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  internal: status.INTERNAL,
};

export function toGrpcError(e: unknown): Partial<ServiceError> {
  if (e instanceof HandrailError) return { code: TO_GRPC[e.kind], details: e.message, message: e.message };
  return { code: status.INTERNAL, details: 'internal error', message: 'internal error' };
}

export function fromGrpcError(e: { code?: number; details?: string; message?: string }): HandrailError {
  const entry = (Object.entries(TO_GRPC) as Array<[ErrorKind, status]>).find(([, c]) => c === e.code);
  return new HandrailError(entry ? entry[0] : 'unavailable', e.details || e.message || 'gRPC error');
}
