/**
 * Structured logs (pino), secrets redacted by key wherever they appear. One JSON event per
 * line on stderr, unless stderr is a terminal (or --log-format pretty): then pino-pretty's
 * coloured lines. pino-pretty is loaded only then, so services and agents never load it.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type DestinationStream } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
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
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** auto: pretty on a terminal (a person reads it), JSON otherwise (a collector reads it). */
export function chooseLogFormat(format: LogFormat, isTty: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTty ? 'pretty' : 'json') : format;
}

export interface LoggerOptions {
  readonly format?: LogFormat;
  /** Where the lines go; default stderr (fd 2). */
  readonly destination?: DestinationStream;
}

export function createLogger(level: string, name: string, options: LoggerOptions = {}): Logger {
  if (!LEVELS.includes(level)) throw new HandrailError('invalid_argument', `log level "${level}" is not one of ${LEVELS.join(', ')}`);
  const format = options.format ?? 'auto';
  if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new HandrailError('invalid_argument', `log format "${format}" is not one of ${LOG_FORMATS.join(', ')}`);
  const settings = { level, name, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.destination) return pino(settings, options.destination);
  if (chooseLogFormat(format, process.stderr.isTTY === true) === 'pretty') return pino(settings, prettyStream());
  return pino(settings, pino.destination({ dest: 2, sync: false }));
}

function prettyStream(): DestinationStream {
  // Loaded here only: a require, not an import, so nothing loads it when logs are JSON.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (o: PrettyOptions) => DestinationStream;
  return pretty({ destination: 2, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
}
