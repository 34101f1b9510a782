/**
 * Requests Node's HTTP parser refuses before any handler runs (headers over its limit, a
 * malformed request line) get the same JSON error body as everything else, with the status
 * Node would have sent. Pure: the raw HTTP/1.1 response for a parser error code.
 */
import { errorBody } from './errors.js';
import type { ErrorKind } from '../core/errors.js';

const BY_CODE: Record<string, { status: number; reason: string; kind: ErrorKind; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', kind: 'resource_exhausted', message: 'request headers are larger than the limit' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, reason: 'Payload Too Large', kind: 'resource_exhausted', message: 'chunk extensions are larger than the limit' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', kind: 'deadline_exceeded', message: 'the request was not received in time' },
};
const BAD_REQUEST = { status: 400, reason: 'Bad Request', kind: 'invalid_argument' as const, message: 'malformed HTTP request' };

export function clientErrorResponse(code: string | undefined): string {
  const r = (code !== undefined ? BY_CODE[code] : undefined) ?? BAD_REQUEST;
  const body = JSON.stringify(errorBody(r.kind, r.message));
  return [
    `HTTP/1.1 ${r.status} ${r.reason}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
