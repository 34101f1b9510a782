/** A coordinator with a CA, an admin user, and agents enrolled with real tokens. */
import { join } from 'node:path';
import { expect } from 'vitest';
import { AGENT_BIN, BACKSTOP_MS, ROOT, cli, spawnCli, spawnExecutable, waitFor, workspace, type Proc } from './processes.js';

export interface Coordinator {
  readonly proc: Proc;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly address: string;
  readonly url: string;
}

export class Fleet {
  coordinator: Coordinator | undefined;
  readonly agents = new Map<string, { proc: Proc; stateDir: string; agentId?: string }>();
  adminToken = '';
  private grpcPort = 0;
  private httpPort = 0;

  private constructor(readonly dir: string) {}

  static async create(): Promise<Fleet> {
    const f = new Fleet(await workspace());
    const r = await cli(['ca', 'init', '--certs-dir', f.certsDir]);
    expect(r.code, r.stderr).toBe(0);
    return f;
  }

  get certsDir(): string {
    return join(this.dir, 'certs');
  }
  get dataDir(): string {
    return join(this.dir, 'data');
  }
  get caFile(): string {
    return join(this.certsDir, 'ca.pem');
  }

  /** Admin CLI on the coordinator's data dir. */
  admin(args: readonly string[]): ReturnType<typeof cli> {
    return cli([...args, '--data-dir', this.dataDir]);
  }

  /** `env`: extra environment for the coordinator process (e.g. a TestClock's). */
  async startCoordinator(extra: readonly string[] = [], env: Record<string, string> = {}): Promise<Coordinator> {
    // Reuse ports across restarts so agents find the coordinator again.
    const proc = spawnCli([
      'coordinator',
      '--data-dir', this.dataDir,
      '--certs-dir', this.certsDir,
      '--grpc-listen', `127.0.0.1:${this.grpcPort}`,
      '--http-listen', `127.0.0.1:${this.httpPort}`,
      '--log-level', 'debug',
      '--heartbeat-interval', '1s',
      // The test policy gives group admins every action (ad-hoc commands are an admin action).
      ...(extra.includes('--runbooks-dir') ? [] : ['--runbooks-dir', join(ROOT, 'test', 'fixtures', 'engine')]),
      ...extra,
    ], env);
    const m = await proc.waitForText(/agents on port (\d+), HTTP on port (\d+)/);
    this.grpcPort = Number(m[1]);
    this.httpPort = Number(m[2]);
    this.coordinator = { proc, grpcPort: this.grpcPort, httpPort: this.httpPort, address: `127.0.0.1:${this.grpcPort}`, url: `http://127.0.0.1:${this.httpPort}` };
    return this.coordinator;
  }

  async ensureAdmin(): Promise<string> {
    if (this.adminToken) return this.adminToken;
    let r = await this.admin(['user', 'add', 'root', '--group', 'admins']);
    expect(r.code, r.stderr).toBe(0);
    r = await this.admin(['user', 'token', 'root']);
    expect(r.code, r.stderr).toBe(0);
    this.adminToken = r.stdout.trim();
    return this.adminToken;
  }

  /** Adds a user with groups (and a portal password, if given) and returns an API token for them. */
  async user(name: string, groups: readonly string[], o: { password?: string } = {}): Promise<string> {
    let r = await this.admin(['user', 'add', name, ...groups.flatMap((g) => ['--group', g])]);
    expect(r.code, r.stderr).toBe(0);
    if (o.password !== undefined) {
      r = await cli(['user', 'password', name, '--data-dir', this.dataDir], {}, ROOT, o.password);
      expect(r.code, r.stderr).toBe(0);
    }
    r = await this.admin(['user', 'token', name]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  async token(args: readonly string[] = []): Promise<string> {
    const r = await this.admin(['token', 'create', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  /** Starts an agent process; enrolls it with a fresh token unless `token: null`. */
  /** `env`: extra environment for the agent process (e.g. a TestClock's). */
  async startAgent(name: string, o: { token?: string | null; labels?: string; extra?: readonly string[]; stateDir?: string; agentBin?: boolean; env?: Record<string, string> } = {}): Promise<Proc> {
    if (!this.coordinator) throw new Error('start the coordinator first');
    const stateDir = o.stateDir ?? join(this.dir, `agent-${name}`);
    const token = o.token === undefined ? await this.token() : o.token;
    const args = ['agent', '--coordinator', this.coordinator.address, '--state-dir', stateDir, '--name', name, '--ca', this.caFile, '--log-level', 'debug', '--allow-adhoc', '--kill-grace', '1s'];
    if (token) args.push('--token', token);
    if (o.labels) args.push('--labels', o.labels);
    args.push(...(o.extra ?? []));
    // agentBin: the shipped `handrail-agent` executable (its #! line, its Node flags) instead of `handrail agent`.
    const proc = o.agentBin ? spawnExecutable(AGENT_BIN, args.slice(1), o.env) : spawnCli(args, o.env);
    this.agents.set(name, { proc, stateDir });
    return proc;
  }

  async waitOnline(name: string, timeoutMs = BACKSTOP_MS): Promise<string> {
    const a = this.agents.get(name);
    if (!a) throw new Error(`no agent ${name}`);
    const line = await a.proc.waitForLog((l) => l.event === 'agent.connected', timeoutMs, `agent ${name} connected`);
    a.agentId = line['agentId'] as string;
    return a.agentId;
  }

  async api<T>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
    if (!this.coordinator) throw new Error('no coordinator');
    const res = await fetch(`${this.coordinator.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token ?? (await this.ensureAdmin())}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  async output(executionId: string, stepRunId: string, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    if (!this.coordinator) throw new Error('no coordinator');
    const res = await fetch(`${this.coordinator.url}/api/v1/executions/${executionId}/steps/${stepRunId}/output?stream=${stream}`, {
      headers: { authorization: `Bearer ${await this.ensureAdmin()}` },
    });
    return res.text();
  }

  /** Runs an ad-hoc step and waits for the execution to finish. */
  async exec(agentIds: string[], body: Record<string, unknown>, timeoutMs = BACKSTOP_MS): Promise<ExecutionResult> {
    const started = await this.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: agentIds, ...body });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    return this.waitExecution(started.body.executionId, timeoutMs);
  }

  async waitExecution(executionId: string, timeoutMs = BACKSTOP_MS): Promise<ExecutionResult> {
    return waitFor(
      async () => {
        const r = await this.api<ExecutionResult>('GET', `/api/v1/executions/${executionId}?wait=5s`);
        return r.body.state !== 'running' && r.body.state !== 'queued' ? r.body : undefined;
      },
      timeoutMs,
      `execution ${executionId} to finish`,
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.proc.stop()));
    await this.coordinator?.proc.stop();
  }
}

export interface ExecutionResult {
  id: string;
  state: string;
  reason: string | null;
  runbookId: string | null;
  runbookDigest: string | null;
  options: Record<string, string>;
  nodes: Array<{ agentId: string; agentName: string; state: string; reason: string | null }>;
  steps: Array<{ id: string; agentId: string; name: string; stepIndex: number; attempt: number; handler: boolean; state: string; exitCode: number | null; error: string | null; stdoutBytes: number; stderrBytes: number; dispatchedAt: string | null; finishedAt: string | null }>;
}
