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

/**
 * What an authorization refusal refused and why, for the audit log. Never part of the answer:
 * the caller sees the error's kind and message only, the same as for any other refusal (a 404
 * for an execution they may not see is the 404 of an unknown id).
 */
export interface Refusal {
  /** What was asked: approve, deny, cancel, adhoc, reload. */
  readonly action: string;
  readonly targetId: string | null;
  readonly runbookId: string | null;
  /** The `<policy>/<rule>` that refused, or a named non-policy rule (the two-person rule…). */
  readonly rule: string;
  readonly reason: string;
}

/** A permission refusal (or a not-found that hides one) carrying what the audit log records. */
export class RefusedError extends HandrailError {
  constructor(
    kind: 'permission_denied' | 'not_found',
    message: string,
    readonly refusal: Refusal,
  ) {
    super(kind, message);
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
