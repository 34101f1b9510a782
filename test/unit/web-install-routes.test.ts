import { describe, expect, it } from 'vitest';
import { makeInstallKit } from '../../coordinator/install/install-kit.js';
import { installRoutes } from '../../web/install/routes.js';

describe('GET /install/…', () => {
  const kit = makeInstallKit({ version: '0.1.0', bundle: Buffer.from('export {};\n'), scriptTemplate: "S='@BUNDLE_SHA256@'\n", caPem: '-----BEGIN CERTIFICATE-----\n' });

  it('serves the bundle, its checksum line, the script and the CA, uncached', async () => {
    const app = installRoutes(kit, '');
    const get = (p: string): Response | Promise<Response> => app.request(p);
    const bundle = await get('/agent.mjs');
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(bundle.headers.get('cache-control')).toBe('no-store');
    expect(await bundle.text()).toBe('export {};\n');
    expect(await (await get('/agent.mjs.sha256')).text()).toBe(`${kit.bundleSha256}  handrail-agent.mjs\n`);
    expect(await (await get('/agent.sh')).text()).toBe(`S='${kit.bundleSha256}'\n`);
    expect(await (await get('/ca.pem')).text()).toBe(kit.caPem);
    expect((await get('/other')).status).toBe(404);
  });

  it('answers 503 with what to do when this coordinator has no bundle', async () => {
    const res = await installRoutes(undefined, 'no agent bundle: build it with `npm run build`').request('/agent.sh');
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { kind: 'unavailable', message: 'no agent bundle: build it with `npm run build`' } });
  });
});
