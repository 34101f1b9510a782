/** Structured logs (pino): one JSON event per line, secrets redacted by key wherever they appear. */
import { pino, type Logger, type DestinationStream } from 'pino';

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

export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  const options = { level, name, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 2, sync: false }));
}
