/**
 * server/server.ts, in process: the coordinator and the web layer come up as one server, an HTTP
 * port that cannot be bound is a plain error that leaves nothing running behind it, and /readyz
 * follows the store and the gateway (a store refusing writes, a drain).
 */
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCa } from '../../coordinator/pki/ca.js';
import { startServer, type ServerConfig } from '../../server/server.js';
import { ROOT, workspace } from '../helpers/processes.js';
import { freePort } from '../helpers/free-port.js';

const log = pino({ level: 'silent' });
let dir = '';
let occupied: Server;
let occupiedPort = 0;

const config = (grpcPort: number, httpPort: number): ServerConfig => ({
  dataDir: join(dir, 'data'),
  certsDir: join(dir, 'certs'),
  runbooksDir: join(ROOT, 'test', 'fixtures', 'engine'),
  grpcListen: { host: '127.0.0.1', port: grpcPort },
  httpListen: { host: '127.0.0.1', port: httpPort },
  agentCertTtlMs: 3_600_000,
  heartbeatIntervalMs: 1_000,
  requestTtlMs: 60_000,
  maxOutputBytes: 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  enrollAttemptsPerMinute: 0,
  checkpointIntervalMs: 0,
  offlineWaitMs: 1_000,
  lostAfterMs: 1_000,
});

beforeAll(async () => {
  dir = await workspace('hr-server-');
  await initCa({ certsDir: join(dir, 'certs') });
  occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  occupiedPort = (occupied.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => occupied.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('startServer', () => {
  it('refuses an HTTP port in use with a plain error and stops the coordinator it started', async () => {
    const grpcPort = await freePort();
    await expect(startServer(config(grpcPort, occupiedPort), log)).rejects.toThrow(`cannot listen on 127.0.0.1:${occupiedPort}: the address is already in use`);
    // The agent port it had bound is free again: the same config with a free HTTP port starts.
    const server = await startServer(config(grpcPort, 0), log);
    try {
      expect(server.grpcPort).toBe(grpcPort);
      expect(server.httpPort).not.toBe(occupiedPort);
      const health = await fetch(`http://127.0.0.1:${server.httpPort}/api/v1/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ ok: true });
      const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/agents_online 0/);
      // The web layer reaches the coordinator's stores: an unknown token is refused and counted.
      const denied = await fetch(`http://127.0.0.1:${server.httpPort}/api/v1/whoami`, { headers: { authorization: 'Bearer hru_nope' } });
      expect(denied.status).toBe(401);
      expect(await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text()).toMatch(/auth_failures_total 1/);
    } finally {
      await server.stop();
    }
  });

  it('is ready only while the store takes writes and the gateway serves: /readyz 503 names what is wrong, /healthz stays alive', async () => {
    const server = await startServer(config(0, 0), log);
    const readyz = async (): Promise<{ status: number; body: { ready: boolean; phase: string; checks: Array<{ name: string; ok: boolean; detail: string }> } }> => {
      const r = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
      return { status: r.status, body: (await r.json()) as never };
    };
    try {
      expect((await readyz()).status).toBe(200);
      // A store that refuses writes (SQLite's query_only: what a read-only file or a full disk look like to a write).
      await server.coordinator.data.db.exec('PRAGMA query_only = 1');
      const readOnly = await readyz();
      expect(readOnly.status).toBe(503);
      expect(readOnly.body.ready).toBe(false);
      expect(readOnly.body.checks.filter((c) => !c.ok)).toEqual([{ name: 'store', ok: false, detail: expect.stringMatching(/^not writable: .*readonly/) as unknown as string }]);
      expect((await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).status).toBe(200);
      await server.coordinator.data.db.exec('PRAGMA query_only = 0');
      expect((await readyz()).status).toBe(200);
      // Draining (the first thing a shutdown does): not ready, and gRPC health says NOT_SERVING.
      server.coordinator.beginDrain();
      const draining = await readyz();
      expect(draining.status).toBe(503);
      expect(draining.body.phase).toBe('draining');
      expect(draining.body.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['gateway']);
      expect(server.coordinator.gateway.health.current).toBe('not_serving');
    } finally {
      await server.stop();
    }
    expect(server.coordinator.phase()).toBe('stopped');
  });
});
