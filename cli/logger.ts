/** Structured logs (pino): one JSON event per line, secrets redacted by key wherever they appear. */
import { pino, type Logger, type DestinationStream } from 'pino';
import { HandrailError } from '../core/errors.js';

export const REDACT_PATHS = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'privateKey',
  '*.privateKey',
  'keyPem',
  '*.keyPem',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
];

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  if (!LEVELS.includes(level)) throw new HandrailError('invalid_argument', `log level "${level}" is not one of ${LEVELS.join(', ')}`);
  const options = { level, name, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 2, sync: false }));
}
