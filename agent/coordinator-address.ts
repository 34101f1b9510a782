/** Parsing HOST:PORT and choosing the TLS name an agent verifies on the coordinator's certificate. */
import { isIP } from 'node:net';

export interface CoordinatorAddress {
  readonly host: string;
  readonly port: number;
  /** grpc-js target, e.g. "10.0.0.5:7443" or "[::1]:7443". */
  readonly target: string;
  /** The name checked against the server certificate's SANs. */
  readonly tlsName: string;
}

export const DEFAULT_TLS_NAME_FOR_IPS = 'handrail-coordinator';

export function parseCoordinatorAddress(text: string, serverName?: string): CoordinatorAddress {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s/]+):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`coordinator address "${text}" must look like HOST:PORT (e.g. coordinator.example.net:7443)`);
  const host = m[1] as string;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`coordinator port ${port} is out of range`);
  const target = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  // TLS SNI cannot carry an IP address, so agents dialing an IP verify a fixed SAN instead.
  const tlsName = serverName ?? (isIP(host) ? DEFAULT_TLS_NAME_FOR_IPS : host);
  return { host, port, target, tlsName };
}

export function channelOptions(addr: CoordinatorAddress, extra: Record<string, string | number> = {}): Record<string, string | number> {
  const opts: Record<string, string | number> = {
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    ...extra,
  };
  if (addr.tlsName !== addr.host) {
    opts['grpc.ssl_target_name_override'] = addr.tlsName;
    opts['grpc.default_authority'] = addr.tlsName;
  }
  return opts;
}
