/** Settings shared by several commands (flag, env var, config key, default — see options.ts). */
import type { Ed25519Choice } from '../core/ed25519.js';
import type { OptionSpec } from './options.js';

export const DATA_DIR: OptionSpec = { type: 'string', env: 'HANDRAIL_DATA_DIR', configKey: 'dataDir', default: './data', placeholder: 'DIR', description: 'coordinator data dir: SQLite store, signing keys' };
export const CERTS_DIR: OptionSpec = { type: 'string', env: 'HANDRAIL_CERTS_DIR', configKey: 'certsDir', default: './certs', placeholder: 'DIR', description: 'where the CA and server certificate live' };
export const GRPC_LISTEN: OptionSpec = { type: 'string', env: 'HANDRAIL_GRPC_LISTEN', configKey: 'grpcListen', default: '0.0.0.0:7443', placeholder: 'HOST:PORT', description: 'agent port (mutual TLS gRPC; enrollment on the same port)' };
export const HTTP_LISTEN: OptionSpec = { type: 'string', env: 'HANDRAIL_HTTP_LISTEN', configKey: 'httpListen', default: '127.0.0.1:8080', placeholder: 'HOST:PORT', description: 'web page and REST API' };
export const RUNBOOKS_DIR: OptionSpec = { type: 'string', env: 'HANDRAIL_RUNBOOKS_DIR', configKey: 'runbooksDir', default: './runbooks', placeholder: 'DIR', description: 'runbooks and policies (YAML)' };
export const SERVER: OptionSpec = { type: 'string', env: 'HANDRAIL_SERVER', configKey: 'server', default: 'http://127.0.0.1:8080', placeholder: 'URL', description: 'coordinator HTTP API' };
export const SERVER_CA: OptionSpec = { type: 'string', env: 'HANDRAIL_CA', configKey: 'ca', placeholder: 'FILE', description: "CA certificate to trust for an https --server (the coordinator's ca.pem, with --http-tls)" };
export const API_TOKEN: OptionSpec = { type: 'string', env: 'HANDRAIL_TOKEN', configKey: 'token', placeholder: 'TOKEN', description: 'API token (`handrail user token NAME`)' };
/** What every command that calls the HTTP API takes, in this order (its --help lists them so); read by apiClientFor (api-client.ts). */
export const API_OPTIONS = { server: SERVER, ca: SERVER_CA, token: API_TOKEN } as const satisfies Record<string, OptionSpec>;
export const JSON_OUTPUT: OptionSpec = { type: 'boolean', description: 'print JSON instead of a table' };
export const LOG_LEVEL: OptionSpec = { type: 'string', env: 'HANDRAIL_LOG_LEVEL', configKey: 'logLevel', default: 'info', placeholder: 'LEVEL', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], description: 'how much the process logs (on stderr)' };
export const LOG_FORMAT: OptionSpec = { type: 'string', env: 'HANDRAIL_LOG_FORMAT', configKey: 'logFormat', default: 'auto', placeholder: 'FORMAT', choices: ['auto', 'json', 'pretty'], description: 'log lines as JSON or pretty text; auto: pretty when stderr is a terminal, else JSON' };

/**
 * HANDRAIL_ED25519=openssl: this process signs and verifies Ed25519 through node:crypto
 * (OpenSSL) instead of libsodium, to compare the two or to sidestep the addon. Environment only,
 * read once at start (cli/main.ts): it is the whole process's choice, not a command's.
 */
export const ED25519_ENV = 'HANDRAIL_ED25519';

export function ed25519Choice(env: NodeJS.ProcessEnv): Ed25519Choice {
  return env[ED25519_ENV] === 'openssl' ? 'openssl' : 'auto';
}
