/** HOST:PORT parsing for listen settings. */
import { UsageError } from './options.js';

export function parseListen(text: string, setting: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s]*):(\d{1,5})$/.exec(text);
  if (!m) throw new UsageError(`${setting} "${text}" must look like HOST:PORT, e.g. 0.0.0.0:7443`);
  const port = Number(m[2]);
  if (port > 65535) throw new UsageError(`${setting}: port ${port} is out of range`);
  return { host: m[1] || '0.0.0.0', port };
}
