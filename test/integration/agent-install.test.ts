/**
 * Installing an agent the way an admin does: `handrail agent install-command` against a real
 * coordinator serving HTTPS, the printed line run by sh (its token never in an argv), the
 * install script under a temporary root (no root, no systemd here: HANDRAIL_INSTALL_ROOT,
 * _NO_USER, _NO_SYSTEMD), then the installed bundle started with plain Node from a directory
 * with no node_modules: it enrolls with the token file and runs a step. Also: a corrupted
 * bundle and a wrong CA fingerprint are refused with nothing installed; the generated unit and
 * config; a re-run keeps the agent id; uninstall removes what it wrote (or all but the identity).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { agentCommand } from '../../cli/commands/agent.js';
import { HANDRAIL_VERSION } from '../../core/version.js';
import { Fleet } from '../helpers/fleet.js';
import { BACKSTOP_MS, cli, Proc, waitFor, workspace } from '../helpers/processes.js';

interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs shell text fed on stdin (as a pasted line is: never in an argv). */
function sh(text: string, env: Record<string, string>, args: readonly string[] = []): Promise<ShResult> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-s', '--', ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(text);
  });
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);
const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

describe('installing an agent with the install line', () => {
  let fleet: Fleet;
  let url: string;
  let ca: string;
  let admin: string;
  let line: string;
  let script: string;
  let root: string;
  let agentId: string;
  const procs: Proc[] = [];
  let corruptServer: Server | undefined;

  /** The coordinator's API over HTTPS, trusting only its CA. */
  const api = <T>(method: string, path: string, body?: unknown, token = admin): Promise<{ status: number; body: T }> =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(`${url}${path}`, { method, ca, headers: { authorization: `Bearer ${token}`, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: (text && res.headers['content-type']?.includes('json') ? JSON.parse(text) : text) as T }));
      });
      req.on('error', reject);
      req.end(data);
    });

  const installEnv = (r: string): Record<string, string> => ({ HANDRAIL_INSTALL_ROOT: r, HANDRAIL_INSTALL_NO_USER: '1', HANDRAIL_INSTALL_NO_SYSTEMD: '1' });
  const paths = (r: string) => ({
    bundle: join(r, 'opt', 'handrail-agent', 'handrail-agent.mjs'),
    config: join(r, 'etc', 'handrail-agent', 'agent.yaml'),
    ca: join(r, 'etc', 'handrail-agent', 'ca.pem'),
    state: join(r, 'var', 'lib', 'handrail-agent'),
    unit: join(r, 'etc', 'systemd', 'system', 'handrail-agent.service'),
  });

  /** The installed agent, run as its unit would: plain node, the installed bundle and config. */
  const startInstalled = (): Proc => {
    const p = new Proc(
      spawn(process.execPath, ['--lite-mode', '--no-expose-wasm', paths(root).bundle, '--config', paths(root).config, '--allow-adhoc', '--log-level', 'debug'], { cwd: root, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    fleet = await Fleet.create();
    const c = await fleet.startCoordinator(['--http-tls']);
    url = `https://127.0.0.1:${c.httpPort}`;
    ca = await readFile(fleet.caFile, 'utf8');
    admin = await fleet.ensureAdmin();
    root = await workspace('hr-install-root-');
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await new Promise((r) => (corruptServer ? corruptServer.close(r) : r(undefined)));
    await fleet?.close();
  });

  it('prints one line with a fresh token pinned to the labels and the CA fingerprint (admins only)', async () => {
    const r = await cli(['agent', 'install-command', '--labels', 'role=web,zone=b', '--ttl', '10m', '--server', url, '--token', admin], { NODE_EXTRA_CA_CERTS: fleet.caFile });
    expect(r.code, r.stderr).toBe(0);
    line = r.stdout.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain(sha256(ca));
    expect(line).toContain(`'${url}/install/ca.pem'`);
    // The token reaches a 0600 file through the shell's printf builtin, never an argument.
    const token = /'(hrt_[A-Za-z0-9_-]{43})'/.exec(line)?.[1];
    expect(token).toBeDefined();
    expect(line.indexOf(token as string)).toBe(line.lastIndexOf(token as string));
    expect(line).toContain(`printf '%s\\n' '${token}' > "$d/token"`);
    expect(r.stderr).toMatch(/labels role=web,zone=b/);

    const user = await fleet.user('helpdesk', ['support']);
    const refused = await api<{ error: { kind: string } }>('POST', '/api/v1/agents/install-command', { labels: {} }, user);
    expect(refused.status).toBe(403);
    const anonymous = await api<{ error: { kind: string } }>('POST', '/api/v1/agents/install-command', { labels: {} }, 'hru_nobody');
    expect(anonymous.status).toBe(401);
  });

  it('serves the bundle, its SHA-256 and the script without a token', async () => {
    const bundle = await api<string>('GET', '/install/agent.mjs', undefined, '');
    const sum = await api<string>('GET', '/install/agent.mjs.sha256', undefined, '');
    const onDisk = await readFile(join(import.meta.dirname, '..', '..', 'dist', 'agent-bundle', 'handrail-agent.mjs'), 'utf8');
    expect(bundle.status).toBe(200);
    expect(bundle.body).toBe(onDisk);
    expect(sum.body).toBe(`${sha256(onDisk)}  handrail-agent.mjs\n`);
    const s = await api<string>('GET', '/install/agent.sh', undefined, '');
    expect(s.status).toBe(200);
    script = s.body;
    expect(script).toContain(`BUNDLE_SHA256='${sha256(onDisk)}'`);
    expect(script).toContain(`HANDRAIL_VERSION='${HANDRAIL_VERSION}'`);
  });

  it('refuses a corrupted bundle download and installs nothing', async () => {
    const good = await readFile(join(import.meta.dirname, '..', '..', 'dist', 'agent-bundle', 'handrail-agent.mjs'));
    const bad = Buffer.from(good);
    bad[bad.length - 10] = (bad[bad.length - 10] as number) ^ 0x20; // one flipped bit, as a bad mirror or proxy would
    corruptServer = createServer((_req, res) => res.end(bad));
    await new Promise<void>((r) => corruptServer!.listen(0, '127.0.0.1', r));
    const mirror = `http://127.0.0.1:${(corruptServer.address() as AddressInfo).port}/agent.mjs`;
    const badRoot = await workspace('hr-install-bad-');
    const tokenFile = join(badRoot, 'token');
    await writeFile(tokenFile, 'hrt_unused\n', { mode: 0o600 });
    const r = await sh(script, installEnv(badRoot), ['--server', url, '--coordinator', fleet.coordinator!.address, '--ca', fleet.caFile, '--token-file', tokenFile, '--bundle-url', mirror]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `handrail install: the downloaded agent bundle is corrupted or was tampered with: its SHA-256 is ${sha256(bad)}, the coordinator published ${sha256(good)}; nothing was installed (download again, or check ${mirror})\n`,
    );
    for (const p of Object.values(paths(badRoot))) expect(await exists(p), p).toBe(false);
  });

  it('refuses a coordinator whose CA does not match the fingerprint in the line', async () => {
    const wrong = line.replace(sha256(ca), sha256('another CA'));
    const otherRoot = await workspace('hr-install-mitm-');
    const r = await sh(wrong, installEnv(otherRoot));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('handrail: the coordinator CA does not match the fingerprint in this line; not installing');
    for (const p of Object.values(paths(otherRoot))) expect(await exists(p), p).toBe(false);
  });

  it('installs: the bundle, a documented config, a 0700 state dir with a 0600 token file, a hardened unit', async () => {
    const r = await sh(line, installEnv(root));
    expect(r.code, r.stderr).toBe(0);
    const p = paths(root);
    expect(sha256(await readFile(p.bundle))).toBe(sha256(await readFile(join(import.meta.dirname, '..', '..', 'dist', 'agent-bundle', 'handrail-agent.mjs'))));
    expect(await readFile(p.ca, 'utf8')).toBe(ca);
    expect((await stat(p.state)).mode & 0o777).toBe(0o700);
    expect((await stat(join(p.state, 'enroll-token'))).mode & 0o777).toBe(0o600);

    const configText = await readFile(p.config, 'utf8');
    expect(parseYaml(configText)).toEqual({ coordinator: fleet.coordinator!.address, ca: p.ca, stateDir: p.state, bootstrapTokenFile: join(p.state, 'enroll-token') });
    // Every setting the agent has is in the file, with its description.
    for (const o of Object.values(agentCommand.options)) {
      if (!o.configKey) continue;
      expect(configText).toMatch(new RegExp(`^#? ?${o.configKey}:`, 'm'));
      expect(configText.replace(/\n# /g, ' ')).toContain(o.description.split(' ').slice(0, 6).join(' '));
    }

    const unit = await readFile(p.unit, 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} --lite-mode --no-expose-wasm ${p.bundle} --config ${p.config}\n`);
    for (const setting of ['NoNewPrivileges=yes', 'ProtectSystem=full', 'PrivateTmp=yes', `ReadWritePaths=${p.state}`, 'UMask=0077', 'RestartPreventExitStatus=2', 'KillMode=mixed', 'WantedBy=multi-user.target']) {
      expect(unit).toContain(`\n${setting}\n`);
    }
    // systemd's own parser, where the machine has it: every key known, every value valid.
    const analyze = spawnSync('systemd-analyze', ['verify', '--man=no', p.unit], { encoding: 'utf8' });
    if (!analyze.error) expect(analyze.stderr).toBe('');
    // Each hardening setting carries its reason in a comment just above it.
    for (const key of ['NoNewPrivileges', 'ProtectSystem', 'PrivateTmp']) expect(unit).toMatch(new RegExp(`# ${key}: [^\\n]+\\n(#[^\\n]*\\n)*${key}=`));
  });

  it('the installed bundle, run with plain node, enrolls with the token file (then deletes it) and runs a step', async () => {
    const agent = startInstalled();
    const connected = await agent.waitForLog((l) => l.event === 'agent.connected');
    agentId = connected['agentId'] as string;
    expect(await exists(join(paths(root).state, 'enroll-token'))).toBe(false);
    const list = await api<{ agents: Array<{ id: string; labels: Record<string, string>; version: string }> }>('GET', '/api/v1/agents');
    expect(list.body.agents.find((a) => a.id === agentId)).toMatchObject({ labels: { role: 'web', zone: 'b' }, version: HANDRAIL_VERSION });

    const started = await api<{ executionId: string; stepRunIds: Record<string, string> }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: ['sh', '-c', 'echo installed:$0', 'ok'] });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const done = await waitFor(async () => {
      const e = await api<{ state: string }>('GET', `/api/v1/executions/${started.body.executionId}?wait=5s`);
      return e.body.state !== 'running' && e.body.state !== 'queued' ? e.body : undefined;
    }, BACKSTOP_MS, 'the step to finish');
    expect(done.state).toBe('succeeded');
    const out = await api<string>('GET', `/api/v1/executions/${started.body.executionId}/steps/${started.body.stepRunIds[agentId]}/output?stream=stdout`);
    expect(out.body).toBe('installed:ok\n');
    await agent.stop();
  });

  it('re-running the line upgrades the bundle in place and keeps the agent identity', async () => {
    await writeFile(paths(root).bundle, '// an older bundle\n');
    const r = await sh(line, installEnv(root));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`already enrolled (${agentId}): keeping its identity`);
    expect(sha256(await readFile(paths(root).bundle))).toBe(sha256(await readFile(join(import.meta.dirname, '..', '..', 'dist', 'agent-bundle', 'handrail-agent.mjs'))));
    const again = startInstalled();
    const connected = await again.waitForLog((l) => l.event === 'agent.connected');
    expect(connected['agentId']).toBe(agentId);
    await again.stop();
  });

  it('uninstall removes what it installed, or all but the identity with --keep-identity', async () => {
    const p = paths(root);
    const kept = await sh(script, installEnv(root), ['--uninstall', '--keep-identity']);
    expect(kept.code, kept.stderr).toBe(0);
    for (const f of [p.bundle, p.config, p.ca, p.unit, join(p.state, 'spool')]) expect(await exists(f), f).toBe(false);
    expect(await exists(join(p.state, 'identity', 'agent.json'))).toBe(true);
    const all = await sh(script, installEnv(root), ['--uninstall']);
    expect(all.code, all.stderr).toBe(0);
    for (const d of [join(root, 'opt', 'handrail-agent'), join(root, 'etc', 'handrail-agent'), p.state, p.unit]) expect(await exists(d), d).toBe(false);
    await mkdir(root, { recursive: true });
  });
});
