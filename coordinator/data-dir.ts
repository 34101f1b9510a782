/**
 * Opening a coordinator data dir: the SQLite store (migrated), the signing keys, the audit
 * log and the stores built on them. Both the running coordinator and the admin CLI commands
 * (which act on the data dir directly) start here.
 */
import { mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Database } from './store/database.js';
import { migrate } from './store/migrations.js';
import { Keyring } from './pki/keyring.js';
import { AuditLog } from './audit/audit-log.js';
import { TokenStore } from './registry/token-store.js';
import { AgentRegistry } from './registry/agent-registry.js';
import { UserStore } from './auth/user-store.js';
import { SessionStore } from './auth/session-store.js';

export interface DataDir {
  readonly path: string;
  readonly db: Database;
  readonly keyring: Keyring;
  readonly audit: AuditLog;
  readonly tokens: TokenStore;
  readonly registry: AgentRegistry;
  readonly users: UserStore;
  /** Portal login sessions. */
  readonly sessions: SessionStore;
  close(): Promise<void>;
}

export const STORE_FILE = 'handrail.db';

/** `log` receives the stores' background failures (a running coordinator passes its logger). */
export async function openDataDir(path: string, now: () => number = Date.now, log?: Logger): Promise<DataDir> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700).catch(() => undefined);
  const db = await Database.open(join(path, STORE_FILE));
  await migrate(db);
  const keyring = await Keyring.open(db, join(path, 'keys'), now);
  const audit = new AuditLog(db, keyring, now, log ? { log } : {});
  return {
    path,
    db,
    keyring,
    audit,
    tokens: new TokenStore(db, audit),
    registry: new AgentRegistry(db, audit),
    users: new UserStore(db, audit, log),
    sessions: new SessionStore(db, audit),
    close: async () => {
      await audit.close();
      await db.close();
    },
  };
}
