/**
 * Log lines: pretty on a terminal, JSON lines otherwise, whatever the command. The terminal is
 * a real pseudo-terminal (util-linux `script`), the process a real agent retrying enrollment
 * against a closed port (it logs at once and keeps retrying until stopped).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, cli, waitFor, workspace } from '../helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await workspace('hr-logfmt-');
  expect((await cli(['ca', 'init', '--certs-dir', join(dir, 'certs')])).code).toBe(0);
});

const agentArgs = (extra: readonly string[]): string[] => [CLI, 'agent', '--coordinator', '127.0.0.1:1', '--state-dir', join(dir, `st-${extra.join('')}`), '--name', 'x', '--ca', join(dir, 'certs', 'ca.pem'), '--token', 'hrb_logfmt-token-value', ...extra];

/** Runs `args` (under `script` for a terminal) until `done` matches what it printed, then stops it. */
async function outputUntil(args: readonly string[], tty: boolean, done: RegExp): Promise<string> {
  const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = tty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const closed = new Promise((r) => child.on('close', r));
  try {
    await waitFor(() => done.test(text), 30_000, `output matching ${done}`);
  } finally {
    child.kill('SIGTERM');
    await closed;
  }
  return text;
}

describe('log format', () => {
  it('is pretty on a terminal and never shows a token', async () => {
    const text = await outputUntil(agentArgs([]), true, /enrollment failed; retrying/);
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*WARN.* \(agent\): .*enrollment failed; retrying/m);
    expect(text).not.toMatch(/^\{"level"/m);
    expect(text).not.toContain('hrb_logfmt-token-value');
  });

  it('is JSON lines when stderr is not a terminal, and when --log-format json says so on one', async () => {
    const piped = await outputUntil(agentArgs([]), false, /enrollment failed; retrying/);
    const line = piped.split('\n').find((l) => l.includes('agent.enroll_retry'));
    expect(JSON.parse(line ?? '')).toMatchObject({ level: 40, name: 'agent', event: 'agent.enroll_retry' });
    const forced = await outputUntil(agentArgs(['--log-format', 'json']), true, /agent\.enroll_retry/);
    expect(forced).toMatch(/^\{"level":40,.*"event":"agent\.enroll_retry"/m);
  });

  it('refuses an unknown format with the choices', async () => {
    const r = await cli(['agent', '--log-format', 'xml', '--coordinator', '127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--log-format.*(auto|json|pretty)/);
  });
});
