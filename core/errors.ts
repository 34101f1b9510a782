/**
 * The small error taxonomy every layer uses. Each kind maps once to a gRPC status
 * (coordinator/gateway/grpc-status.ts) and once to an HTTP status (web/errors.ts).
 */
export const ERROR_KINDS = [
  'invalid_argument',
  'not_found',
  'already_exists',
  'permission_denied',
  'unauthenticated',
  'failed_precondition',
  'resource_exhausted',
  'unavailable',
  'cancelled',
  'deadline_exceeded',
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

export class HandrailError extends Error {
  readonly kind: ErrorKind;
  /** Optional hint telling the user what to do about it. */
  readonly hint: string | undefined;
  /** Structured detail for API callers (the fields a request got wrong); plain JSON values. */
  readonly details: unknown;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; hint?: string; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HandrailError';
    this.kind = kind;
    this.hint = options?.hint;
    this.details = options?.details;
  }
}

export const invalidArgument = (message: string, hint?: string): HandrailError =>
  new HandrailError('invalid_argument', message, hint === undefined ? undefined : { hint });
export const notFound = (message: string): HandrailError => new HandrailError('not_found', message);
export const permissionDenied = (message: string): HandrailError =>
  new HandrailError('permission_denied', message);
export const unauthenticated = (message: string): HandrailError =>
  new HandrailError('unauthenticated', message);
export const failedPrecondition = (message: string, hint?: string): HandrailError =>
  new HandrailError('failed_precondition', message, hint === undefined ? undefined : { hint });

export function isHandrailError(e: unknown): e is HandrailError {
  return e instanceof HandrailError;
}

/** A message safe to show a user: the error's own message for known kinds, generic otherwise. */
export function describeError(e: unknown): string {
  if (e instanceof HandrailError) return e.hint ? `${e.message} (${e.hint})` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
