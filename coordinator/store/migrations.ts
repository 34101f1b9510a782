/**
 * The store's schema, as an ordered list of migrations. Never edit a shipped migration;
 * append a new one. `migrate()` applies what a database has not seen, in one transaction each.
 */
import type { Database } from './database.js';
import { failedPrecondition, type HandrailError } from '../../core/errors.js';
import { HANDRAIL_VERSION } from '../../core/version.js';

export const MIGRATIONS: readonly string[] = [
  // 1: fleet, audit, executions
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  -- Public halves of the coordinator's signing keys (dispatch and audit), kept forever so
  -- old records still verify after rotation. Private keys live only in the data dir.
  CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('dispatch', 'audit')),
    algorithm TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
  );

  CREATE TABLE bootstrap_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    uses_allowed INTEGER NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    labels_json TEXT NOT NULL DEFAULT '{}',
    name_pattern TEXT,
    description TEXT,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
  );

  CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    labels_json TEXT NOT NULL DEFAULT '{}',
    pinned_labels_json TEXT NOT NULL DEFAULT '{}',
    facts_json TEXT NOT NULL DEFAULT '{}',
    token_id TEXT,
    enrolled_at INTEGER NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_not_after INTEGER NOT NULL,
    connected INTEGER NOT NULL DEFAULT 0,
    last_seen_at INTEGER,
    last_address TEXT,
    version TEXT,
    revoked_at INTEGER,
    revoke_reason TEXT
  );
  CREATE INDEX agents_revoked ON agents (revoked_at) WHERE revoked_at IS NOT NULL;

  -- Every certificate the CA issued to an agent (enrollment and renewals).
  CREATE TABLE agent_certificates (
    serial TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id),
    fingerprint256 TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    certificate_pem TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE INDEX agent_certificates_agent ON agent_certificates (agent_id);

  CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('runbook', 'adhoc')),
    runbook_id TEXT,
    runbook_digest TEXT,
    runbook_json TEXT,
    approval_json TEXT,
    gate INTEGER,
    requested_by TEXT NOT NULL,
    options_json TEXT NOT NULL DEFAULT '{}',
    secrets_sealed BLOB,
    targets TEXT NOT NULL DEFAULT '*',
    state TEXT NOT NULL,
    reason TEXT,
    cancel_requested_at INTEGER,
    canceled_by TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX executions_created ON executions (created_at DESC);
  CREATE INDEX executions_state ON executions (state) WHERE state IN ('queued', 'awaiting_approval', 'running');
  CREATE INDEX executions_runbook ON executions (runbook_id, created_at DESC);
  CREATE INDEX executions_requester ON executions (requested_by, created_at DESC);

  CREATE TABLE execution_nodes (
    execution_id TEXT NOT NULL REFERENCES executions (id),
    agent_id TEXT NOT NULL,
    node_index INTEGER NOT NULL,
    agent_name TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (execution_id, agent_id)
  );

  -- One row per dispatch of one step to one agent (each retry is a new row).
  CREATE TABLE step_runs (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES executions (id),
    agent_id TEXT,
    step_index INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    handler INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    request_payload BLOB,
    request_key_id TEXT,
    request_signature BLOB,
    not_after INTEGER,
    cancel_requested_at INTEGER,
    dispatched_at INTEGER,
    accepted_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    signal TEXT,
    result_payload BLOB,
    result_signature BLOB,
    result_cert_serial TEXT,
    stdout_bytes INTEGER NOT NULL DEFAULT 0,
    stderr_bytes INTEGER NOT NULL DEFAULT 0,
    error TEXT
  );
  CREATE INDEX step_runs_execution ON step_runs (execution_id, step_index);
  CREATE INDEX step_runs_open ON step_runs (agent_id, state) WHERE state IN ('pending', 'dispatched', 'running');

  -- Captured output in bounded chunks; (stream, offset) makes resends idempotent.
  CREATE TABLE step_output (
    step_run_id TEXT NOT NULL REFERENCES step_runs (id),
    stream INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (step_run_id, stream, offset)
  ) WITHOUT ROWID;

  -- The hash-chained, signed audit log (format: docs/audit-format.md).
  CREATE TABLE audit_records (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    hash TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
  );

  CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL,
    created_at INTEGER NOT NULL
  );

  -- Approvals of whole executions (gate -1) and of approval steps (gate = step index).
  CREATE TABLE approvals (
    execution_id TEXT NOT NULL REFERENCES executions (id),
    gate INTEGER NOT NULL,
    approver TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment TEXT NOT NULL DEFAULT '',
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (execution_id, gate, approver)
  );

  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    groups_json TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
  );

  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  `,
  // 2: a step's signed request is cleared when it ends (it may hold secret values); its digest stays.
  // Agents record the heartbeat interval they were given, so readers of the store judge "online" by it.
  `
  ALTER TABLE step_runs ADD COLUMN request_sha256 TEXT;
  ALTER TABLE agents ADD COLUMN heartbeat_interval_ms INTEGER;
  `,
  // 3: an execution keeps its requester's reason; why it ended is its own column (a denial or a
  // failure no longer overwrites the request). Executions that ended before this migration had
  // their request reason overwritten: it survives only in their execution.requested audit record.
  // Runbooks that were ever run, with the owner and tags they had then, so that who may see an
  // execution is decided the same way after its runbook is removed (filtered in the history query).
  // Stored output gets a sequence number in the order it was taken in: the live event stream
  // replays it in that order and resumes after the last number a client saw (SSE Last-Event-ID).
  `
  ALTER TABLE executions ADD COLUMN state_reason TEXT;
  UPDATE executions SET state_reason = reason, reason = NULL WHERE state NOT IN ('queued', 'awaiting_approval', 'running');
  CREATE TABLE runbook_refs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT '',
    tags_json TEXT NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL
  );
  INSERT OR IGNORE INTO runbook_refs (id, updated_at) SELECT DISTINCT runbook_id, 0 FROM executions WHERE runbook_id IS NOT NULL;
  ALTER TABLE step_output ADD COLUMN seq INTEGER;
  UPDATE step_output SET seq = n.rn FROM (SELECT step_run_id AS r, stream AS s, offset AS o, row_number() OVER (ORDER BY received_at, step_run_id, stream, offset) AS rn FROM step_output) AS n WHERE step_output.step_run_id = n.r AND step_output.stream = n.s AND step_output.offset = n.o;
  CREATE INDEX step_output_seq ON step_output (seq);
  CREATE INDEX step_output_run_seq ON step_output (step_run_id, seq);
  `,
  // 4: portal logins. The cookie holds a random secret; only its SHA-256 is stored, so a copy of
  // the store lets nobody act as a logged-in user. `id` is the public name that audit records and
  // revocation use. A session ends at `expires_at` (absolute), after `idle_timeout_ms` without a
  // request, or when `ended_at` is set (logout, revocation).
  `
  CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    user_name TEXT NOT NULL REFERENCES users (name),
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    idle_timeout_ms INTEGER NOT NULL,
    remote TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    ended_at INTEGER,
    end_reason TEXT
  );
  CREATE INDEX web_sessions_user ON web_sessions (user_name) WHERE ended_at IS NULL;
  CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
  `,
  // 5: outbound notifications (coordinator/notify/). Subscriptions are removed softly so their
  // deliveries keep a subject; a secret is stored only sealed (pki/secret-box.ts). Deliveries are
  // the outbox: queued in the transaction of the state change they announce, sent afterwards,
  // each attempt recorded.
  `
  CREATE TABLE notification_subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('all', 'runbook', 'team')),
    scope_value TEXT,
    events_json TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    description TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    secret_rotated_at INTEGER,
    removed_at INTEGER
  );
  CREATE TABLE notification_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES notification_subscriptions (id),
    event TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'canceled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    finished_at INTEGER
  );
  CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
  CREATE INDEX notification_deliveries_subscription ON notification_deliveries (subscription_id, created_at DESC);
  CREATE TABLE notification_attempts (
    delivery_id TEXT NOT NULL REFERENCES notification_deliveries (id),
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
    PRIMARY KEY (delivery_id, attempt)
  ) WITHOUT ROWID;
  `,
  // 6: inbound webhooks (coordinator/webhooks). Secrets are sealed with the coordinator's secret
  // box (aad webhook:<id>); the previous secret stays valid until previous_until after a rotation.
  // Deliveries are kept for replay detection only as long as a timestamp can still pass the window.
  `
  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    runbook_id TEXT NOT NULL,
    run_as TEXT NOT NULL REFERENCES users (name),
    mapping_json TEXT NOT NULL,
    description TEXT,
    secrets_sealed BLOB NOT NULL,
    previous_until INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER
  );
  CREATE TABLE webhook_deliveries (
    hook_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    execution_id TEXT,
    PRIMARY KEY (hook_id, delivery_id)
  );
  CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
  `,
  // 7: key rotation without lost steps: a dispatch key is published to agents before it signs
  // (signing_since NULL until then), and each agent's acknowledged dispatch key set version is
  // kept, so a rotation switches signing only once online agents hold the new key.
  `
  ALTER TABLE signing_keys ADD COLUMN signing_since INTEGER;
  UPDATE signing_keys SET signing_since = created_at;
  ALTER TABLE agents ADD COLUMN dispatch_keys_version INTEGER;
  `,
  // 8: the history filtered by state (?state=failed) reads an index range in page order; without
  // it, a state filter scanned and sorted the whole table. A runbook and a user together read
  // their own range instead of every execution of that user (bench/history.ts, 1M executions).
  `
  CREATE INDEX executions_state_created ON executions (state, created_at DESC, id DESC);
  CREATE INDEX executions_runbook_requester ON executions (runbook_id, requested_by, created_at DESC, id DESC);
  `,
  // 9: the portal's audit trail filters records by type, actor, execution and time. Those live
  // inside the signed payload bytes, which are never rewritten: virtual generated columns read
  // them out, and their indexes (seq is the rowid, so each index is also in seq order) let a
  // filtered page read an index range newest first. Verification runs of the live log are kept
  // (coordinator/audit/audit-trail.ts), each also an audit.verified record.
  `
  ALTER TABLE audit_records ADD COLUMN event_type TEXT GENERATED ALWAYS AS (json_extract(CAST(payload AS TEXT), '$.type')) VIRTUAL;
  ALTER TABLE audit_records ADD COLUMN actor_id TEXT GENERATED ALWAYS AS (json_extract(CAST(payload AS TEXT), '$.actor.id')) VIRTUAL;
  ALTER TABLE audit_records ADD COLUMN execution_id TEXT GENERATED ALWAYS AS (json_extract(CAST(payload AS TEXT), '$.data.executionId')) VIRTUAL;
  ALTER TABLE audit_records ADD COLUMN ts TEXT GENERATED ALWAYS AS (json_extract(CAST(payload AS TEXT), '$.ts')) VIRTUAL;
  CREATE INDEX audit_records_type ON audit_records (event_type);
  CREATE INDEX audit_records_actor ON audit_records (actor_id);
  CREATE INDEX audit_records_execution ON audit_records (execution_id) WHERE execution_id IS NOT NULL;
  CREATE INDEX audit_records_ts ON audit_records (ts);
  CREATE TABLE audit_verifications (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    source TEXT NOT NULL,
    ok INTEGER NOT NULL,
    records INTEGER NOT NULL,
    first_seq INTEGER,
    last_seq INTEGER,
    first_bad_seq INTEGER,
    reason TEXT
  );
  `,
  // 10: the history filtered by team. An execution keeps the team that owned
  // its runbook when it was requested (a runbook handed to another team keeps its past with the
  // old one); runbook_teams lists every (team, runbook) pair ever recorded, so a team filter reads
  // one executions_runbook range per runbook the team ever owned, with no new index on the big
  // table. Executions from before this migration get their runbook's last recorded owner: the
  // store kept nothing older. A state with a runbook (or a team, or a limited reader's runbooks,
  // all one range per runbook) reads exactly its rows in page order instead of every execution
  // of the runbook until enough match (bench/history.ts: team=X&state=timed_out).
  `
  ALTER TABLE executions ADD COLUMN owner_team TEXT;
  UPDATE executions SET owner_team = (SELECT NULLIF(r.owner, '') FROM runbook_refs r WHERE r.id = executions.runbook_id) WHERE runbook_id IS NOT NULL;
  CREATE TABLE runbook_teams (
    team TEXT NOT NULL,
    runbook_id TEXT NOT NULL,
    PRIMARY KEY (team, runbook_id)
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO runbook_teams (team, runbook_id) SELECT owner, id FROM runbook_refs WHERE owner <> '';
  CREATE INDEX executions_runbook_state ON executions (runbook_id, state, created_at DESC, id DESC);
  `,
  // 11: CA roll-over: the CA bundle version each agent acknowledged, so `handrail ca switch`
  // moves issuing to the next CA only once agents trust it (coordinator/pki/ca-rollover.ts).
  `
  ALTER TABLE agents ADD COLUMN ca_bundle_version INTEGER;
  `,
  // 12: what an agent's signed result says about its output (the bytes it kept and hashed, and
  // whether it cut a stream at the limit), written with the result, so that an execution's view
  // reads them without decoding every stored result: at 2,000 nodes that decoding (and the hex
  // it took to carry the blobs through the view's JSON) was most of the view's time. NULL in
  // rows stored before: the view decodes those.
  `
  ALTER TABLE step_runs ADD COLUMN stdout_reported_bytes INTEGER;
  ALTER TABLE step_runs ADD COLUMN stderr_reported_bytes INTEGER;
  ALTER TABLE step_runs ADD COLUMN stdout_truncated INTEGER;
  ALTER TABLE step_runs ADD COLUMN stderr_truncated INTEGER;
  `,
];

/** The schema version this build writes: the number of migrations it knows. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** What to do about a store's schema version, decided before anything is written. */
export type SchemaPlan = { readonly kind: 'current' } | { readonly kind: 'upgrade'; readonly from: number; readonly to: number } | { readonly kind: 'too_new'; readonly found: number; readonly known: number };

export function planMigrations(found: number, known: number = SCHEMA_VERSION): SchemaPlan {
  if (found > known) return { kind: 'too_new', found, known };
  if (found < known) return { kind: 'upgrade', from: found, to: known };
  return { kind: 'current' };
}

/** The one-line refusal of a store written by a newer Handrail. */
export function tooNewError(path: string, found: number, known: number): HandrailError {
  return failedPrecondition(
    `the store ${path} has schema version ${found}, newer than this Handrail ${HANDRAIL_VERSION} knows (up to ${known})`,
    'run the Handrail release that last wrote this store (or a newer one), or restore a backup taken with this release; the store was not changed',
  );
}

/** The store's schema version (0 for a new, empty store). */
export async function schemaVersion(db: Database): Promise<number> {
  const table = await db.get<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
  if (!table || table.n === 0) return 0;
  const row = await db.get<{ version: number | null }>('SELECT max(version) AS version FROM schema_version');
  return row?.version ?? 0;
}

/** Applies the migrations a store has not seen; refuses (changing nothing) a store newer than this build. */
export async function migrate(db: Database): Promise<void> {
  const plan = planMigrations(await schemaVersion(db));
  if (plan.kind === 'too_new') throw tooNewError(db.path, plan.found, plan.known);
  if (plan.kind === 'current') return;
  await db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const current = plan.from;
  for (let i = current; i < MIGRATIONS.length; i++) {
    const sql = MIGRATIONS[i] as string;
    await db.write(async (tx) => {
      // exec() cannot take part in a prepared-statement transaction, so split statements.
      for (const stmt of splitStatements(sql)) await tx.run(stmt);
      await tx.run('INSERT INTO schema_version (version) VALUES (?)', [i + 1]);
    });
  }
}

function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}
